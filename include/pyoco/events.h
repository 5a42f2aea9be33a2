/* pyoco/events.h - what the core publishes on its event bus.
 *
 * Kinds are append-only: a new kind gets a new number, an existing one never
 * changes meaning. The payload is one struct for every kind; which fields are
 * set depends on the kind (see the table below). Fields that a kind does not
 * set are zero / NULL. The struct only grows at the end: read `size` before
 * touching a field added in a later minor version (PYOCO_EVENT_HAS).
 *
 * Lifetime: the payload and everything it points to are const and valid only
 * for the duration of the callback. A subscriber that keeps data copies it
 * (strdup, json_deep_copy) or takes a reference explicitly (json_incref). */
#ifndef PYOCO_EVENTS_H
#define PYOCO_EVENTS_H

#include <jansson.h>

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pyoco_event_kind {
    PYOCO_EV_ANY = 0,           /* subscribe only: every kind */
    PYOCO_EV_RUN_SUBMITTED = 1, /* run, params, tags */
    PYOCO_EV_RUN_ASSIGNED = 2,  /* run, worker_id, metadata */
    PYOCO_EV_RUN_STATUS = 3,    /* run, status, prev_status, metadata */
    PYOCO_EV_TASK_UPDATED =
        4, /* run, task, task_state, task_record, task_duration_ms */
    PYOCO_EV_LOGS_APPENDED =
        5, /* run, logs (entries as stored, after the cap) */
    PYOCO_EV_RUN_FINISHED = 6,     /* run, status (terminal), run_duration_s */
    PYOCO_EV_RUN_EVICTED = 7,      /* run (about to leave memory) */
    PYOCO_EV_SERVER_STARTED = 8,   /* (no run) after the listener is open */
    PYOCO_EV_SERVER_STOPPING = 9,  /* (no run) before plugins are stopped */
    PYOCO_EV_RUN_RESTORED = 10,    /* run, data = the restored run object */
    PYOCO_EV_OUTBOX_PUT = 11,      /* outbox_owner, outbox_id, data */
    PYOCO_EV_OUTBOX_DONE = 12,     /* outbox_owner, outbox_id */
    PYOCO_EV_OUTBOX_RESTORED = 13, /* outbox_owner, outbox_id, data */
    PYOCO_EV_HTTP_REQUEST =
        14, /* http_method, http_route, http_status, http_duration_s */
    PYOCO_EV_METRIC = 15, /* metric: a plugin's measurement (api->metric) */
    PYOCO_EV_RUN_REQUEUED = 16, /* run, metadata: back in the queue (lease
                                   expired) */
} pyoco_event_kind;

#define PYOCO_EV_KIND_COUNT 17

/* A measurement any plugin can publish (webhook deliveries, storage commit
 * latency, ...) without knowing who exports it; an exporter (prometheus)
 * folds these into families by name. The first sample of a name fixes its
 * type, help and label names. */
typedef enum pyoco_metric_type {
    PYOCO_METRIC_COUNTER = 1,   /* op ADD only, value >= 0 */
    PYOCO_METRIC_GAUGE = 2,     /* op ADD or SET */
    PYOCO_METRIC_HISTOGRAM = 3, /* op OBSERVE */
} pyoco_metric_type;

typedef enum pyoco_metric_op {
    PYOCO_METRIC_ADD = 1,
    PYOCO_METRIC_SET = 2,
    PYOCO_METRIC_OBSERVE = 3,
} pyoco_metric_op;

typedef struct pyoco_metric_sample {
    uint32_t size;    /* sizeof(pyoco_metric_sample) */
    const char *name; /* Prometheus name, e.g. pyoco_webhook_deliveries_total */
    const char *help;
    pyoco_metric_type type;
    pyoco_metric_op op;
    double value;
    size_t nlabels;
    const char *const *label_names;  /* nlabels entries */
    const char *const *label_values; /* nlabels entries, any UTF-8 */
    const double *buckets;           /* HISTOGRAM: upper bounds, increasing; */
    size_t nbuckets;                 /* NULL/0 = the default buckets */
} pyoco_metric_sample;

typedef struct pyoco_event {
    uint32_t size; /* sizeof(pyoco_event) as the host built it */
    uint32_t kind; /* pyoco_event_kind */
    uint64_t seq;  /* bus sequence number, 1, 2, 3... per process */
    double time;   /* Unix seconds when it happened */

    /* Run events: a snapshot of the run's header after the change. */
    const char *run_id;
    const char *flow_name;
    pyoco_run_status status; /* the run's status after the change */
    pyoco_run_status
        prev_status; /* RUN_STATUS: the status it left (NONE at submit) */
    double start_time;
    double end_time;        /* 0 when not set */
    const json_t *params;   /* object */
    const json_t *tags;     /* array of strings */
    const json_t *metadata; /* object */

    /* RUN_ASSIGNED */
    const char *worker_id;

    /* TASK_UPDATED: the task's state and full merged record (record may be
     * NULL when the task has only a state). task_duration_ms >= 0 exactly
     * once per run and task: the first time its record has both duration_ms
     * and ended_at (negative durations are never reported); -1 otherwise. */
    const char *task;
    const char *task_state;
    const json_t *task_record;
    double task_duration_ms;

    /* LOGS_APPENDED: array of {"seq","task","stream","text","timestamp"?}
     * exactly as stored (truncated text, dropped entries left out). */
    const json_t *logs;

    /* RUN_FINISHED: once per terminal status a run enters. run_duration_s
     * (end_time - start_time) is >= 0 only the first time a run becomes
     * terminal and the value is not negative; -1 otherwise. */
    double run_duration_s;

    /* RUN_RESTORED / OUTBOX_*: kind-specific JSON. */
    const json_t *data;
    const char *outbox_owner; /* plugin name that owns the outbox entry */
    const char *outbox_id;

    /* HTTP_REQUEST: published after a reply is sent. http_route is the
     * pattern that matched ("/runs/{run_id}") or NULL when none did. */
    const char *http_method;
    const char *http_route;
    int http_status;
    double http_duration_s;

    /* METRIC */
    const pyoco_metric_sample *metric;
} pyoco_event;

/* True when the event struct the host built contains `field`. */
#define PYOCO_EVENT_HAS(ev, field)                                             \
    ((ev)->size >= offsetof(pyoco_event, field) + sizeof((ev)->field))

typedef void (*pyoco_event_fn)(const pyoco_event *ev, void *user_data);

/* Name of a kind ("run_submitted", ...), "unknown" for others. */
static inline const char *pyoco_event_kind_name(uint32_t kind) {
    static const char *const names[PYOCO_EV_KIND_COUNT] = {"any",
                                                           "run_submitted",
                                                           "run_assigned",
                                                           "run_status",
                                                           "task_updated",
                                                           "logs_appended",
                                                           "run_finished",
                                                           "run_evicted",
                                                           "server_started",
                                                           "server_stopping",
                                                           "run_restored",
                                                           "outbox_put",
                                                           "outbox_done",
                                                           "outbox_restored",
                                                           "http_request",
                                                           "metric",
                                                           "run_requeued"};
    return kind < PYOCO_EV_KIND_COUNT ? names[kind] : "unknown";
}

/* Wire name of a status ("PENDING", ...); NULL for NONE or out of range. */
static inline const char *pyoco_status_name(pyoco_run_status s) {
    static const char *const names[PYOCO_STATUS_COUNT] = {
        NULL,     "PENDING",    "RUNNING",  "COMPLETED",
        "FAILED", "CANCELLING", "CANCELLED"};
    return (unsigned)s < PYOCO_STATUS_COUNT ? names[s] : NULL;
}

static inline int pyoco_status_is_terminal(pyoco_run_status s) {
    return s == PYOCO_STATUS_COMPLETED || s == PYOCO_STATUS_FAILED ||
           s == PYOCO_STATUS_CANCELLED;
}

#ifdef __cplusplus
}
#endif
#endif
