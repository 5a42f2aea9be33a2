/* sql.c - one prepared statement per record kind. Parameter ?N is the
 * record's value N-1 (see record.c for the layouts). */
#include "sql.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const SQL[PYOCO_STORAGE_OP_COUNT] = {
    [PYOCO_STORAGE_OP_RUN_INSERT] =
        "INSERT OR REPLACE INTO runs (run_id, flow_name, params, tags, status,"
        " start_time, end_time, metadata, queued, queue_seq, evicted)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, 0)",
    [PYOCO_STORAGE_OP_RUN_ASSIGNED] =
        "UPDATE runs SET status = ?2, metadata = ?3, queued = 0"
        " WHERE run_id = ?1",
    /* Any status but PENDING means the run has left the queue (assigned,
     * cancelled in the queue, finished). */
    [PYOCO_STORAGE_OP_RUN_STATUS] =
        "UPDATE runs SET status = ?2, end_time = ?3, metadata = ?4,"
        " queued = CASE WHEN ?2 = 'PENDING' THEN queued ELSE 0 END"
        " WHERE run_id = ?1",
    /* A NULL state or record means "none yet": it never erases one. */
    [PYOCO_STORAGE_OP_TASK] =
        "INSERT INTO tasks (run_id, name, state, record, state_order,"
        " record_order) VALUES (?1, ?2, ?3, ?4,"
        " CASE WHEN ?3 IS NOT NULL THEN (SELECT coalesce(max(state_order), 0)"
        " + 1 FROM tasks WHERE run_id = ?1) END,"
        " CASE WHEN ?4 IS NOT NULL THEN (SELECT coalesce(max(record_order), 0)"
        " + 1 FROM tasks WHERE run_id = ?1) END)"
        " ON CONFLICT (run_id, name) DO UPDATE SET"
        " state = coalesce(excluded.state, tasks.state),"
        " record = coalesce(excluded.record, tasks.record),"
        " state_order = coalesce(tasks.state_order, excluded.state_order),"
        " record_order = coalesce(tasks.record_order, excluded.record_order)",
    /* ?3 is the run's next log index (see apply_logs) */
    [PYOCO_STORAGE_OP_LOGS] =
        "INSERT INTO logs (run_id, idx, task, entry)"
        " SELECT ?1, ?3 + key, json_extract(value, '$.task'), value"
        " FROM json_each(?2)",
    [PYOCO_STORAGE_OP_EVICTED] =
        "UPDATE runs SET evicted = 1 WHERE run_id = ?1",
    [PYOCO_STORAGE_OP_OUTBOX_PUT] =
        "INSERT INTO outbox (owner, id, data) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (owner, id) DO UPDATE SET data = excluded.data",
    /* The registry puts it back at its original place (submission order),
     * which its unchanged queue_seq keeps. */
    [PYOCO_STORAGE_OP_RUN_REQUEUED] =
        "UPDATE runs SET status = ?2, metadata = ?3,"
        " queued = CASE WHEN ?2 = 'PENDING' THEN 1 ELSE 0 END"
        " WHERE run_id = ?1",
    [PYOCO_STORAGE_OP_OUTBOX_DONE] =
        "DELETE FROM outbox WHERE owner = ?1 AND id = ?2",
};

struct pyoco_storage_sql {
    sqlite3 *db;
    sqlite3_stmt *st[PYOCO_STORAGE_OP_COUNT];
    sqlite3_stmt *next_log_idx;
    sqlite3_stmt *begin, *commit, *rollback;
};

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err,
                size_t errlen) {
    int rc =
        sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "cannot prepare \"%s\": %s", sql,
                 sqlite3_errmsg(db));
    return rc;
}

pyoco_storage_sql *pyoco_storage_sql_new(sqlite3 *db, char *err,
                                         size_t errlen) {
    pyoco_storage_sql *q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->db = db;
    int rc = SQLITE_OK;
    for (int op = 1; rc == SQLITE_OK && op < PYOCO_STORAGE_OP_COUNT; op++)
        rc = prep(db, SQL[op], &q->st[op], err, errlen);
    if (rc == SQLITE_OK)
        rc = prep(
            db, "SELECT coalesce(max(idx) + 1, 0) FROM logs WHERE run_id = ?1",
            &q->next_log_idx, err, errlen);
    if (rc == SQLITE_OK)
        rc = prep(db, "BEGIN IMMEDIATE", &q->begin, err, errlen);
    if (rc == SQLITE_OK)
        rc = prep(db, "COMMIT", &q->commit, err, errlen);
    if (rc == SQLITE_OK)
        rc = prep(db, "ROLLBACK", &q->rollback, err, errlen);
    if (rc != SQLITE_OK) {
        pyoco_storage_sql_free(q);
        return NULL;
    }
    return q;
}

void pyoco_storage_sql_free(pyoco_storage_sql *q) {
    if (!q)
        return;
    for (int op = 0; op < PYOCO_STORAGE_OP_COUNT; op++)
        sqlite3_finalize(q->st[op]);
    sqlite3_finalize(q->next_log_idx);
    sqlite3_finalize(q->begin);
    sqlite3_finalize(q->commit);
    sqlite3_finalize(q->rollback);
    free(q);
}

static void bind_vals(sqlite3_stmt *st, const pyoco_storage_rec *r) {
    for (int i = 0; i < r->nvals; i++) {
        const pyoco_storage_val *v = &r->v[i];
        switch (v->type) {
        case PYOCO_STORAGE_V_INT:
            sqlite3_bind_int64(st, i + 1, v->i);
            break;
        case PYOCO_STORAGE_V_REAL:
            sqlite3_bind_double(st, i + 1, v->d);
            break;
        case PYOCO_STORAGE_V_TEXT:
            sqlite3_bind_text(st, i + 1, v->s, -1, SQLITE_STATIC);
            break;
        default:
            sqlite3_bind_null(st, i + 1);
        }
    }
}

static int step_done(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int apply_logs(pyoco_storage_sql *q, const pyoco_storage_rec *r) {
    sqlite3_stmt *s = q->next_log_idx;
    sqlite3_bind_text(s, 1, r->v[0].s, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_int64 next = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_ROW)
        return rc;
    sqlite3_stmt *st = q->st[PYOCO_STORAGE_OP_LOGS];
    bind_vals(st, r);
    sqlite3_bind_int64(st, 3, next);
    return step_done(st);
}

int pyoco_storage_sql_apply(pyoco_storage_sql *q, const pyoco_storage_rec *r,
                            char *err, size_t errlen) {
    if (r->op <= 0 || r->op >= PYOCO_STORAGE_OP_COUNT) {
        snprintf(err, errlen, "bad record op %d", (int)r->op);
        return SQLITE_MISUSE;
    }
    int rc;
    if (r->op == PYOCO_STORAGE_OP_LOGS) {
        rc = apply_logs(q, r);
    } else {
        bind_vals(q->st[r->op], r);
        rc = step_done(q->st[r->op]);
    }
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "%s", sqlite3_errmsg(q->db));
    return rc;
}

int pyoco_storage_sql_begin(pyoco_storage_sql *q) {
    return step_done(q->begin);
}

int pyoco_storage_sql_commit(pyoco_storage_sql *q) {
    return step_done(q->commit);
}

void pyoco_storage_sql_rollback(pyoco_storage_sql *q) {
    /* Only when a transaction is open: after a failed COMMIT SQLite may have
     * rolled back already. */
    if (!sqlite3_get_autocommit(q->db))
        step_done(q->rollback);
}

sqlite3 *pyoco_storage_sql_db(pyoco_storage_sql *q) {
    return q->db;
}
