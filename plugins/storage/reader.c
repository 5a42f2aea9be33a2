/* reader.c - stored rows -> run objects (GET /runs/{id} shape). */
#include "reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    Q_RUN,
    Q_STATES,
    Q_RECORDS,
    Q_LOGS,
    Q_LIST_DONE,
    Q_LIST_QUEUED,
    Q_OUTBOX,
    Q_MAX_QSEQ,
    Q_COUNT
};

static const char *const SQL[Q_COUNT] = {
    [Q_RUN] = "SELECT run_id, flow_name, params, tags, status, start_time,"
              " end_time, metadata, queued FROM runs WHERE run_id = ?1",
    [Q_STATES] = "SELECT name, state FROM tasks WHERE run_id = ?1"
                 " AND state IS NOT NULL ORDER BY state_order",
    [Q_RECORDS] = "SELECT name, record FROM tasks WHERE run_id = ?1"
                  " AND record IS NOT NULL ORDER BY record_order",
    [Q_LOGS] = "SELECT entry FROM logs WHERE run_id = ?1 ORDER BY idx",
    [Q_LIST_DONE] = "SELECT run_id FROM runs WHERE evicted = 0 AND queued = 0"
                    " ORDER BY start_time, rowid",
    [Q_LIST_QUEUED] = "SELECT run_id FROM runs WHERE evicted = 0 AND queued = 1"
                      " ORDER BY queue_seq",
    [Q_OUTBOX] = "SELECT owner, id, data FROM outbox ORDER BY rowid",
    [Q_MAX_QSEQ] = "SELECT coalesce(max(queue_seq), 0) FROM runs",
};

struct pyoco_storage_reader {
    sqlite3 *db;
    sqlite3_stmt *st[Q_COUNT];
};

pyoco_storage_reader *pyoco_storage_reader_new(sqlite3 *db, char *err,
                                               size_t errlen) {
    pyoco_storage_reader *rd = calloc(1, sizeof(*rd));
    if (!rd) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rd->db = db;
    for (int i = 0; i < Q_COUNT; i++) {
        if (sqlite3_prepare_v3(db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &rd->st[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "cannot prepare \"%s\": %s", SQL[i],
                     sqlite3_errmsg(db));
            pyoco_storage_reader_free(rd);
            return NULL;
        }
    }
    return rd;
}

void pyoco_storage_reader_free(pyoco_storage_reader *rd) {
    if (!rd)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(rd->st[i]);
    free(rd);
}

static void done(sqlite3_stmt *st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* A JSON column; NULL (or unparsable) -> NULL. */
static json_t *col_json(sqlite3_stmt *st, int col) {
    const char *txt = (const char *)sqlite3_column_text(st, col);
    if (!txt)
        return NULL;
    return json_loads(txt, JSON_DECODE_ANY, NULL);
}

static json_t *col_real_or_null(sqlite3_stmt *st, int col) {
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_real(sqlite3_column_double(st, col));
}

/* A record field for task_summary (null when absent). */
static json_t *field(const json_t *rec, const char *key) {
    json_t *v = json_object_get(rec, key);
    return v ? json_deep_copy(v) : json_null();
}

/* "tasks" in the order tasks first got a state; "task_records" and
 * "task_summary" in the order they first got a record (as the registry
 * renders them). */
static int add_tasks(pyoco_storage_reader *rd, const char *run_id, json_t *run,
                     json_t *summary) {
    json_t *tasks = json_object(), *records = json_object();
    sqlite3_stmt *st = rd->st[Q_STATES];
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *state = (const char *)sqlite3_column_text(st, 1);
        if (name && state)
            json_object_set_new(tasks, name, json_string(state));
    }
    done(st);
    if (rc == SQLITE_DONE) {
        st = rd->st[Q_RECORDS];
        sqlite3_bind_text(st, 1, run_id, -1, SQLITE_TRANSIENT);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            json_t *rec = col_json(st, 1);
            if (name && json_is_object(rec)) {
                json_t *sum = json_object();
                json_object_set_new(sum, "state", field(rec, "state"));
                json_object_set_new(sum, "duration_ms",
                                    field(rec, "duration_ms"));
                json_object_set_new(sum, "ended_at", field(rec, "ended_at"));
                json_object_set_new(summary, name, sum);
                json_object_set(records, name, rec);
            }
            json_decref(rec);
        }
        done(st);
    }
    json_object_set_new(run, "tasks", tasks);
    json_object_set_new(run, "task_records", records);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

static int add_logs(pyoco_storage_reader *rd, const char *run_id, json_t *run) {
    sqlite3_stmt *st = rd->st[Q_LOGS];
    json_t *logs = json_array();
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *e = col_json(st, 0);
        if (e)
            json_array_append_new(logs, e);
    }
    done(st);
    json_object_set_new(run, "logs", logs);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

json_t *pyoco_storage_reader_run(pyoco_storage_reader *rd, const char *run_id,
                                 bool for_restore, char *err, size_t errlen) {
    sqlite3_stmt *st = rd->st[Q_RUN];
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (rc != SQLITE_DONE && err)
            snprintf(err, errlen, "run %s: %s", run_id, sqlite3_errmsg(rd->db));
        done(st);
        return NULL;
    }
    json_t *run = json_object();
    const char *flow = (const char *)sqlite3_column_text(st, 1);
    const char *status = (const char *)sqlite3_column_text(st, 4);
    json_t *params = col_json(st, 2);
    json_t *tags = col_json(st, 3);
    json_t *metadata = col_json(st, 7);
    json_t *end = col_real_or_null(st, 6);
    double start = sqlite3_column_double(st, 5);
    bool queued = sqlite3_column_int(st, 8) != 0;

    /* key order as the registry renders it (the reference server's) */
    json_object_set_new(run, "run_id", json_string(run_id));
    json_object_set_new(run, "flow_name", json_string(flow ? flow : ""));
    json_object_set_new(run, "params",
                        json_is_object(params) ? json_incref(params)
                                               : json_object());
    json_object_set_new(run, "status", json_string(status ? status : ""));
    json_object_set_new(run, "start_time", json_real(start));
    json_object_set_new(run, "end_time", json_incref(end));
    json_t *run_duration =
        json_is_number(end)
            ? json_real((json_number_value(end) - start) * 1000.0)
            : json_null();
    json_t *tags_out = json_is_array(tags) ? json_incref(tags) : json_array();
    json_t *md_out =
        json_is_object(metadata) ? json_incref(metadata) : json_object();
    json_decref(params);
    json_decref(tags);
    json_decref(metadata);
    json_decref(end);
    done(st); /* before the next statements (the columns die here) */

    json_t *summary = json_object();
    int rc2 = add_tasks(rd, run_id, run, summary);
    if (rc2 == 0)
        rc2 = add_logs(rd, run_id, run);
    json_object_set_new(run, "metadata", md_out);
    json_object_set_new(run, "run_duration_ms", run_duration);
    json_object_set_new(run, "task_summary", summary);
    if (for_restore) {
        json_object_set_new(run, "tags", tags_out);
        json_object_set_new(run, "queued", json_boolean(queued));
    } else {
        json_decref(tags_out);
    }
    if (rc2 < 0) {
        if (err)
            snprintf(err, errlen, "run %s: %s", run_id, sqlite3_errmsg(rd->db));
        json_decref(run);
        return NULL;
    }
    return run;
}

/* Restore every run a list query yields. */
static int restore_list(pyoco_storage_reader *rd, sqlite3_stmt *list,
                        const pyoco_storage_restore_cbs *cbs,
                        pyoco_storage_restore_counts *c, bool queued, char *err,
                        size_t errlen) {
    int rc;
    while ((rc = sqlite3_step(list)) == SQLITE_ROW) {
        char id[128];
        const char *txt = (const char *)sqlite3_column_text(list, 0);
        snprintf(id, sizeof(id), "%s", txt ? txt : "");
        json_t *run = pyoco_storage_reader_run(rd, id, true, err, errlen);
        if (!run || cbs->run(run, cbs->ud) < 0) {
            c->failed++;
        } else {
            c->runs++;
            if (queued)
                c->queued++;
        }
        json_decref(run);
    }
    done(list);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(rd->db));
        return -EIO;
    }
    return 0;
}

int pyoco_storage_reader_restore(pyoco_storage_reader *rd,
                                 const pyoco_storage_restore_cbs *cbs,
                                 pyoco_storage_restore_counts *c, char *err,
                                 size_t errlen) {
    memset(c, 0, sizeof(*c));
    /* one read transaction: a consistent snapshot of everything */
    if (sqlite3_exec(rd->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(rd->db));
        return -EIO;
    }
    int rc = restore_list(rd, rd->st[Q_LIST_DONE], cbs, c, false, err, errlen);
    if (rc == 0)
        rc = restore_list(rd, rd->st[Q_LIST_QUEUED], cbs, c, true, err, errlen);
    if (rc == 0) {
        sqlite3_stmt *st = rd->st[Q_OUTBOX];
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            const char *owner = (const char *)sqlite3_column_text(st, 0);
            const char *id = (const char *)sqlite3_column_text(st, 1);
            json_t *data = col_json(st, 2);
            if (!owner || !id || !data ||
                cbs->outbox(owner, id, data, cbs->ud) < 0)
                c->failed++;
            else
                c->outbox++;
            json_decref(data);
        }
        done(st);
        if (s != SQLITE_DONE) {
            snprintf(err, errlen, "%s", sqlite3_errmsg(rd->db));
            rc = -EIO;
        }
    }
    sqlite3_exec(rd->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

int pyoco_storage_reader_max_queue_seq(pyoco_storage_reader *rd,
                                       uint64_t *out) {
    sqlite3_stmt *st = rd->st[Q_MAX_QSEQ];
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    done(st);
    return rc == SQLITE_ROW ? 0 : -EIO;
}
