/* The whole storage plugin against a mock host (the plugin's .c is
 * included, collectd-style, so the test can reach its state): config
 * validation, the durability barrier driven from the writer thread through
 * a real libevent loop, events that need no write, write errors (503 path)
 * and recovery, stop draining, restore on a second start, archive lookups
 * and the metrics it publishes. */
#include <CUnit/CUnit.h>
#include <event2/thread.h>
#include <stdarg.h>
#include <unistd.h>

#include "storage.c"

struct pyoco_host {
    struct event_base *base;
    const char *path, *sync;
    int64_t batch_max;
    pyoco_event_fn on_event;
    void *ev_ud;
    json_t *(*archive_fn)(const char *, void *);
    void *archive_ud;
    int provided;
    uint64_t adv_upto; /* last status-0 advance */
    int adv_errors;    /* advances with status < 0 */
    uint64_t adv_err_upto;
    int stop_done;
    json_t *restored; /* array of run objects */
    json_t *outbox;   /* array of [owner, id, data] */
    int metrics_commit, metrics_batch;
    double metrics_errors;
    char log[8192];
};

static void m_logv(pyoco_host *h, pyoco_log_level lvl, const char *fmt,
                   va_list ap) {
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    if (lvl >= PYOCO_LOG_WARN || getenv("PYOCO_TEST_VERBOSE"))
        fprintf(stderr, "  [storage] %s\n", line);
    size_t n = strlen(h->log);
    snprintf(h->log + n, sizeof(h->log) - n, "%s\n", line);
}

static void m_log(pyoco_host *h, pyoco_log_level lvl, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    m_logv(h, lvl, fmt, ap);
    va_end(ap);
}

static const char *m_config_string(pyoco_host *h, const char *key) {
    if (!strcmp(key, "path"))
        return h->path;
    if (!strcmp(key, "synchronous"))
        return h->sync;
    return NULL;
}

static int m_config_int(pyoco_host *h, const char *key, int64_t *out) {
    if (!strcmp(key, "batch_max"))
        *out = h->batch_max;
    else if (!strcmp(key, "busy_timeout_ms"))
        *out = 1000;
    else
        return -ENOENT;
    return 0;
}

static int m_config_bool(pyoco_host *h, const char *key, bool *out) {
    (void)h;
    (void)key;
    *out = true;
    return 0;
}

static const char *m_config_where(pyoco_host *h, const char *key) {
    (void)h;
    return strcmp(key, "synchronous") ? "" : "test.yaml:3";
}

static const char *m_plugin_name(pyoco_host *h) {
    (void)h;
    return "storage";
}

static int m_subscribe(pyoco_host *h, uint32_t kind, pyoco_event_fn fn,
                       void *ud, pyoco_free_fn free_fn) {
    (void)free_fn;
    CU_ASSERT_EQUAL(kind, PYOCO_EV_ANY);
    h->on_event = fn;
    h->ev_ud = ud;
    return 1;
}

static int m_provide(pyoco_host *h) {
    h->provided++;
    return 0;
}

static int m_advance(pyoco_host *h, uint64_t upto, int status) {
    if (status < 0) {
        h->adv_errors++;
        h->adv_err_upto = upto;
    } else {
        CU_ASSERT_TRUE(upto >= h->adv_upto); /* never goes back */
        h->adv_upto = upto;
    }
    return 0;
}

static int m_archive_add(pyoco_host *h, json_t *(*fn)(const char *, void *),
                         void *ud, pyoco_free_fn free_fn) {
    (void)free_fn;
    h->archive_fn = fn;
    h->archive_ud = ud;
    return 0;
}

static int m_run_restore(pyoco_host *h, const json_t *run) {
    json_array_append_new(h->restored, json_deep_copy(run));
    return 0;
}

static int m_outbox_restore(pyoco_host *h, const char *owner, const char *id,
                            const json_t *data) {
    json_array_append_new(h->outbox, json_pack("[s,s,O]", owner, id, data));
    return 0;
}

static struct event_base *m_event_base(pyoco_host *h) {
    return h->base;
}

static void m_stop_done(pyoco_host *h) {
    h->stop_done++;
}

static int m_metric(pyoco_host *h, const pyoco_metric_sample *m) {
    if (!strcmp(m->name, "pyoco_storage_commit_seconds")) {
        CU_ASSERT_EQUAL(m->type, PYOCO_METRIC_HISTOGRAM);
        h->metrics_commit++;
    } else if (!strcmp(m->name, "pyoco_storage_batch_events")) {
        CU_ASSERT_TRUE(m->value >= 1);
        h->metrics_batch++;
    } else if (!strcmp(m->name, "pyoco_storage_write_errors_total")) {
        CU_ASSERT_EQUAL(m->type, PYOCO_METRIC_COUNTER);
        h->metrics_errors += m->value;
    } else {
        CU_FAIL("unexpected metric name");
    }
    return 0;
}

static const pyoco_api API = {
    .size = sizeof(pyoco_api),
    .abi_major = PYOCO_ABI_MAJOR,
    .abi_minor = PYOCO_ABI_MINOR,
    .log = m_log,
    .logv = m_logv,
    .config_string = m_config_string,
    .config_int = m_config_int,
    .config_bool = m_config_bool,
    .config_where = m_config_where,
    .subscribe = m_subscribe,
    .durability_provide = m_provide,
    .durability_advance = m_advance,
    .archive_source_add = m_archive_add,
    .run_restore = m_run_restore,
    .outbox_restore = m_outbox_restore,
    .event_base = m_event_base,
    .stop_done = m_stop_done,
    .metric = m_metric,
    .plugin_name = m_plugin_name,
};

static char DB_PATH[256];

static void host_init(pyoco_host *h, const char *path) {
    memset(h, 0, sizeof(*h));
    h->base = event_base_new();
    h->path = path;
    h->sync = "FULL";
    h->batch_max = 64;
    h->restored = json_array();
    h->outbox = json_array();
}

static void host_free(pyoco_host *h) {
    event_base_free(h->base);
    json_decref(h->restored);
    json_decref(h->outbox);
}

/* Run the loop until cond holds (bounded: ~10 s). */
#define LOOP_UNTIL(h, cond)                                                    \
    do {                                                                       \
        for (int i_ = 0; i_ < 2000 && !(cond); i_++) {                         \
            struct timeval tv_ = {0, 5000};                                    \
            event_base_loopexit((h)->base, &tv_);                              \
            event_base_dispatch((h)->base);                                    \
        }                                                                      \
    } while (0)

static uint64_t SEQ;

static void emit(pyoco_host *h, pyoco_event ev) {
    ev.size = sizeof(ev);
    ev.seq = ++SEQ;
    h->on_event(&ev, h->ev_ud);
}

static void emit_run(pyoco_host *h, uint32_t kind, const char *id,
                     pyoco_run_status st) {
    emit(h, (pyoco_event){.kind = kind,
                          .run_id = id,
                          .flow_name = "flow",
                          .status = st,
                          .start_time = 1700000000.25 + (double)SEQ});
}

static void test_bad_config(void) {
    pyoco_host h;
    host_init(&h, DB_PATH);
    h.sync = "SOMETIMES";
    void *state = NULL;
    char err[512] = "";
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    CU_ASSERT_EQUAL(d->abi_major, PYOCO_ABI_MAJOR);
    CU_ASSERT_STRING_EQUAL(d->name, "storage");
    CU_ASSERT_EQUAL(d->init(&h, &API, &state, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(err, "test.yaml:3: plugins.storage.synchronous"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "SOMETIMES"));
    h.sync = "FULL";
    h.batch_max = 0;
    CU_ASSERT_EQUAL(d->init(&h, &API, &state, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "batch_max"));
    host_free(&h);
}

static void test_barrier_and_restart(void) {
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    pyoco_host h;
    host_init(&h, DB_PATH);
    void *state = NULL;
    char err[512] = "";
    CU_ASSERT_EQUAL_FATAL(d->init(&h, &API, &state, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(h.provided, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h.on_event);
    CU_ASSERT_EQUAL(d->start(&h, state), 0);
    CU_ASSERT_EQUAL(json_array_size(h.restored), 0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(h.log, "restored 0 runs, 0 queued, 0 outbox"));

    /* a finished run, two queued ones, an outbox entry */
    emit_run(&h, PYOCO_EV_RUN_SUBMITTED, "r-done", PYOCO_STATUS_PENDING);
    emit_run(&h, PYOCO_EV_RUN_STATUS, "r-done", PYOCO_STATUS_RUNNING);
    emit_run(&h, PYOCO_EV_RUN_FINISHED, "r-done", PYOCO_STATUS_COMPLETED);
    emit_run(&h, PYOCO_EV_RUN_SUBMITTED, "r-q1", PYOCO_STATUS_PENDING);
    emit_run(&h, PYOCO_EV_RUN_SUBMITTED, "r-q2", PYOCO_STATUS_PENDING);
    json_t *data = json_pack("{s:s}", "url", "http://x");
    emit(&h, (pyoco_event){.kind = PYOCO_EV_OUTBOX_PUT,
                           .outbox_owner = "webhook",
                           .outbox_id = "n1",
                           .data = data});
    json_decref(data);
    uint64_t last = SEQ;
    LOOP_UNTIL(&h, h.adv_upto >= last);
    CU_ASSERT_EQUAL(h.adv_upto, last);
    CU_ASSERT_EQUAL(h.adv_errors, 0);
    CU_ASSERT_TRUE(h.metrics_commit >= 1);
    CU_ASSERT_EQUAL(h.metrics_commit, h.metrics_batch);

    /* events that need no write still move the barrier (the core waits for
     * "everything published so far") */
    emit(&h, (pyoco_event){.kind = PYOCO_EV_HTTP_REQUEST, .http_status = 200});
    last = SEQ;
    LOOP_UNTIL(&h, h.adv_upto >= last);
    CU_ASSERT_EQUAL(h.adv_upto, last);

    /* the archive source reads the DB on the loop thread */
    json_t *run = h.archive_fn("r-done", h.archive_ud);
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(run, "status")),
                           "RUNNING");
    CU_ASSERT_PTR_NULL(json_object_get(run, "queued")); /* GET shape only */
    json_decref(run);
    CU_ASSERT_PTR_NULL(h.archive_fn("unknown", h.archive_ud));

    /* stop with writes pending: 1, then stop_done from the loop */
    emit_run(&h, PYOCO_EV_RUN_STATUS, "r-done", PYOCO_STATUS_COMPLETED);
    emit_run(&h, PYOCO_EV_RUN_EVICTED, "r-done", PYOCO_STATUS_COMPLETED);
    int r = d->stop(&h, state);
    CU_ASSERT_TRUE(r == 0 || r == 1);
    if (r == 1)
        LOOP_UNTIL(&h, h.stop_done == 1);
    CU_ASSERT_EQUAL(h.stop_done, r == 1 ? 1 : 0);
    d->fini(&h, state);
    host_free(&h);

    /* second start on the same file */
    host_init(&h, DB_PATH);
    CU_ASSERT_EQUAL_FATAL(d->init(&h, &API, &state, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(d->start(&h, state), 0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(h.log, "restored 2 runs, 2 queued, 1 outbox"));
    CU_ASSERT_EQUAL_FATAL(json_array_size(h.restored), 2);
    json_t *q1 = json_array_get(h.restored, 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(q1, "run_id")),
                           "r-q1");
    CU_ASSERT_TRUE(json_is_true(json_object_get(q1, "queued")));
    CU_ASSERT_TRUE(json_is_array(json_object_get(q1, "tags")));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                               json_array_get(h.restored, 1), "run_id")),
                           "r-q2");
    CU_ASSERT_EQUAL(json_array_size(h.outbox), 1);
    /* the evicted run comes back only through the archive source */
    run = h.archive_fn("r-done", h.archive_ud);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(run, "status")),
                           "COMPLETED");
    json_decref(run);
    /* new submissions queue after the restored ones */
    storage *s = state;
    CU_ASSERT_TRUE(s->queue_seq_base >= 5);
    CU_ASSERT_EQUAL(d->stop(&h, state), 0);
    d->fini(&h, state);
    host_free(&h);
}

static void test_write_error_then_recovery(void) {
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    pyoco_host h;
    host_init(&h, DB_PATH);
    void *state = NULL;
    char err[512] = "";
    CU_ASSERT_EQUAL_FATAL(d->init(&h, &API, &state, err, sizeof(err)), 0);
    storage *s = state;
    emit_run(&h, PYOCO_EV_RUN_SUBMITTED, "r-full", PYOCO_STATUS_PENDING);
    LOOP_UNTIL(&h, h.adv_upto >= SEQ);
    uint64_t ok = h.adv_upto;
    CU_ASSERT_EQUAL_FATAL(ok, SEQ);

    /* a full disk, as SQLite sees it: no page may be added */
    char sql[80];
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(s->db->rw, "PRAGMA page_count", -1, &st, NULL);
    sqlite3_step(st);
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
             (long long)sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    sqlite3_exec(s->db->rw, sql, NULL, NULL, NULL);

    char *big = malloc(300000);
    memset(big, 'y', 299999);
    big[299999] = 0;
    json_t *logs = json_pack("[{s:i,s:s,s:s,s:s}]", "seq", 0, "task", "t",
                             "stream", "stdout", "text", big);
    free(big);
    emit(&h, (pyoco_event){.kind = PYOCO_EV_LOGS_APPENDED,
                           .run_id = "r-full",
                           .status = PYOCO_STATUS_RUNNING,
                           .logs = logs});
    json_decref(logs);
    uint64_t failing = SEQ;
    LOOP_UNTIL(&h, h.adv_errors > 0);
    CU_ASSERT_TRUE(h.adv_errors > 0);
    CU_ASSERT_EQUAL(h.adv_err_upto, failing);
    CU_ASSERT_EQUAL(h.adv_upto, ok); /* durable point did not move */
    CU_ASSERT_TRUE(h.metrics_errors >= 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.log, "failed, retrying"));

    sqlite3_exec(s->db->rw, "PRAGMA max_page_count = 1073741823", NULL, NULL,
                 NULL);
    LOOP_UNTIL(&h, h.adv_upto >= failing);
    CU_ASSERT_EQUAL(h.adv_upto, failing);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.log, "succeed again"));
    json_t *run = h.archive_fn("r-full", h.archive_ud);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(run, "logs")), 1);
    json_decref(run);
    CU_ASSERT_EQUAL(d->stop(&h, state), 0);
    d->fini(&h, state);
    host_free(&h);
}

static void test_second_server_refused(void) {
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    pyoco_host a, b;
    host_init(&a, DB_PATH);
    host_init(&b, DB_PATH);
    void *sa = NULL, *sb = NULL;
    char err[512] = "";
    CU_ASSERT_EQUAL_FATAL(d->init(&a, &API, &sa, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(d->init(&b, &API, &sb, err, sizeof(err)), -EBUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, DB_PATH));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "in use by another server"));
    d->fini(&a, sa);
    host_free(&a);
    host_free(&b);
}

static int suite_init(void) {
    evthread_use_pthreads();
    char dir[] = "/tmp/pyoco-storage-plugin-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    snprintf(DB_PATH, sizeof(DB_PATH), "%s/pyoco.db", dir);
    return 0;
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("storage_plugin", suite_init, NULL);
    CU_add_test(s, "bad config", test_bad_config);
    CU_add_test(s, "barrier, stop and restart", test_barrier_and_restart);
    CU_add_test(s, "write error then recovery", test_write_error_then_recovery);
    CU_add_test(s, "second server refused", test_second_server_refused);
}
