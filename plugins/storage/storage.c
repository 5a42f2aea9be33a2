/* storage.c - the storage plugin: makes every run change durable in SQLite
 * and puts the registry back at start-up.
 *
 * Loop thread: events -> write records -> the writer's queue. Writer thread
 * (writer.c): group commit, then a wake-up event on the loop, where the
 * durability barrier is advanced. Reads (restore, archive lookups) use a
 * separate read-only connection (reader.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <pyoco/plugin.h>

#include "reader.h"
#include "record.h"
#include "schema.h"
#include "sql.h"
#include "writer.h"

#define PLUGIN_VERSION "1.0.0"

typedef struct storage {
    pyoco_host *h;
    const pyoco_api *api;
    pyoco_storage_db *db;
    pyoco_storage_sql *sql;
    pyoco_storage_reader *reader;
    pyoco_storage_writer *writer;
    struct event *wake;
    bool archive_lookup;
    uint64_t queue_seq_base; /* keeps queue_seq growing across restarts */

    /* loop-thread view of the sequence */
    uint64_t max_seen;    /* highest seq of any event seen */
    uint64_t max_enq;     /* highest seq handed to the writer */
    uint64_t advanced;    /* highest upto reported with status 0 */
    uint64_t errors_seen; /* writer error count already published */
    bool failing;         /* the last report was an error */
    bool stopping, stop_reported;
} storage;

static const pyoco_config_key KEYS[] = {
    {"path", PYOCO_CONFIG_STRING, "pyoco.db",
     "SQLite database file (relative to the server's working directory)", NULL},
    {"synchronous", PYOCO_CONFIG_STRING, "FULL",
     "SQLite synchronous mode: FULL (an answered change survives power loss), "
     "NORMAL or OFF",
     NULL},
    {"batch_max", PYOCO_CONFIG_INT, "1024",
     "most events committed in one transaction", NULL},
    {"busy_timeout_ms", PYOCO_CONFIG_INT, "5000",
     "how long SQLite waits on a locked database", NULL},
    {"archive_lookup", PYOCO_CONFIG_BOOL, "true",
     "serve GET /runs/{id} of evicted runs from the database", NULL},
    {NULL, 0, NULL, NULL, NULL},
};

static const double COMMIT_BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,  0.1,    0.25,  0.5,
                                        1,      2.5,   5,      10};
static const double BATCH_BUCKETS[] = {1,   2,   4,   8,    16,   32,   64,
                                       128, 256, 512, 1024, 4096, 16384};

static void metric(storage *s, const char *name, const char *help,
                   pyoco_metric_type type, pyoco_metric_op op, double value,
                   const double *buckets, size_t nbuckets) {
    pyoco_metric_sample m = {.size = sizeof(m),
                             .name = name,
                             .help = help,
                             .type = type,
                             .op = op,
                             .value = value,
                             .buckets = buckets,
                             .nbuckets = nbuckets};
    s->api->metric(s->h, &m);
}

static void publish_stats(storage *s) {
    pyoco_storage_batch_stat st[256];
    size_t n;
    while ((n = pyoco_storage_writer_take_stats(s->writer, st, 256)) > 0) {
        for (size_t i = 0; i < n; i++) {
            metric(s, "pyoco_storage_commit_seconds",
                   "Time to write and commit one batch of events (SQLite).",
                   PYOCO_METRIC_HISTOGRAM, PYOCO_METRIC_OBSERVE, st[i].commit_s,
                   COMMIT_BUCKETS,
                   sizeof(COMMIT_BUCKETS) / sizeof(COMMIT_BUCKETS[0]));
            metric(s, "pyoco_storage_batch_events",
                   "Events committed per transaction (group commit).",
                   PYOCO_METRIC_HISTOGRAM, PYOCO_METRIC_OBSERVE,
                   (double)st[i].events, BATCH_BUCKETS,
                   sizeof(BATCH_BUCKETS) / sizeof(BATCH_BUCKETS[0]));
        }
    }
}

/* Loop thread: report progress to the durability barrier. Runs after each
 * writer commit or failure, and after events that need no write. */
static void on_wake(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    storage *s = arg;
    pyoco_storage_writer_state st;
    pyoco_storage_writer_state_get(s->writer, &st);
    if (st.errors > s->errors_seen) {
        metric(s, "pyoco_storage_write_errors_total",
               "Failed batch commits (each is retried).", PYOCO_METRIC_COUNTER,
               PYOCO_METRIC_ADD, (double)(st.errors - s->errors_seen), NULL, 0);
        s->errors_seen = st.errors;
    }
    publish_stats(s); /* may publish METRIC events: max_seen moves */
    if (st.status < 0) {
        if (!s->failing)
            s->api->log(s->h, PYOCO_LOG_ERROR,
                        "write to %s failed, retrying (%zu events pending; "
                        "changing requests get 503 meanwhile): %s",
                        s->db->path, st.queued, st.error);
        s->failing = true;
        /* Everyone waiting now depends on the failed batch. */
        s->api->durability_advance(s->h, s->max_seen, -EIO);
        return;
    }
    if (s->failing) {
        s->api->log(s->h, PYOCO_LOG_INFO, "writes to %s succeed again",
                    s->db->path);
        s->failing = false;
    }
    /* Writes commit in order: once the last one handed over is committed,
     * every event seen so far (including those needing no write) is. */
    uint64_t upto = st.committed >= s->max_enq ? s->max_seen : st.committed;
    if (upto > s->advanced) {
        s->advanced = upto;
        s->api->durability_advance(s->h, upto, 0);
    }
    if (s->stopping && !s->stop_reported && st.queued == 0) {
        s->stop_reported = true;
        s->api->log(s->h, PYOCO_LOG_INFO, "all writes committed to %s",
                    s->db->path);
        s->api->stop_done(s->h);
    }
}

static void notify_from_writer(void *ud) {
    storage *s = ud;
    event_active(s->wake, EV_READ, 0); /* thread-safe on a locking base */
}

static void on_event(const pyoco_event *ev, void *ud) {
    storage *s = ud;
    if (ev->seq > s->max_seen)
        s->max_seen = ev->seq;
    pyoco_storage_rec *r = NULL;
    int rc = pyoco_storage_rec_from_event(ev, s->queue_seq_base, &r);
    if (rc < 0) {
        s->api->log(s->h, PYOCO_LOG_ERROR,
                    "cannot persist %s event seq %llu: %s",
                    pyoco_event_kind_name(ev->kind),
                    (unsigned long long)ev->seq, strerror(-rc));
        return;
    }
    if (r) {
        s->max_enq = ev->seq;
        pyoco_storage_writer_push(s->writer, r);
        return;
    }
    /* Nothing to write. If nothing is pending either, the barrier can move
     * past this event: do it from the loop, not inside the bus dispatch.
     * (With writes pending, their commit wakes us anyway.) */
    if (!s->failing && s->advanced >= s->max_enq)
        event_active(s->wake, EV_READ, 0);
}

static json_t *archive_lookup(const char *run_id, void *ud) {
    storage *s = ud;
    char err[256] = "";
    json_t *run =
        pyoco_storage_reader_run(s->reader, run_id, false, err, sizeof(err));
    if (!run && err[0])
        s->api->log(s->h, PYOCO_LOG_WARN, "archive lookup: %s", err);
    return run;
}

static void fini(pyoco_host *h, void *state);

static int init(pyoco_host *h, const pyoco_api *api, void **state, char *err,
                size_t errlen) {
    storage *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->h = h;
    s->api = api;
    const char *path = api->config_string(h, "path");
    const char *sync = api->config_string(h, "synchronous");
    int64_t batch_max = 1024, busy = 5000;
    bool archive = true;
    api->config_int(h, "batch_max", &batch_max);
    api->config_int(h, "busy_timeout_ms", &busy);
    api->config_bool(h, "archive_lookup", &archive);
    int rc = -EINVAL;
    if (!path || !*path) {
        snprintf(err, errlen, "%s: plugins.%s.path: must not be empty",
                 api->config_where(h, "path"), api->plugin_name(h));
        goto bad;
    }
    if (!sync || (strcasecmp(sync, "FULL") && strcasecmp(sync, "NORMAL") &&
                  strcasecmp(sync, "OFF"))) {
        snprintf(err, errlen,
                 "%s: plugins.%s.synchronous: expected FULL, NORMAL or OFF, "
                 "got \"%s\"",
                 api->config_where(h, "synchronous"), api->plugin_name(h),
                 sync ? sync : "");
        goto bad;
    }
    if (batch_max < 1 || batch_max > 1000000) {
        snprintf(err, errlen,
                 "%s: plugins.%s.batch_max: expected 1..1000000, got %lld",
                 api->config_where(h, "batch_max"), api->plugin_name(h),
                 (long long)batch_max);
        goto bad;
    }
    if (busy < 0 || busy > 3600000) {
        snprintf(
            err, errlen,
            "%s: plugins.%s.busy_timeout_ms: expected 0..3600000, got %lld",
            api->config_where(h, "busy_timeout_ms"), api->plugin_name(h),
            (long long)busy);
        goto bad;
    }
    s->archive_lookup = archive;
    pyoco_storage_db_opts o = {
        .path = path, .synchronous = sync, .busy_timeout_ms = (int)busy};
    rc = pyoco_storage_db_open(&o, &s->db, err, errlen);
    if (rc < 0)
        goto bad;
    rc = -EIO;
    if (!(s->sql = pyoco_storage_sql_new(s->db->rw, err, errlen)) ||
        !(s->reader = pyoco_storage_reader_new(s->db->ro, err, errlen)))
        goto bad;
    if (pyoco_storage_reader_max_queue_seq(s->reader, &s->queue_seq_base) < 0) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db->ro));
        goto bad;
    }
    s->wake = event_new(api->event_base(h), -1, 0, on_wake, s);
    if (!s->wake) {
        snprintf(err, errlen, "cannot create the wake-up event");
        rc = -ENOMEM;
        goto bad;
    }
    pyoco_storage_writer_opts wo = {.sql = s->sql,
                                    .batch_max = (size_t)batch_max,
                                    .retry_min_s = 0.05,
                                    .retry_max_s = 2.0,
                                    .notify = notify_from_writer,
                                    .ud = s};
    rc = pyoco_storage_writer_start(&wo, &s->writer);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the writer thread: %s",
                 strerror(-rc));
        goto bad;
    }
    if ((rc = api->durability_provide(h)) < 0 ||
        (rc = api->subscribe(h, PYOCO_EV_ANY, on_event, s, NULL)) < 0 ||
        (archive &&
         (rc = api->archive_source_add(h, archive_lookup, s, NULL)) < 0)) {
        snprintf(err, errlen, "cannot register with the host: %s",
                 strerror(-rc));
        goto bad;
    }
    api->log(h, PYOCO_LOG_INFO,
             "database %s (schema v%d%s, synchronous=%s, batch_max=%lld)", path,
             PYOCO_STORAGE_SCHEMA_VERSION,
             s->db->schema_version == 0 ? ", created"
             : s->db->schema_version < PYOCO_STORAGE_SCHEMA_VERSION
                 ? ", migrated"
                 : "",
             sync, (long long)batch_max);
    *state = s;
    return 0;
bad:
    fini(h, s); /* the host calls no fini after a failed init */
    return rc < 0 ? rc : -EINVAL;
}

static int restore_run(const json_t *run, void *ud) {
    storage *s = ud;
    int rc = s->api->run_restore(s->h, run);
    if (rc < 0)
        s->api->log(s->h, PYOCO_LOG_WARN, "cannot restore run %s: %s",
                    json_string_value(json_object_get(run, "run_id")),
                    strerror(-rc));
    return rc;
}

static int restore_outbox(const char *owner, const char *id, const json_t *data,
                          void *ud) {
    storage *s = ud;
    int rc = s->api->outbox_restore(s->h, owner, id, data);
    if (rc < 0)
        s->api->log(s->h, PYOCO_LOG_WARN,
                    "cannot hand outbox entry %s back to %s: %s", id, owner,
                    strerror(-rc));
    return rc;
}

static int start(pyoco_host *h, void *state) {
    storage *s = state;
    pyoco_storage_restore_cbs cbs = {
        .run = restore_run, .outbox = restore_outbox, .ud = s};
    pyoco_storage_restore_counts c;
    char err[512] = "";
    int rc =
        pyoco_storage_reader_restore(s->reader, &cbs, &c, err, sizeof(err));
    if (rc < 0) {
        s->api->log(h, PYOCO_LOG_ERROR, "cannot restore from %s: %s",
                    s->db->path, err);
        return rc;
    }
    /* the error counter exists (at 0) before the first error */
    metric(s, "pyoco_storage_write_errors_total",
           "Failed batch commits (each is retried).", PYOCO_METRIC_COUNTER,
           PYOCO_METRIC_ADD, 0, NULL, 0);
    s->api->log(h, PYOCO_LOG_INFO,
                "restored %zu runs, %zu queued, %zu outbox%s", c.runs, c.queued,
                c.outbox, c.failed ? " (some entries failed, see above)" : "");
    return 0;
}

static int stop(pyoco_host *h, void *state) {
    storage *s = state;
    s->stopping = true;
    pyoco_storage_writer_state st;
    pyoco_storage_writer_state_get(s->writer, &st);
    if (st.queued == 0) {
        s->stop_reported = true;
        return 0;
    }
    s->api->log(h, PYOCO_LOG_INFO, "committing %zu pending events", st.queued);
    return 1; /* on_wake calls stop_done once the queue is empty */
}

static void fini(pyoco_host *h, void *state) {
    storage *s = state;
    if (!s)
        return;
    if (s->writer) {
        size_t lost = 0;
        pyoco_storage_writer_stop(s->writer, &lost);
        if (lost)
            s->api->log(h, PYOCO_LOG_ERROR,
                        "%zu events could not be written to %s", lost,
                        s->db->path);
    }
    if (s->wake)
        event_free(s->wake);
    pyoco_storage_reader_free(s->reader);
    pyoco_storage_sql_free(s->sql);
    pyoco_storage_db_close(s->db);
    free(s);
}

PYOCO_PLUGIN_EXPORT const pyoco_plugin_desc *pyoco_plugin_entry(void) {
    static const pyoco_plugin_desc desc = {
        PYOCO_PLUGIN_DESC_INIT,
        .name = "storage",
        .version = PLUGIN_VERSION,
        .description = "SQLite durability: runs survive restarts and crashes",
        .config_keys = KEYS,
        .init = init,
        .start = start,
        .stop = stop,
        .fini = fini,
    };
    return &desc;
}
