/* Storage internals against a real SQLite file: schema creation and
 * migration bookkeeping, refusal of newer/garbage/foreign/locked databases,
 * event -> record conversion, the group-commit writer (batching, failure
 * with SQLITE_FULL and retry) and reading runs back for restore. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "reader.h"
#include "record.h"
#include "schema.h"
#include "sql.h"
#include "writer.h"

static char DIR_[256];

static void tmp_path(char *out, size_t n, const char *name) {
    if (!DIR_[0]) {
        snprintf(DIR_, sizeof(DIR_), "/tmp/pyoco-storage-unit-XXXXXX");
        if (!mkdtemp(DIR_))
            abort();
    }
    snprintf(out, n, "%s/%s", DIR_, name);
    unlink(out);
    char side[600];
    snprintf(side, sizeof(side), "%s-wal", out);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", out);
    unlink(side);
}

static int64_t q_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static pyoco_storage_db *open_db(const char *path, char *err, size_t n,
                                 int *rc) {
    pyoco_storage_db_opts o = {
        .path = path, .synchronous = "FULL", .busy_timeout_ms = 100};
    pyoco_storage_db *db = NULL;
    *rc = pyoco_storage_db_open(&o, &db, err, n);
    return db;
}

/* ---- schema -------------------------------------------------------------- */

static void test_schema_create_and_reopen(void) {
    char path[300], err[512] = "";
    int rc;
    tmp_path(path, sizeof(path), "fresh.db");
    pyoco_storage_db *db = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(db->schema_version, 0);
    CU_ASSERT_EQUAL(q_int(db->rw, "PRAGMA user_version"),
                    PYOCO_STORAGE_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(q_int(db->rw, "SELECT count(*) FROM schema_migrations "
                                  "WHERE version = 1"),
                    1);
    CU_ASSERT_EQUAL(q_int(db->rw, "SELECT count(*) FROM sqlite_master WHERE "
                                  "name IN ('runs','tasks','logs','outbox',"
                                  "'meta')"),
                    5);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db->rw, "PRAGMA journal_mode", -1, &st, NULL);
    CU_ASSERT_EQUAL(sqlite3_step(st), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    CU_ASSERT_EQUAL(q_int(db->rw, "PRAGMA synchronous"), 2); /* FULL */
    pyoco_storage_db_close(db);

    db = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(db->schema_version, 1);
    CU_ASSERT_EQUAL(q_int(db->rw, "SELECT count(*) FROM schema_migrations"), 1);
    pyoco_storage_db_close(db);
}

static void test_schema_newer_refused(void) {
    char path[300], err[512] = "";
    int rc;
    tmp_path(path, sizeof(path), "newer.db");
    sqlite3 *raw = NULL;
    sqlite3_open(path, &raw);
    sqlite3_exec(raw, "CREATE TABLE runs(x); PRAGMA user_version = 7", NULL,
                 NULL, NULL);
    sqlite3_close(raw);
    pyoco_storage_db *db = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_PTR_NULL(db);
    CU_ASSERT_EQUAL(rc, -EPROTO);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(err, "database schema v7 is newer than this server (v1)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
}

static void test_garbage_and_foreign_refused(void) {
    char path[300], err[512] = "";
    int rc;
    tmp_path(path, sizeof(path), "garbage.db");
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 300; i++)
        fputs("this is not a database at all\n", f);
    fclose(f);
    pyoco_storage_db *db = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_PTR_NULL(db);
    CU_ASSERT_EQUAL(rc, -EILSEQ);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "file is not a database"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));

    tmp_path(path, sizeof(path), "foreign.db");
    sqlite3 *raw = NULL;
    sqlite3_open(path, &raw);
    sqlite3_exec(raw, "CREATE TABLE customers(id)", NULL, NULL, NULL);
    sqlite3_close(raw);
    err[0] = 0;
    db = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_PTR_NULL(db);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a pyoco database"));
}

/* Damaged pages inside a valid file: PRAGMA quick_check catches them. */
static void test_corrupt_refused(void) {
    char path[300], err[512] = "";
    int rc;
    tmp_path(path, sizeof(path), "corrupt.db");
    pyoco_storage_db *db = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(sqlite3_exec(db->rw,
                                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
                                 "SELECT i + 1 FROM n WHERE i < 2000) "
                                 "INSERT INTO runs (run_id, flow_name, status,"
                                 " start_time) SELECT printf('run-%06d', i), "
                                 "'f', 'PENDING', i FROM n",
                                 NULL, NULL, NULL),
                    SQLITE_OK);
    pyoco_storage_db_close(db); /* checkpoints the WAL into the file */
    int64_t page = 4096;
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    CU_ASSERT_TRUE_FATAL(size > 8 * page);
    /* scribble over the b-tree pages past the schema page */
    for (long off = 2 * page; off < size; off += page) {
        fseek(f, off, SEEK_SET);
        for (int i = 0; i < 64; i++)
            fputc(0xA5, f);
    }
    fclose(f);
    err[0] = 0;
    db = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_PTR_NULL(db);
    CU_ASSERT_EQUAL(rc, -EILSEQ);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_TRUE(strstr(err, "corrupt") || strstr(err, "malformed"));
    if (db)
        pyoco_storage_db_close(db);
}

static void test_second_owner_refused(void) {
    char path[300], err[512] = "";
    int rc;
    tmp_path(path, sizeof(path), "locked.db");
    pyoco_storage_db *a = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    pyoco_storage_db *b = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT_EQUAL(rc, -EBUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "in use by another server"));
    pyoco_storage_db_close(a);
    /* the lock goes with the owner */
    b = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_EQUAL(rc, 0);
    pyoco_storage_db_close(b);
}

static void test_unwritable_directory_refused(void) {
    char err[512] = "";
    int rc;
    pyoco_storage_db *db =
        open_db("/nonexistent-dir/pyoco.db", err, sizeof(err), &rc);
    CU_ASSERT_PTR_NULL(db);
    CU_ASSERT_TRUE(rc < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent-dir/pyoco.db.lock"));
}

/* ---- records ------------------------------------------------------------- */

static pyoco_event run_ev(uint32_t kind, uint64_t seq, const char *id,
                          pyoco_run_status st) {
    pyoco_event ev = {.size = sizeof(ev),
                      .kind = kind,
                      .seq = seq,
                      .run_id = id,
                      .flow_name = "demo",
                      .status = st,
                      .start_time = 1000.5};
    return ev;
}

static void test_record_from_event(void) {
    json_t *params = json_pack("{s:i}", "x", 1);
    json_t *tags = json_pack("[s]", "gpu");
    pyoco_event ev =
        run_ev(PYOCO_EV_RUN_SUBMITTED, 5, "r1", PYOCO_STATUS_PENDING);
    ev.params = params;
    ev.tags = tags;
    pyoco_storage_rec *r = NULL;
    CU_ASSERT_EQUAL(pyoco_storage_rec_from_event(&ev, 100, &r), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->op, PYOCO_STORAGE_OP_RUN_INSERT);
    CU_ASSERT_EQUAL(r->seq, 5);
    CU_ASSERT_STRING_EQUAL(r->v[0].s, "r1");
    CU_ASSERT_STRING_EQUAL(r->v[2].s, "{\"x\":1}");
    CU_ASSERT_STRING_EQUAL(r->v[3].s, "[\"gpu\"]");
    CU_ASSERT_STRING_EQUAL(r->v[4].s, "PENDING");
    CU_ASSERT_EQUAL(r->v[6].type, PYOCO_STORAGE_V_NULL); /* end_time unset */
    CU_ASSERT_STRING_EQUAL(r->v[7].s, "{}");             /* no metadata */
    CU_ASSERT_EQUAL(r->v[8].i, 105);                     /* base + seq */
    pyoco_storage_rec_free(r);

    pyoco_event http = {
        .size = sizeof(http), .kind = PYOCO_EV_HTTP_REQUEST, .seq = 6};
    r = (void *)1;
    CU_ASSERT_EQUAL(pyoco_storage_rec_from_event(&http, 0, &r), 0);
    CU_ASSERT_PTR_NULL(r);
    pyoco_event fin =
        run_ev(PYOCO_EV_RUN_FINISHED, 7, "r1", PYOCO_STATUS_COMPLETED);
    CU_ASSERT_EQUAL(pyoco_storage_rec_from_event(&fin, 0, &r), 0);
    CU_ASSERT_PTR_NULL(r);
    pyoco_event bad =
        run_ev(PYOCO_EV_RUN_STATUS, 8, NULL, PYOCO_STATUS_RUNNING);
    CU_ASSERT_EQUAL(pyoco_storage_rec_from_event(&bad, 0, &r), -EINVAL);
    CU_ASSERT_PTR_NULL(r);
    json_t *empty = json_array();
    pyoco_event nologs =
        run_ev(PYOCO_EV_LOGS_APPENDED, 9, "r1", PYOCO_STATUS_RUNNING);
    nologs.logs = empty;
    CU_ASSERT_EQUAL(pyoco_storage_rec_from_event(&nologs, 0, &r), 0);
    CU_ASSERT_PTR_NULL(r);
    json_decref(empty);

    /* a record update of a task with no "tasks" entry comes with
     * task_state NULL: the tasks map is left alone */
    json_t *trec = json_pack("{s:s}", "state", "RUNNING");
    pyoco_event task =
        run_ev(PYOCO_EV_TASK_UPDATED, 10, "r1", PYOCO_STATUS_RUNNING);
    task.task = "t";
    task.task_record = trec;
    task.task_state = NULL;
    CU_ASSERT_EQUAL(pyoco_storage_rec_from_event(&task, 0, &r), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->v[2].type, PYOCO_STORAGE_V_NULL);
    CU_ASSERT_STRING_EQUAL(r->v[3].s, "{\"state\":\"RUNNING\"}");
    pyoco_storage_rec_free(r);
    char own[] = "SUCCEEDED";
    task.task_state = own;
    CU_ASSERT_EQUAL(pyoco_storage_rec_from_event(&task, 0, &r), 0);
    CU_ASSERT_STRING_EQUAL(r->v[2].s, "SUCCEEDED");
    pyoco_storage_rec_free(r);
    json_decref(trec);
    json_decref(params);
    json_decref(tags);
}

/* ---- writer + reader ----------------------------------------------------- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int notified;
} waiter;

static waiter W = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void on_notify(void *ud) {
    (void)ud;
    pthread_mutex_lock(&W.mu);
    W.notified++;
    pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mu);
}

/* Wait (bounded) until the writer reports committed >= seq or an error. */
static void wait_for(pyoco_storage_writer *w, uint64_t seq, bool want_error,
                     pyoco_storage_writer_state *st) {
    for (int i = 0; i < 1000; i++) {
        pyoco_storage_writer_state_get(w, st);
        if (want_error ? st->status < 0 : st->committed >= seq)
            return;
        pthread_mutex_lock(&W.mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&W.cv, &W.mu, &ts);
        pthread_mutex_unlock(&W.mu);
    }
}

static void push_ev(pyoco_storage_writer *w, const pyoco_event *ev,
                    uint64_t base) {
    pyoco_storage_rec *r = NULL;
    CU_ASSERT_EQUAL(pyoco_storage_rec_from_event(ev, base, &r), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    pyoco_storage_writer_push(w, r);
}

typedef struct env {
    pyoco_storage_db *db;
    pyoco_storage_sql *sql;
    pyoco_storage_writer *w;
    pyoco_storage_reader *rd;
} env;

static void env_open(env *e, const char *name, size_t batch_max) {
    char path[300], err[512] = "";
    int rc;
    memset(e, 0, sizeof(*e));
    tmp_path(path, sizeof(path), name);
    e->db = open_db(path, err, sizeof(err), &rc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    e->sql = pyoco_storage_sql_new(e->db->rw, err, sizeof(err));
    e->rd = pyoco_storage_reader_new(e->db->ro, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->sql);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->rd);
    pyoco_storage_writer_opts o = {.sql = e->sql,
                                   .batch_max = batch_max,
                                   .retry_min_s = 0.01,
                                   .retry_max_s = 0.05,
                                   .notify = on_notify};
    CU_ASSERT_EQUAL_FATAL(pyoco_storage_writer_start(&o, &e->w), 0);
}

static void env_close(env *e) {
    size_t lost = 99;
    pyoco_storage_writer_stop(e->w, &lost);
    CU_ASSERT_EQUAL(lost, 0);
    pyoco_storage_reader_free(e->rd);
    pyoco_storage_sql_free(e->sql);
    pyoco_storage_db_close(e->db);
}

/* submit -> assigned -> RUNNING -> task + logs -> COMPLETED */
static uint64_t push_lifecycle(pyoco_storage_writer *w, const char *id,
                               uint64_t seq, bool finish) {
    json_t *params = json_pack("{s:i}", "x", 1);
    json_t *meta = json_pack("{s:s}", "worker_id", "w1");
    pyoco_event ev =
        run_ev(PYOCO_EV_RUN_SUBMITTED, seq++, id, PYOCO_STATUS_PENDING);
    ev.params = params;
    push_ev(w, &ev, 0);
    ev = run_ev(PYOCO_EV_RUN_ASSIGNED, seq++, id, PYOCO_STATUS_PENDING);
    ev.metadata = meta;
    push_ev(w, &ev, 0);
    if (!finish) {
        json_decref(params);
        json_decref(meta);
        return seq;
    }
    ev = run_ev(PYOCO_EV_RUN_STATUS, seq++, id, PYOCO_STATUS_RUNNING);
    ev.metadata = meta;
    push_ev(w, &ev, 0);
    json_t *rec = json_pack("{s:s,s:f,s:f,s:f,s:n,s:i}", "state", "SUCCEEDED",
                            "started_at", 1000.0, "ended_at", 1000.2,
                            "duration_ms", 200.0, "error", "output", 42);
    ev = run_ev(PYOCO_EV_TASK_UPDATED, seq++, id, PYOCO_STATUS_RUNNING);
    ev.task = "t1";
    ev.task_state = "SUCCEEDED";
    ev.task_record = rec;
    push_ev(w, &ev, 0);
    ev.task = "t0"; /* a task with only a state */
    ev.task_state = "PENDING";
    ev.task_record = NULL;
    ev.seq = seq++;
    push_ev(w, &ev, 0);
    for (int batch = 0; batch < 2; batch++) {
        json_t *logs =
            json_pack("[{s:i,s:s,s:s,s:s},{s:i,s:s,s:s,s:s}]", "seq", batch * 2,
                      "task", "t1", "stream", "stdout", "text",
                      batch ? "c" : "a", "seq", batch * 2 + 1, "task", "t1",
                      "stream", "stderr", "text", batch ? "d" : "b");
        ev = run_ev(PYOCO_EV_LOGS_APPENDED, seq++, id, PYOCO_STATUS_RUNNING);
        ev.logs = logs;
        push_ev(w, &ev, 0);
        json_decref(logs);
    }
    ev = run_ev(PYOCO_EV_RUN_STATUS, seq++, id, PYOCO_STATUS_COMPLETED);
    ev.end_time = 1002.75;
    ev.metadata = meta;
    push_ev(w, &ev, 0);
    json_decref(rec);
    json_decref(params);
    json_decref(meta);
    return seq;
}

static void test_writer_roundtrip(void) {
    env e;
    env_open(&e, "roundtrip.db", 1024);
    uint64_t seq = push_lifecycle(e.w, "run-a", 1, true);
    pyoco_storage_writer_state st;
    wait_for(e.w, seq - 1, false, &st);
    CU_ASSERT_EQUAL(st.committed, seq - 1);
    CU_ASSERT_EQUAL(st.status, 0);
    CU_ASSERT_EQUAL(st.queued, 0);

    char err[256] = "";
    json_t *run =
        pyoco_storage_reader_run(e.rd, "run-a", false, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    json_t *want = json_loads(
        "{\"run_id\":\"run-a\",\"flow_name\":\"demo\",\"params\":{\"x\":1},"
        "\"status\":\"COMPLETED\",\"start_time\":1000.5,\"end_time\":1002.75,"
        "\"metadata\":{\"worker_id\":\"w1\"},\"run_duration_ms\":2250.0,"
        "\"tasks\":{\"t1\":\"SUCCEEDED\",\"t0\":\"PENDING\"},"
        "\"task_records\":{\"t1\":{\"state\":\"SUCCEEDED\",\"started_at\":"
        "1000.0,\"ended_at\":1000.2,\"duration_ms\":200.0,\"error\":null,"
        "\"output\":42}},"
        "\"task_summary\":{\"t1\":{\"state\":\"SUCCEEDED\",\"duration_ms\":"
        "200.0,\"ended_at\":1000.2}},"
        "\"logs\":[{\"seq\":0,\"task\":\"t1\",\"stream\":\"stdout\",\"text\":"
        "\"a\"},{\"seq\":1,\"task\":\"t1\",\"stream\":\"stderr\",\"text\":"
        "\"b\"},{\"seq\":2,\"task\":\"t1\",\"stream\":\"stdout\",\"text\":"
        "\"c\"},{\"seq\":3,\"task\":\"t1\",\"stream\":\"stderr\",\"text\":"
        "\"d\"}]}",
        0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    if (!json_equal(run, want)) {
        char *got = json_dumps(run, JSON_SORT_KEYS);
        fprintf(stderr, "\ngot: %s\n", got);
        free(got);
        CU_FAIL("stored run differs");
    }
    /* the task map keeps first-seen order */
    const char *first =
        json_object_iter_key(json_object_iter(json_object_get(run, "tasks")));
    CU_ASSERT_STRING_EQUAL(first, "t1");
    /* keys in the registry's (the reference server's) order */
    static const char *const order[] = {
        "run_id",     "flow_name", "params",          "status",
        "start_time", "end_time",  "tasks",           "task_records",
        "logs",       "metadata",  "run_duration_ms", "task_summary"};
    void *it = json_object_iter(run);
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(it);
        CU_ASSERT_STRING_EQUAL(json_object_iter_key(it), order[i]);
        it = json_object_iter_next(run, it);
    }
    CU_ASSERT_PTR_NULL(it);
    json_decref(want);
    json_decref(run);

    /* a task that has a record but no state yet, and a later state that
     * must not erase the record */
    json_t *rec = json_pack("{s:s}", "state", "RUNNING");
    pyoco_event ev =
        run_ev(PYOCO_EV_TASK_UPDATED, seq++, "run-a", PYOCO_STATUS_COMPLETED);
    ev.task = "t2";
    ev.task_record = rec;
    push_ev(e.w, &ev, 0);
    ev.task = "t1";
    ev.task_record = NULL;
    ev.task_state = "FAILED";
    ev.seq = seq++;
    push_ev(e.w, &ev, 0);
    json_decref(rec);
    wait_for(e.w, seq - 1, false, &st);
    run = pyoco_storage_reader_run(e.rd, "run-a", false, err, sizeof(err));
    json_t *tasks = json_object_get(run, "tasks");
    CU_ASSERT_EQUAL(json_object_size(tasks), 2);
    CU_ASSERT_PTR_NULL(json_object_get(tasks, "t2"));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(tasks, "t1")),
                           "FAILED");
    json_t *recs = json_object_get(run, "task_records");
    CU_ASSERT_EQUAL(json_object_size(recs), 2);
    CU_ASSERT_PTR_NOT_NULL(
        json_object_get(json_object_get(recs, "t1"), "duration_ms")); /* kept */
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(
            json_object_get(json_object_get(run, "task_summary"), "t2"),
            "state")),
        "RUNNING");
    json_decref(run);
    CU_ASSERT_PTR_NULL(
        pyoco_storage_reader_run(e.rd, "nope", false, err, sizeof(err)));
    env_close(&e);
}

static int restored_n;
static char restored[8][64];
static bool restored_queued[8];
static int outbox_n;

static int on_restore_run(const json_t *run, void *ud) {
    (void)ud;
    if (restored_n < 8) {
        snprintf(restored[restored_n], 64, "%s",
                 json_string_value(json_object_get(run, "run_id")));
        restored_queued[restored_n] =
            json_is_true(json_object_get(run, "queued"));
        CU_ASSERT_TRUE(json_is_array(json_object_get(run, "tags")));
    }
    restored_n++;
    return 0;
}

static int on_restore_outbox(const char *owner, const char *id,
                             const json_t *data, void *ud) {
    (void)ud;
    CU_ASSERT_STRING_EQUAL(owner, "webhook");
    CU_ASSERT_STRING_EQUAL(id, "n2");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(data, "attempt")), 3);
    outbox_n++;
    return 0;
}

static void test_restore_order(void) {
    env e;
    env_open(&e, "restore.db", 3);
    /* two finished runs (second one later evicted), then three queued ones
     * whose queue order differs from their start_time order, one of them
     * cancelled while queued */
    uint64_t seq = push_lifecycle(e.w, "done-1", 1, true);
    seq = push_lifecycle(e.w, "done-2", seq, true);
    pyoco_event ev =
        run_ev(PYOCO_EV_RUN_EVICTED, seq++, "done-2", PYOCO_STATUS_COMPLETED);
    push_ev(e.w, &ev, 0);
    const char *queued[] = {"q-b", "q-a", "q-c", "q-x"};
    for (int i = 0; i < 4; i++) {
        ev = run_ev(PYOCO_EV_RUN_SUBMITTED, seq++, queued[i],
                    PYOCO_STATUS_PENDING);
        ev.start_time = 2000.0 - i; /* later in the queue, earlier start */
        push_ev(e.w, &ev, 1000);
    }
    ev = run_ev(PYOCO_EV_RUN_STATUS, seq++, "q-x", PYOCO_STATUS_CANCELLING);
    ev.prev_status = PYOCO_STATUS_PENDING;
    push_ev(e.w, &ev, 0);
    seq = push_lifecycle(e.w, "assigned", seq, false); /* PENDING, not queued */
    json_t *data = json_pack("{s:i}", "attempt", 1);
    ev = (pyoco_event){.size = sizeof(ev),
                       .kind = PYOCO_EV_OUTBOX_PUT,
                       .seq = seq++,
                       .outbox_owner = "webhook",
                       .outbox_id = "n1",
                       .data = data};
    push_ev(e.w, &ev, 0);
    ev.outbox_id = "n2";
    ev.seq = seq++;
    push_ev(e.w, &ev, 0);
    json_object_set_new(data, "attempt", json_integer(3));
    ev.seq = seq++;
    push_ev(e.w, &ev, 0); /* upsert */
    ev.kind = PYOCO_EV_OUTBOX_DONE;
    ev.outbox_id = "n1";
    ev.data = NULL;
    ev.seq = seq++;
    push_ev(e.w, &ev, 0);
    json_decref(data);

    pyoco_storage_writer_state st;
    wait_for(e.w, seq - 1, false, &st);
    CU_ASSERT_EQUAL_FATAL(st.committed, seq - 1);

    uint64_t maxq = 0;
    CU_ASSERT_EQUAL(pyoco_storage_reader_max_queue_seq(e.rd, &maxq), 0);
    CU_ASSERT_TRUE(maxq > 1000);

    pyoco_storage_restore_cbs cbs = {.run = on_restore_run,
                                     .outbox = on_restore_outbox};
    pyoco_storage_restore_counts c;
    char err[256] = "";
    restored_n = outbox_n = 0;
    CU_ASSERT_EQUAL(
        pyoco_storage_reader_restore(e.rd, &cbs, &c, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.runs, 6);
    CU_ASSERT_EQUAL(c.queued, 3);
    CU_ASSERT_EQUAL(c.outbox, 1);
    CU_ASSERT_EQUAL(outbox_n, 1);
    CU_ASSERT_EQUAL_FATAL(restored_n, 6);
    /* not queued, by start_time: the q-x cancel and "assigned" are newer
     * than done-1 (start 1000.5, same as assigned: rowid breaks the tie) */
    CU_ASSERT_STRING_EQUAL(restored[0], "done-1");
    CU_ASSERT_STRING_EQUAL(restored[1], "assigned");
    CU_ASSERT_STRING_EQUAL(restored[2], "q-x");
    CU_ASSERT_FALSE(restored_queued[2]);
    /* queued: in queue order, not start_time order */
    CU_ASSERT_STRING_EQUAL(restored[3], "q-b");
    CU_ASSERT_STRING_EQUAL(restored[4], "q-a");
    CU_ASSERT_STRING_EQUAL(restored[5], "q-c");
    CU_ASSERT_TRUE(restored_queued[3] && restored_queued[4] &&
                   restored_queued[5]);
    /* the evicted run is still readable */
    json_t *run =
        pyoco_storage_reader_run(e.rd, "done-2", false, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(run);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(run, "logs")), 4);
    json_decref(run);
    /* batch_max 3: no transaction had more */
    pyoco_storage_batch_stat bs[256];
    size_t n = pyoco_storage_writer_take_stats(e.w, bs, 256), total = 0;
    CU_ASSERT_TRUE(n > 0);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_TRUE(bs[i].events >= 1 && bs[i].events <= 3);
        CU_ASSERT_TRUE(bs[i].commit_s >= 0);
        total += bs[i].events;
    }
    CU_ASSERT_EQUAL(total, seq - 1);
    env_close(&e);
}

/* A run whose assignment lease expired goes back into the queue at its
 * submission-order place (as the registry does), also after a restart. */
static void test_requeue(void) {
    env e;
    env_open(&e, "requeue.db", 1024);
    uint64_t seq = 1;
    const char *ids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        pyoco_event ev =
            run_ev(PYOCO_EV_RUN_SUBMITTED, seq++, ids[i], PYOCO_STATUS_PENDING);
        push_ev(e.w, &ev, 0);
    }
    json_t *meta = json_pack("{s:s}", "worker_id", "w1");
    pyoco_event ev =
        run_ev(PYOCO_EV_RUN_ASSIGNED, seq++, "a", PYOCO_STATUS_PENDING);
    ev.metadata = meta;
    push_ev(e.w, &ev, 0);
    json_decref(meta);
    meta = json_pack("{s:i}", "requeued", 1);
    ev = run_ev(PYOCO_EV_RUN_REQUEUED, seq++, "a", PYOCO_STATUS_PENDING);
    ev.metadata = meta;
    push_ev(e.w, &ev, 0);
    json_decref(meta);
    pyoco_storage_writer_state st;
    wait_for(e.w, seq - 1, false, &st);
    CU_ASSERT_EQUAL_FATAL(st.committed, seq - 1);
    pyoco_storage_restore_cbs cbs = {.run = on_restore_run,
                                     .outbox = on_restore_outbox};
    pyoco_storage_restore_counts c;
    char err[256] = "";
    restored_n = 0;
    CU_ASSERT_EQUAL(
        pyoco_storage_reader_restore(e.rd, &cbs, &c, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(restored_n, 3);
    CU_ASSERT_EQUAL(c.queued, 3);
    CU_ASSERT_STRING_EQUAL(restored[0], "a");
    CU_ASSERT_STRING_EQUAL(restored[1], "b");
    CU_ASSERT_STRING_EQUAL(restored[2], "c");
    CU_ASSERT_TRUE(restored_queued[0]);
    json_t *run = pyoco_storage_reader_run(e.rd, "a", false, err, sizeof(err));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_object_get(run, "metadata"), "requeued")),
                    1);
    json_decref(run);
    env_close(&e);
}

/* A full database (max_page_count) fails the batch; nothing committed moves
 * and nothing is dropped; with room again the same batch commits. */
static void test_writer_failure_and_retry(void) {
    env e;
    env_open(&e, "full.db", 1024);
    uint64_t seq = push_lifecycle(e.w, "before", 1, true);
    pyoco_storage_writer_state st;
    wait_for(e.w, seq - 1, false, &st);
    uint64_t ok_upto = st.committed;
    CU_ASSERT_EQUAL_FATAL(ok_upto, seq - 1);
    int64_t pages = q_int(e.db->rw, "PRAGMA page_count");
    char sql[80];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
             (long long)pages);
    sqlite3_exec(e.db->rw, sql, NULL, NULL, NULL);

    char *big = malloc(200000);
    memset(big, 'z', 199999);
    big[199999] = 0;
    json_t *logs = json_pack("[{s:i,s:s,s:s,s:s}]", "seq", 9, "task", "t1",
                             "stream", "stdout", "text", big);
    free(big);
    pyoco_event ev =
        run_ev(PYOCO_EV_LOGS_APPENDED, seq++, "before", PYOCO_STATUS_COMPLETED);
    ev.logs = logs;
    push_ev(e.w, &ev, 0);
    json_decref(logs);
    wait_for(e.w, 0, true, &st);
    CU_ASSERT_EQUAL(st.status, -EIO);
    CU_ASSERT_TRUE(st.errors >= 1);
    CU_ASSERT_EQUAL(st.committed, ok_upto);
    CU_ASSERT_EQUAL(st.queued, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.error, "full"));
    /* it keeps retrying (more errors), nothing moves */
    uint64_t errs = st.errors;
    for (int i = 0; i < 200 && st.errors == errs; i++) {
        usleep(5000);
        pyoco_storage_writer_state_get(e.w, &st);
    }
    CU_ASSERT_TRUE(st.errors > errs);
    CU_ASSERT_EQUAL(st.committed, ok_upto);

    sqlite3_exec(e.db->rw, "PRAGMA max_page_count = 1073741823", NULL, NULL,
                 NULL);
    wait_for(e.w, seq - 1, false, &st);
    CU_ASSERT_EQUAL(st.committed, seq - 1);
    CU_ASSERT_EQUAL(st.status, 0);
    CU_ASSERT_EQUAL(st.queued, 0);
    char err[256];
    json_t *run =
        pyoco_storage_reader_run(e.rd, "before", false, err, sizeof(err));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(run, "logs")), 5);
    json_decref(run);
    env_close(&e);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("storage_db", NULL, NULL);
    CU_add_test(s, "schema create and reopen", test_schema_create_and_reopen);
    CU_add_test(s, "newer schema refused", test_schema_newer_refused);
    CU_add_test(s, "garbage and foreign files refused",
                test_garbage_and_foreign_refused);
    CU_add_test(s, "corrupt pages refused", test_corrupt_refused);
    CU_add_test(s, "second owner refused", test_second_owner_refused);
    CU_add_test(s, "unwritable directory refused",
                test_unwritable_directory_refused);
    CU_add_test(s, "record from event", test_record_from_event);
    CU_add_test(s, "writer roundtrip", test_writer_roundtrip);
    CU_add_test(s, "restore order, eviction, outbox", test_restore_order);
    CU_add_test(s, "write failure and retry", test_writer_failure_and_retry);
    CU_add_test(s, "requeue", test_requeue);
}
