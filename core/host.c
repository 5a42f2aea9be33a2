/* core/host.c - the function table handed to plugins. Each entry is a thin
 * adapter from a plugin's host handle to the server's parts, so the ABI
 * stays independent of how the core is organised inside. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "server.h"

static void h_logv(pyoco_host *h, pyoco_log_level level, const char *fmt,
                   va_list ap) {
    pyoco_log_writev(level, h ? h->name : "?", fmt, ap);
}

static void h_log(pyoco_host *h, pyoco_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    h_logv(h, level, fmt, ap);
    va_end(ap);
}

static const char *h_config_string(pyoco_host *h, const char *key) {
    return pyoco_plugin_config_string(h->cfg, key);
}

static int h_config_int(pyoco_host *h, const char *key, int64_t *out) {
    return pyoco_plugin_config_int(h->cfg, key, out);
}

static int h_config_double(pyoco_host *h, const char *key, double *out) {
    return pyoco_plugin_config_double(h->cfg, key, out);
}

static int h_config_bool(pyoco_host *h, const char *key, bool *out) {
    return pyoco_plugin_config_bool(h->cfg, key, out);
}

static const json_t *h_config_json(pyoco_host *h, const char *key) {
    return pyoco_plugin_config_json(h->cfg, key);
}

static const char *h_config_where(pyoco_host *h, const char *key) {
    return pyoco_plugin_config_where(h->cfg, key);
}

static int h_subscribe(pyoco_host *h, uint32_t kind, pyoco_event_fn fn,
                       void *ud, pyoco_free_fn free_fn) {
    return pyoco_bus_subscribe(h->srv->bus, kind, fn, ud, free_fn, h);
}

static int h_unsubscribe(pyoco_host *h, int id) {
    return pyoco_bus_unsubscribe(h->srv->bus, id, h);
}

static int h_route_add(pyoco_host *h, unsigned methods, const char *pattern,
                       pyoco_route_fn fn, void *ud, pyoco_free_fn free_fn) {
    int rc = pyoco_http_route_add(h->srv->http, methods, pattern, fn, ud,
                                  free_fn, h);
    if (rc == -EEXIST)
        pyoco_log_write(PYOCO_LOG_ERROR, h->name,
                        "route %s is already taken by another plugin", pattern);
    return rc;
}

static int h_when_durable(pyoco_host *h, pyoco_durable_fn fn, void *ud) {
    return pyoco_durability_wait(h->srv->dur, fn, ud);
}

static int h_durability_provide(pyoco_host *h) {
    return pyoco_durability_provide(h->srv->dur, h);
}

static int h_durability_advance(pyoco_host *h, uint64_t upto, int status) {
    return pyoco_durability_advance(h->srv->dur, h, upto, status);
}

static int h_run_submit(pyoco_host *h, const char *flow, const json_t *params,
                        const json_t *tags, char id[37]) {
    return pyoco_registry_submit(h->srv->reg, flow, params, tags, id);
}

static int h_run_get(pyoco_host *h, const char *run_id, json_t **out) {
    pyoco_server *srv = h->srv;
    int rc = pyoco_registry_get(srv->reg, run_id, out);
    if (rc != -ENOENT)
        return rc;
    for (size_t i = 0; i < srv->narchives; i++) {
        json_t *j = srv->archives[i].fn(run_id, srv->archives[i].ud);
        if (j) {
            *out = j;
            return 0;
        }
    }
    return -ENOENT;
}

static int h_run_list(pyoco_host *h, const char *status, const char *flow,
                      size_t limit, json_t **out) {
    return pyoco_registry_list(h->srv->reg, status, flow, limit, out);
}

static int h_run_get_text(pyoco_host *h, const char *run_id, char **out,
                          size_t *len) {
    int rc = pyoco_registry_get_text(h->srv->reg, run_id, out, len);
    if (rc != -ENOENT)
        return rc;
    json_t *o = NULL; /* not in memory: the archive sources */
    if ((rc = h_run_get(h, run_id, &o)) < 0)
        return rc;
    *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!*out)
        return -ENOMEM;
    *len = strlen(*out);
    return 0;
}

static int h_run_list_text(pyoco_host *h, const char *status, const char *flow,
                           size_t limit, char **out, size_t *len) {
    return pyoco_registry_list_text(h->srv->reg, status, flow, limit, out, len);
}

static int h_run_cancel(pyoco_host *h, const char *run_id) {
    return pyoco_registry_cancel(h->srv->reg, run_id);
}

static int h_worker_poll(pyoco_host *h, const char *worker, const json_t *tags,
                         json_t **out) {
    return pyoco_registry_poll(h->srv->reg, worker, tags, out);
}

static int h_run_heartbeat(pyoco_host *h, const char *run_id,
                           const json_t *body, bool *cancel) {
    return pyoco_registry_heartbeat(h->srv->reg, run_id, body, cancel);
}

static int h_run_logs(pyoco_host *h, const char *run_id, const char *task,
                      long tail, json_t **out) {
    return pyoco_registry_logs(h->srv->reg, run_id, task, tail, out);
}

static int h_registry_stats(pyoco_host *h, pyoco_registry_stats *out) {
    if (!out || out->size < sizeof(uint32_t))
        return -EINVAL;
    pyoco_registry_stats full = {.size = sizeof(full)};
    pyoco_registry_get_stats(h->srv->reg, &full);
    /* Copy only what the caller's (possibly older, smaller) struct has. */
    uint32_t n = out->size < sizeof(full) ? out->size : sizeof(full);
    memcpy((char *)out + sizeof(uint32_t), (char *)&full + sizeof(uint32_t),
           n - sizeof(uint32_t));
    return 0;
}

static int h_run_restore(pyoco_host *h, const json_t *run) {
    return pyoco_registry_restore(h->srv->reg, run);
}

static int h_archive_source_add(pyoco_host *h,
                                json_t *(*fn)(const char *, void *), void *ud,
                                pyoco_free_fn free_fn) {
    pyoco_server *srv = h->srv;
    if (!fn)
        return -EINVAL;
    archive_source *a =
        realloc(srv->archives, (srv->narchives + 1) * sizeof(*a));
    if (!a)
        return -ENOMEM;
    srv->archives = a;
    srv->archives[srv->narchives++] = (archive_source){fn, ud, free_fn, h};
    return 0;
}

static int outbox_publish(pyoco_host *h, uint32_t kind, const char *owner,
                          const char *id, const json_t *data) {
    if (!id || !owner)
        return -EINVAL;
    pyoco_event ev = {
        .kind = kind, .outbox_owner = owner, .outbox_id = id, .data = data};
    pyoco_bus_publish(h->srv->bus, &ev);
    return 0;
}

static int h_outbox_put(pyoco_host *h, const char *id, const json_t *data) {
    if (!data)
        return -EINVAL;
    return outbox_publish(h, PYOCO_EV_OUTBOX_PUT, h->name, id, data);
}

static int h_outbox_done(pyoco_host *h, const char *id) {
    return outbox_publish(h, PYOCO_EV_OUTBOX_DONE, h->name, id, NULL);
}

static int h_outbox_restore(pyoco_host *h, const char *owner, const char *id,
                            const json_t *data) {
    return outbox_publish(h, PYOCO_EV_OUTBOX_RESTORED, owner, id, data);
}

static struct event_base *h_event_base(pyoco_host *h) {
    return h->srv->base;
}

static double h_now(pyoco_host *h) {
    (void)h;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *h_server_version(pyoco_host *h) {
    (void)h;
    return PYOCO_VERSION;
}

static int h_plugin_info(pyoco_host *h, size_t index, pyoco_plugin_info *out) {
    pyoco_server *srv = h->srv;
    if (!out || out->size < sizeof(uint32_t))
        return -EINVAL;
    if (index >= srv->nplugins)
        return -ENOENT;
    const pyoco_plugin_desc *d = srv->plugins[index]->desc;
    pyoco_plugin_info full = {.size = sizeof(full),
                              .name = srv->plugins[index]->name,
                              .version = d->version ? d->version : "",
                              .description =
                                  d->description ? d->description : "",
                              .abi_major = d->abi_major,
                              .abi_minor = d->abi_minor};
    uint32_t n = out->size < sizeof(full) ? out->size : sizeof(full);
    memcpy((char *)out + sizeof(uint32_t), (char *)&full + sizeof(uint32_t),
           n - sizeof(uint32_t));
    return 0;
}

static void h_stop_done(pyoco_host *h) {
    if (h->stop_pending) {
        h->stop_pending = false;
        h->phase = HOST_STOPPED;
    }
}

static const char *h_plugin_name(pyoco_host *h) {
    return h->name;
}

static int h_metric(pyoco_host *h, const pyoco_metric_sample *s) {
    if (!s || !s->name || (s->nlabels && (!s->label_names || !s->label_values)))
        return -EINVAL;
    pyoco_event ev = {.kind = PYOCO_EV_METRIC, .metric = s};
    pyoco_bus_publish(h->srv->bus, &ev);
    return 0;
}

static int h_filter_add(pyoco_host *h, pyoco_filter_fn fn, void *ud,
                        pyoco_free_fn free_fn) {
    return pyoco_http_filter_add(h->srv->http, fn, ud, free_fn, h);
}

static const pyoco_api k_api = {
    .size = sizeof(pyoco_api),
    .abi_major = PYOCO_ABI_MAJOR,
    .abi_minor = PYOCO_ABI_MINOR,
    .log = h_log,
    .logv = h_logv,
    .config_string = h_config_string,
    .config_int = h_config_int,
    .config_double = h_config_double,
    .config_bool = h_config_bool,
    .config_json = h_config_json,
    .config_where = h_config_where,
    .subscribe = h_subscribe,
    .unsubscribe = h_unsubscribe,
    .route_add = h_route_add,
    .req_method = pyoco_http_req_method,
    .req_path = pyoco_http_req_path,
    .req_param = pyoco_http_req_param,
    .req_query = pyoco_http_req_query,
    .req_header = pyoco_http_req_header,
    .req_body = pyoco_http_req_body,
    .reply = pyoco_http_reply,
    .reply_json = pyoco_http_reply_json,
    .reply_error = pyoco_http_reply_error,
    .req_add_header = pyoco_http_req_add_header,
    .when_durable = h_when_durable,
    .durability_provide = h_durability_provide,
    .durability_advance = h_durability_advance,
    .run_submit = h_run_submit,
    .run_get = h_run_get,
    .run_list = h_run_list,
    .run_cancel = h_run_cancel,
    .worker_poll = h_worker_poll,
    .run_heartbeat = h_run_heartbeat,
    .run_logs = h_run_logs,
    .registry_stats = h_registry_stats,
    .run_restore = h_run_restore,
    .archive_source_add = h_archive_source_add,
    .outbox_put = h_outbox_put,
    .outbox_done = h_outbox_done,
    .outbox_restore = h_outbox_restore,
    .event_base = h_event_base,
    .now = h_now,
    .server_version = h_server_version,
    .plugin_info = h_plugin_info,
    .stop_done = h_stop_done,
    .plugin_name = h_plugin_name,
    .metric = h_metric,
    .filter_add = h_filter_add,
    .req_route = pyoco_http_req_route,
    .req_peer = pyoco_http_req_peer,
    .reply_start = pyoco_http_reply_start,
    .reply_chunk = pyoco_http_reply_chunk,
    .reply_end = pyoco_http_reply_end,
    .req_output_pending = pyoco_http_req_output_pending,
    .req_on_close = pyoco_http_req_on_close,
    .reply_ref = pyoco_http_reply_ref,
    .run_get_text = h_run_get_text,
    .run_list_text = h_run_list_text,
};

const pyoco_api *pyoco_host_api(void) {
    return &k_api;
}
