/* prometheus.c - the prometheus plugin: serves /metrics from families the
 * bus events are folded into (prom_events.c). Rendering walks the
 * families only, never the runs, so a scrape costs the same with a million
 * runs as with one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pyoco/plugin.h>

#include "prom_plugin.h"

#define PROM_PLUGIN_VERSION "1.0.0"
#define CT_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define CT_OPENMETRICS                                                         \
    "application/openmetrics-text; version=1.0.0; charset=utf-8"

static const pyoco_config_key config_keys[] = {
    {"path", PYOCO_CONFIG_STRING, "/metrics",
     "URL path the exposition is served at", NULL},
    {"buckets", PYOCO_CONFIG_LIST,
     "[0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]",
     "histogram upper bounds (seconds, increasing; +Inf is implicit) of "
     "pyoco_task_duration_seconds, pyoco_run_duration_seconds and of "
     "plugin histograms that name none",
     NULL},
    {"max_series_per_family", PYOCO_CONFIG_INT, "1000",
     "series per family with worker-supplied label values; more fold into "
     "one series labelled __overflow__",
     NULL},
    {NULL, 0, NULL, NULL, NULL},
};

/* ---- configuration --------------------------------------------------------
 */

static int fail(char *err, size_t errlen, const pyoco_api *api,
                pyoco_host *host, const char *key, const char *msg) {
    const char *where = api->config_where(host, key);
    snprintf(err, errlen, "%s%splugins.prometheus.%s: %s",
             where && *where ? where : "", where && *where ? ": " : "", key,
             msg);
    return -EINVAL;
}

/* One bucket bound from a YAML scalar (a number or its text). */
static bool bound_of(const json_t *v, double *out) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    char *end;
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "+inf") == 0 ||
        strcmp(s, "inf") == 0 || strcmp(s, "Inf") == 0) {
        *out = INFINITY;
        return true;
    }
    *out = strtod(s, &end);
    return end != s && *end == '\0';
}

static int read_buckets(prom_state *st, char *err, size_t errlen) {
    const json_t *list = st->api->config_json(st->host, "buckets");
    if (!list) {
        st->nbuckets = PROM_DEFAULT_NBUCKETS;
        st->buckets = malloc(sizeof(prom_default_buckets));
        if (!st->buckets)
            return -ENOMEM;
        memcpy(st->buckets, prom_default_buckets, sizeof(prom_default_buckets));
        return 0;
    }
    if (!json_is_array(list) || json_array_size(list) == 0)
        return fail(err, errlen, st->api, st->host, "buckets",
                    "expected a non-empty list of numbers");
    size_t n = json_array_size(list);
    st->buckets = calloc(n, sizeof(double));
    if (!st->buckets)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        double b;
        char msg[160];
        if (!bound_of(json_array_get(list, i), &b) || isnan(b)) {
            snprintf(msg, sizeof(msg), "entry %zu is not a number", i + 1);
            return fail(err, errlen, st->api, st->host, "buckets", msg);
        }
        if (isinf(b) && b > 0 && i == n - 1)
            break; /* "+Inf" written out: it is implicit */
        if (!isfinite(b) ||
            (st->nbuckets && b <= st->buckets[st->nbuckets - 1])) {
            snprintf(msg, sizeof(msg),
                     "entry %zu: bounds must be finite and strictly increasing",
                     i + 1);
            return fail(err, errlen, st->api, st->host, "buckets", msg);
        }
        st->buckets[st->nbuckets++] = b;
    }
    if (st->nbuckets == 0 || st->nbuckets > PROM_MAX_BUCKETS)
        return fail(err, errlen, st->api, st->host, "buckets",
                    "expected 1 to 64 finite bounds");
    return 0;
}

static int read_config(prom_state *st, size_t *max_series, char *err,
                       size_t errlen) {
    const char *path = st->api->config_string(st->host, "path");
    if (!path)
        path = "/metrics";
    if (path[0] != '/' || strpbrk(path, " ?#{}"))
        return fail(err, errlen, st->api, st->host, "path",
                    "expected an absolute URL path such as /metrics");
    if (!(st->path = strdup(path)))
        return -ENOMEM;
    int64_t max = 1000;
    if (st->api->config_int(st->host, "max_series_per_family", &max) == 0 &&
        (max < 1 || max > 1000000))
        return fail(err, errlen, st->api, st->host, "max_series_per_family",
                    "expected an integer from 1 to 1000000");
    *max_series = (size_t)max;
    return read_buckets(st, err, errlen);
}

/* ---- the scrape -----------------------------------------------------------
 */

static void on_scrape(pyoco_request *req, void *user_data) {
    prom_state *st = user_data;
    const char *accept = st->api->req_header(req, "Accept");
    prom_format fmt = accept && strstr(accept, "application/openmetrics-text")
                          ? PROM_FMT_OPENMETRICS
                          : PROM_FMT_TEXT;
    prom_update_scrape(st);
    /* Render into a fresh buffer sized like the last one, then hand it to
     * the host without a copy; it is freed once sent. */
    size_t hint = st->out.len;
    prom_buf_free(&st->out);
    prom_buf_init(&st->out);
    prom_buf_reserve(&st->out, hint + 4096);
    prom_set_render(st->set, &st->out, fmt);
    if (st->out.failed || !st->out.data) {
        st->api->reply_error(req, 500, "out of memory rendering the metrics");
        return;
    }
    char *body = st->out.data;
    size_t len = st->out.len;
    st->out.data = NULL;
    st->out.cap = 0; /* keep len as the next size hint */
    st->api->reply_ref(req, 200,
                       fmt == PROM_FMT_OPENMETRICS ? CT_OPENMETRICS : CT_TEXT,
                       body, len, free, body);
}

/* ---- lifecycle ------------------------------------------------------------
 */

static void state_free(prom_state *st) {
    if (!st)
        return;
    prom_set_free(st->set);
    prom_buf_free(&st->out);
    free(st->buckets);
    free(st->path);
    free(st);
}

static int prom_init(pyoco_host *host, const pyoco_api *api, void **state,
                     char *err, size_t errlen) {
    prom_state *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    st->host = host;
    st->api = api;
    prom_buf_init(&st->out);
    size_t max_series = 1000;
    int rc = read_config(st, &max_series, err, errlen);
    if (rc == 0) {
        st->set = prom_set_new(max_series);
        rc = st->set ? prom_state_families(st) : -ENOMEM;
        if (rc)
            snprintf(err, errlen, "out of memory");
    }
    st->start_time = prom_process_start_time();
    if (rc == 0) {
        rc = api->subscribe(host, PYOCO_EV_ANY, prom_on_event, st, NULL);
        if (rc > 0)
            rc = 0;
        else
            snprintf(err, errlen, "cannot subscribe to the bus: %s",
                     strerror(-rc));
    }
    if (rc == 0) {
        rc =
            api->route_add(host, PYOCO_HTTP_GET, st->path, on_scrape, st, NULL);
        if (rc)
            snprintf(err, errlen, "cannot serve %s: %s", st->path,
                     strerror(-rc));
    }
    if (rc) {
        state_free(st);
        return rc;
    }
    *state = st;
    return 0;
}

static int prom_start(pyoco_host *host, void *state) {
    prom_state *st = state;
    st->api->log(host, PYOCO_LOG_INFO, "serving metrics at %s", st->path);
    return 0;
}

static int prom_stop(pyoco_host *host, void *state) {
    return 0;
}

static void prom_fini(pyoco_host *host, void *state) {
    state_free(state);
}

static const pyoco_plugin_desc prom_desc = {
    PYOCO_PLUGIN_DESC_INIT,
    .name = "prometheus",
    .version = PROM_PLUGIN_VERSION,
    .description = "Prometheus /metrics (text 0.0.4 and OpenMetrics 1.0)",
    .config_keys = config_keys,
    .init = prom_init,
    .start = prom_start,
    .stop = prom_stop,
    .fini = prom_fini,
};

PYOCO_PLUGIN_EXPORT const pyoco_plugin_desc *pyoco_plugin_entry(void) {
    return &prom_desc;
}
