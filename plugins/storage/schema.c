/* schema.c - open, lock, check and migrate the SQLite database. */
#include "schema.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

typedef struct migration {
    int version;
    const char *description;
    const char *sql;
} migration;

/* Append a step for every schema change; never edit a released one. */
static const migration MIGRATIONS[] = {
    {1, "initial schema: runs, tasks, logs, outbox, meta",
     "CREATE TABLE runs ("
     "  run_id TEXT PRIMARY KEY,"
     "  flow_name TEXT NOT NULL,"
     "  params TEXT NOT NULL DEFAULT '{}',"
     "  tags TEXT NOT NULL DEFAULT '[]',"
     "  status TEXT NOT NULL,"
     "  start_time REAL NOT NULL,"
     "  end_time REAL,"
     "  metadata TEXT NOT NULL DEFAULT '{}',"
     "  queued INTEGER NOT NULL DEFAULT 0,"
     "  queue_seq INTEGER NOT NULL DEFAULT 0,"
     "  evicted INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX runs_restore ON runs(evicted, queued, start_time);"
     "CREATE INDEX runs_queue ON runs(queue_seq);"
     /* state_order / record_order: the order in which a run's tasks first
      * got a state / a record (GET lists them in those orders) */
     "CREATE TABLE tasks ("
     "  run_id TEXT NOT NULL, name TEXT NOT NULL, state TEXT, record TEXT,"
     "  state_order INTEGER, record_order INTEGER,"
     "  PRIMARY KEY (run_id, name));"
     /* a rowid table: entries can be large (WITHOUT ROWID suits small rows) */
     "CREATE TABLE logs ("
     "  run_id TEXT NOT NULL, idx INTEGER NOT NULL, task TEXT,"
     "  entry TEXT NOT NULL, PRIMARY KEY (run_id, idx));"
     "CREATE TABLE outbox ("
     "  owner TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,"
     "  PRIMARY KEY (owner, id));"
     "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"},
};

#define NMIGRATIONS (sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0]))

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* SQLite result code -> the errno we report. */
static int sqlite_errno(int code) {
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return -EACCES;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return -EILSEQ;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_NOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

static int int_query(sqlite3 *db, const char *sql, int64_t *out) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int pyoco_storage_schema_migrate(sqlite3 *db, const char *path, int *from,
                                 char *err, size_t errlen) {
    int64_t version = 0, foreign = 0;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(err, errlen, sqlite_errno(rc),
                    "database %s: cannot lock: %s", path, sqlite3_errmsg(db));
    rc = int_query(db, "PRAGMA user_version", &version);
    if (rc == SQLITE_OK && version == 0)
        rc = int_query(db,
                       "SELECT count(*) FROM sqlite_master WHERE name NOT "
                       "LIKE 'sqlite_%'",
                       &foreign);
    if (rc != SQLITE_OK) {
        int e = fail(err, errlen, sqlite_errno(rc), "database %s: %s", path,
                     sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return e;
    }
    if (from)
        *from = (int)version;
    if (version > PYOCO_STORAGE_SCHEMA_VERSION) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return fail(err, errlen, -EPROTO,
                    "%s: database schema v%lld is newer than this server (v%d)",
                    path, (long long)version, PYOCO_STORAGE_SCHEMA_VERSION);
    }
    if (version == 0 && foreign > 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return fail(err, errlen, -EILSEQ,
                    "%s: not a pyoco database (user_version 0 but it already "
                    "has tables)",
                    path);
    }
    char *msg = NULL;
    rc = sqlite3_exec(db,
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      "  version INTEGER PRIMARY KEY,"
                      "  description TEXT NOT NULL,"
                      "  applied_at REAL NOT NULL)",
                      NULL, NULL, &msg);
    for (size_t i = 0; rc == SQLITE_OK && i < NMIGRATIONS; i++) {
        const migration *m = &MIGRATIONS[i];
        if (m->version <= version)
            continue;
        rc = sqlite3_exec(db, m->sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK)
            break;
        /* the description goes through a bound value, not the SQL text */
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(db,
                                "INSERT INTO schema_migrations VALUES (?1, ?2, "
                                "(julianday('now') - 2440587.5) * 86400.0)",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int(st, 1, m->version);
            sqlite3_bind_text(st, 2, m->description, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_OK) {
            char sql[64];
            snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", m->version);
            rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        }
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int e = fail(err, errlen, sqlite_errno(rc),
                     "database %s: schema migration failed: %s", path,
                     msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return e;
    }
    return 0;
}

static int open_lock(pyoco_storage_db *d, char *err, size_t errlen) {
    d->lock_fd = open(d->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->lock_fd < 0) {
        int e = errno;
        return fail(
            err, errlen, -e,
            "database %s: cannot create lock file %s: %s (is the directory "
            "writable?)",
            d->path, d->lock_path, strerror(e));
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK)
            return fail(err, errlen, -EBUSY,
                        "database %s is in use by another server (%s is "
                        "locked)",
                        d->path, d->lock_path);
        return fail(err, errlen, -e, "database %s: cannot lock %s: %s", d->path,
                    d->lock_path, strerror(e));
    }
    return 0;
}

static int check_db(pyoco_storage_db *d, const pyoco_storage_db_opts *o,
                    char *err, size_t errlen) {
    sqlite3 *db = d->rw;
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, o->busy_timeout_ms);
    if (sqlite3_db_readonly(db, "main") == 1)
        return fail(err, errlen, -EACCES,
                    "database %s is read-only (the server needs write "
                    "access)",
                    d->path);
    /* quick_check reads every page: it also turns a garbage file into
     * SQLITE_NOTADB here rather than on the first write. */
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const char *res = (const char *)sqlite3_column_text(st, 0);
            if (!res || strcmp(res, "ok") != 0) {
                int e = fail(err, errlen, -EILSEQ, "database %s is corrupt: %s",
                             d->path, res ? res : "(no result)");
                sqlite3_finalize(st);
                return e;
            }
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return fail(err, errlen, sqlite_errno(rc), "database %s: %s", d->path,
                    sqlite3_errmsg(db));
    st = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        rc = mode && strcasecmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return fail(err, errlen, sqlite_errno(rc),
                    "database %s: cannot switch to WAL mode: %s", d->path,
                    sqlite3_errmsg(db));
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA synchronous=%s", o->synchronous);
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(err, errlen, sqlite_errno(rc), "database %s: %s: %s",
                    d->path, sql, sqlite3_errmsg(db));
    rc = pyoco_storage_schema_migrate(db, d->path, &d->schema_version, err,
                                      errlen);
    if (rc < 0)
        return rc;
    /* A real write up front: a file we cannot write fails now, not on the
     * first heartbeat. */
    rc = sqlite3_exec(
        db,
        "INSERT INTO meta(key, value) VALUES ('last_open', "
        "(julianday('now') - 2440587.5) * 86400.0) ON CONFLICT(key) DO UPDATE "
        "SET value = excluded.value",
        NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(err, errlen, sqlite_errno(rc),
                    "database %s: cannot write: %s", d->path,
                    sqlite3_errmsg(db));
    return 0;
}

int pyoco_storage_db_open(const pyoco_storage_db_opts *o,
                          pyoco_storage_db **out, char *err, size_t errlen) {
    *out = NULL;
    pyoco_storage_db *d = calloc(1, sizeof(*d));
    if (!d)
        return fail(err, errlen, -ENOMEM, "out of memory");
    d->lock_fd = -1;
    /* absolute, so every message names the file unambiguously */
    char cwd[4096];
    if (o->path[0] != '/' && getcwd(cwd, sizeof(cwd))) {
        size_t len = strlen(cwd) + strlen(o->path) + 2;
        if ((d->path = malloc(len)))
            snprintf(d->path, len, "%s/%s", cwd, o->path);
    } else {
        d->path = strdup(o->path);
    }
    size_t n = (d->path ? strlen(d->path) : 0) + sizeof(".lock");
    d->lock_path = malloc(n);
    if (!d->path || !d->lock_path) {
        pyoco_storage_db_close(d);
        return fail(err, errlen, -ENOMEM, "out of memory");
    }
    snprintf(d->lock_path, n, "%s.lock", d->path);
    int rc = open_lock(d, err, errlen);
    if (rc < 0)
        goto bad;
    rc = sqlite3_open_v2(d->path, &d->rw,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_FULLMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        rc = fail(err, errlen, sqlite_errno(rc), "database %s: cannot open: %s",
                  d->path, d->rw ? sqlite3_errmsg(d->rw) : "out of memory");
        goto bad;
    }
    rc = check_db(d, o, err, errlen);
    if (rc < 0)
        goto bad;
    rc = sqlite3_open_v2(d->path, &d->ro,
                         SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = fail(err, errlen, sqlite_errno(rc),
                  "database %s: cannot open the read connection: %s", d->path,
                  d->ro ? sqlite3_errmsg(d->ro) : "out of memory");
        goto bad;
    }
    sqlite3_extended_result_codes(d->ro, 1);
    sqlite3_busy_timeout(d->ro, o->busy_timeout_ms);
    *out = d;
    return 0;
bad:
    pyoco_storage_db_close(d);
    return rc;
}

void pyoco_storage_db_close(pyoco_storage_db *d) {
    if (!d)
        return;
    /* close_v2: statements still alive (they should not be) do not leak the
     * handle. */
    if (d->ro)
        sqlite3_close_v2(d->ro);
    if (d->rw)
        sqlite3_close_v2(d->rw);
    if (d->lock_fd >= 0)
        close(d->lock_fd); /* releases the flock */
    free(d->path);
    free(d->lock_path);
    free(d);
}
