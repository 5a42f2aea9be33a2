/* sse.c - the sse plugin: GET /runs/{run_id}/events as Server-Sent Events
 * (live run status, task updates and log lines, resumable with
 * Last-Event-ID). This file: configuration and lifecycle; the streams are
 * in sse_stream.c, the replay history in sse_ring.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "sse_plugin.h"

#define SSE_PLUGIN_VERSION "1.0.0"
#define SSE_ROUTE "/runs/{run_id}/events"

static const pyoco_config_key config_keys[] = {
    {"keepalive", PYOCO_CONFIG_DOUBLE, "15",
     "seconds between ': keepalive' comments on idle streams (0 = none)", NULL},
    {"replay_events", PYOCO_CONFIG_INT, "1000",
     "events kept per run for Last-Event-ID resumes", NULL},
    {"replay_runs", PYOCO_CONFIG_INT, "1000",
     "runs whose recent events are kept (least recently used dropped first)",
     NULL},
    {"max_buffer_bytes", PYOCO_CONFIG_INT, "1048576",
     "unsent bytes per client before the stream is dropped as too slow", NULL},
    {"max_streams", PYOCO_CONFIG_INT, "1000",
     "open streams at once; more are answered 503", NULL},
    {NULL, 0, NULL, NULL, NULL},
};

static int fail(char *err, size_t errlen, sse_state *st, const char *key,
                const char *msg) {
    const char *where = st->api->config_where(st->host, key);
    snprintf(err, errlen, "%s%splugins.sse.%s: %s",
             where && *where ? where : "", where && *where ? ": " : "", key,
             msg);
    return -EINVAL;
}

static int read_int(sse_state *st, const char *key, int64_t min, int64_t max,
                    size_t *out, char *err, size_t errlen) {
    int64_t v = (int64_t)*out;
    if (st->api->config_int(st->host, key, &v) == 0 && (v < min || v > max)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "expected an integer from %lld to %lld",
                 (long long)min, (long long)max);
        return fail(err, errlen, st, key, msg);
    }
    *out = (size_t)v;
    return 0;
}

/* Reads the block into st's settings; on error they are left half-set,
 * so reload reads into a copy first. */
static int read_config(sse_state *st, char *err, size_t errlen) {
    st->keepalive = 15;
    st->replay_events = 1000;
    st->replay_runs = 1000;
    st->max_buffer_bytes = 1048576;
    st->max_streams = 1000;
    double ka = st->keepalive;
    if (st->api->config_double(st->host, "keepalive", &ka) == 0 &&
        (!isfinite(ka) || ka < 0 || ka > 86400))
        return fail(err, errlen, st, "keepalive",
                    "expected seconds from 0 to 86400 (0 = no keepalive)");
    st->keepalive = ka;
    int rc;
    if ((rc = read_int(st, "replay_events", 1, 1000000, &st->replay_events, err,
                       errlen)) ||
        (rc = read_int(st, "replay_runs", 1, 10000000, &st->replay_runs, err,
                       errlen)) ||
        (rc = read_int(st, "max_buffer_bytes", 1024, (int64_t)1 << 34,
                       &st->max_buffer_bytes, err, errlen)) ||
        (rc = read_int(st, "max_streams", 1, 1000000, &st->max_streams, err,
                       errlen)))
        return rc;
    return 0;
}

static void state_free(sse_state *st) {
    if (!st)
        return;
    if (st->keepalive_ev)
        event_free(st->keepalive_ev);
    /* Streams are all ended at SERVER_STOPPING; any left here (init failed
     * later, or no stop) are only freed: the host ends pending replies. */
    while (st->streams) {
        sse_stream *s = st->streams;
        st->streams = s->all_next;
        free(s);
    }
    sse_table_free(&st->table);
    sse_buf_free(&st->scratch);
    free(st);
}

static int sse_init(pyoco_host *host, const pyoco_api *api, void **state,
                    char *err, size_t errlen) {
    sse_state *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    st->host = host;
    st->api = api;
    sse_buf_init(&st->scratch);
    int rc = read_config(st, err, errlen);
    if (rc == 0 &&
        (rc = sse_table_init(&st->table, st->replay_runs, st->replay_events)))
        snprintf(err, errlen, "out of memory");
    if (rc == 0) {
        rc = api->subscribe(host, PYOCO_EV_ANY, sse_on_event, st, NULL);
        if (rc > 0)
            rc = 0;
        else
            snprintf(err, errlen, "cannot subscribe to the bus: %s",
                     strerror(-rc));
    }
    if (rc == 0 && (rc = api->route_add(host, PYOCO_HTTP_GET, SSE_ROUTE,
                                        sse_on_request, st, NULL)))
        snprintf(err, errlen, "cannot serve %s: %s", SSE_ROUTE, strerror(-rc));
    if (rc) {
        state_free(st);
        return rc;
    }
    *state = st;
    return 0;
}

/* (Re)arm the keepalive timer for st->keepalive seconds (0 = off). */
static int arm_keepalive(sse_state *st) {
    if (st->keepalive_ev)
        event_del(st->keepalive_ev);
    if (st->keepalive <= 0)
        return 0;
    if (!st->keepalive_ev &&
        !(st->keepalive_ev = event_new(st->api->event_base(st->host), -1,
                                       EV_PERSIST, sse_on_keepalive, st)))
        return -ENOMEM;
    struct timeval tv = {
        (time_t)st->keepalive,
        (suseconds_t)((st->keepalive - floor(st->keepalive)) * 1e6)};
    return event_add(st->keepalive_ev, &tv) == 0 ? 0 : -EIO;
}

static int sse_start(pyoco_host *host, void *state) {
    sse_state *st = state;
    int rc = arm_keepalive(st);
    if (rc)
        return rc;
    /* Both series exist from the start, at zero. */
    pyoco_metric_sample g = {
        .size = sizeof(g),
        .name = "pyoco_sse_streams",
        .help = "Open Server-Sent Events streams (GET /runs/{id}/events).",
        .type = PYOCO_METRIC_GAUGE,
        .op = PYOCO_METRIC_SET,
        .value = 0,
    };
    st->api->metric(host, &g);
    pyoco_metric_sample c = {
        .size = sizeof(c),
        .name = "pyoco_sse_dropped_total",
        .help = "Event streams closed because the client read too slowly.",
        .type = PYOCO_METRIC_COUNTER,
        .op = PYOCO_METRIC_ADD,
        .value = 0,
    };
    st->api->metric(host, &c);
    st->api->log(host, PYOCO_LOG_INFO,
                 "serving %s (keepalive %.1f s, %zu events x %zu runs kept "
                 "for resumes, at most %zu streams)",
                 SSE_ROUTE, st->keepalive, st->replay_events, st->replay_runs,
                 st->max_streams);
    return 0;
}

static int sse_stop(pyoco_host *host, void *state) {
    sse_state *st = state;
    st->stopping = true;
    sse_close_all(st); /* normally done at SERVER_STOPPING already */
    if (st->keepalive_ev)
        event_del(st->keepalive_ev);
    return 0;
}

/* SIGHUP: every key applies live. Smaller limits act from the next event
 * (open streams over a new max_streams stay; rings keep their size until
 * their run's history is dropped; the LRU cap trims on the next unpin). */
static int sse_reload(pyoco_host *host, void *state, char *err, size_t errlen) {
    sse_state *st = state;
    sse_state next = *st;
    int rc = read_config(&next, err, errlen);
    if (rc)
        return rc;
    bool ka_changed = next.keepalive != st->keepalive;
    st->keepalive = next.keepalive;
    st->replay_events = next.replay_events;
    st->replay_runs = next.replay_runs;
    st->max_buffer_bytes = next.max_buffer_bytes;
    st->max_streams = next.max_streams;
    st->table.ring_cap = st->replay_events;
    st->table.max_slots = st->replay_runs;
    if (ka_changed && !st->stopping && (rc = arm_keepalive(st))) {
        snprintf(err, errlen, "cannot arm the keepalive timer");
        return rc;
    }
    st->api->log(host, PYOCO_LOG_INFO,
                 "reloaded: keepalive %.1f s, %zu events x %zu runs kept, "
                 "max_buffer_bytes %zu, max_streams %zu",
                 st->keepalive, st->replay_events, st->replay_runs,
                 st->max_buffer_bytes, st->max_streams);
    return 0;
}

static void sse_fini(pyoco_host *host, void *state) {
    state_free(state);
}

static const pyoco_plugin_desc sse_desc = {
    PYOCO_PLUGIN_DESC_INIT,
    .name = "sse",
    .version = SSE_PLUGIN_VERSION,
    .description = "live run events as Server-Sent Events "
                   "(GET /runs/{run_id}/events)",
    .config_keys = config_keys,
    .init = sse_init,
    .start = sse_start,
    .stop = sse_stop,
    .fini = sse_fini,
    .reload = sse_reload,
};

PYOCO_PLUGIN_EXPORT const pyoco_plugin_desc *pyoco_plugin_entry(void) {
    return &sse_desc;
}
