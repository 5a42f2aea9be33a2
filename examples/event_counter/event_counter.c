/* event_counter - a small third-party Pyoco plugin, as a teaching example.
 *
 * It counts the events the server publishes on its bus, by kind, and the
 * runs that finished, by terminal status, and serves the counts as JSON:
 *
 *   GET /example/events
 *   {"total": 5, "by_kind": {"run_submitted": 1, "run_status": 1, ...},
 *    "finished": {"COMPLETED": 0, "FAILED": 0, "CANCELLED": 0}}
 *
 * pyoco.yaml:
 *   plugin_path: [/path/to/dir/with/event_counter.so]
 *   plugins:
 *     rest: {}
 *     event_counter:
 *       route: /example/events      # optional, this is the default
 *
 * It includes only <pyoco/plugin.h> and calls the server only through the
 * `api` table it receives in init: it links against jansson and nothing of
 * the server, so one build loads into every server of the same ABI major. */
#include <pyoco/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything the plugin keeps. The host hands `state` back to every
 * lifecycle call; callbacks get it as their user_data. */
typedef struct counter {
    const pyoco_api *api;
    pyoco_host *host;
    /* Kinds this build knows; a newer server (higher ABI minor) may publish
     * kinds appended after ours: those land in `newer`. */
    uint64_t by_kind[PYOCO_EV_KIND_COUNT];
    uint64_t newer;
    uint64_t total;
    uint64_t finished[PYOCO_STATUS_COUNT];
} counter;

/* Runs on the loop thread, synchronously, for every event: keep it cheap,
 * and never keep `ev` or its pointers after returning (copy what you need). */
static void on_event(const pyoco_event *ev, void *user_data) {
    counter *c = user_data;
    c->total++;
    if (ev->kind < PYOCO_EV_KIND_COUNT)
        c->by_kind[ev->kind]++;
    else
        c->newer++;
    if (ev->kind == PYOCO_EV_RUN_FINISHED &&
        (unsigned)ev->status < PYOCO_STATUS_COUNT)
        c->finished[ev->status]++;
}

/* GET <route>: nothing changes state here, so we answer at once (a handler
 * that changes runs answers from api->when_durable instead). */
static void serve_counts(pyoco_request *req, void *user_data) {
    counter *c = user_data;
    json_t *kinds = json_object(), *fin = json_object();
    for (uint32_t k = 1; k < PYOCO_EV_KIND_COUNT; k++) /* 0 is "any" */
        json_object_set_new(kinds, pyoco_event_kind_name(k),
                            json_integer((json_int_t)c->by_kind[k]));
    if (c->newer)
        json_object_set_new(kinds, "newer", json_integer((json_int_t)c->newer));
    for (int s = 0; s < PYOCO_STATUS_COUNT; s++)
        if (pyoco_status_is_terminal((pyoco_run_status)s))
            json_object_set_new(fin, pyoco_status_name((pyoco_run_status)s),
                                json_integer((json_int_t)c->finished[s]));
    json_t *body = json_pack("{s:I, s:o, s:o}", "total", (json_int_t)c->total,
                             "by_kind", kinds, "finished", fin);
    if (body)
        c->api->reply_json(req, 200, body);
    else
        c->api->reply_error(req, 500, "out of memory");
    json_decref(body);
}

static int ec_init(pyoco_host *h, const pyoco_api *api, void **state, char *err,
                   size_t errlen) {
    /* The host already checked the key's type; we check its meaning and
     * name the file and line it came from. */
    const char *route = api->config_string(h, "route");
    if (!route || route[0] != '/') {
        snprintf(err, errlen, "%s: route must start with '/', got '%s'",
                 api->config_where(h, "route"), route ? route : "");
        return -EINVAL;
    }
    counter *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->api = api;
    c->host = h;
    /* No free function: `c` lives until fini. If a step fails, the host
     * removes what we registered, but fini is not called: free `c` here. */
    int rc = api->subscribe(h, PYOCO_EV_ANY, on_event, c, NULL);
    if (rc > 0)
        rc = api->route_add(h, PYOCO_HTTP_GET, route, serve_counts, c, NULL);
    if (rc < 0) {
        snprintf(err, errlen, "cannot serve %s: %s", route, strerror(-rc));
        free(c);
        return rc;
    }
    *state = c;
    api->log(h, PYOCO_LOG_INFO, "counting events at GET %s", route);
    return 0;
}

static int ec_stop(pyoco_host *h, void *state) {
    (void)h;
    (void)state;
    return 0; /* nothing in flight: drained at once */
}

static void ec_fini(pyoco_host *h, void *state) {
    (void)h;
    free(state);
}

/* Every key of our pyoco.yaml block: the host rejects unknown keys and
 * wrong types (with file, line and key) before init runs. */
static const pyoco_config_key ec_keys[] = {
    {"route", PYOCO_CONFIG_STRING, "/example/events",
     "where GET answers the counts", "EVENT_COUNTER_ROUTE"},
    {NULL, 0, NULL, NULL, NULL},
};

static const pyoco_plugin_desc ec_desc = {
    PYOCO_PLUGIN_DESC_INIT,  /* size and the ABI these headers describe */
    .name = "event_counter", /* = the .so name and the pyoco.yaml block */
    .version = "1.0.0",
    .description = "counts bus events by kind, serves them as JSON",
    .config_keys = ec_keys,
    .init = ec_init,
    .stop = ec_stop,
    .fini = ec_fini,
};

/* The one exported symbol. The host reads the descriptor's ABI version and
 * size before calling anything else in this file. */
PYOCO_PLUGIN_EXPORT const pyoco_plugin_desc *pyoco_plugin_entry(void) {
    return &ec_desc;
}
