/* mock_host.c - see mock_host.h. */
#include "mock_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void m_logv(pyoco_host *h, pyoco_log_level level, const char *fmt,
                   va_list ap) {
    if (level >= PYOCO_LOG_WARN)
        h->warnings++;
    if (getenv("MOCK_VERBOSE")) {
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
}

static void m_log(pyoco_host *h, pyoco_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    m_logv(h, level, fmt, ap);
    va_end(ap);
}

static const char *m_config_string(pyoco_host *h, const char *key) {
    return json_string_value(json_object_get(h->config, key));
}

static int m_config_int(pyoco_host *h, const char *key, int64_t *out) {
    const json_t *v = json_object_get(h->config, key);
    if (!v)
        return -ENOENT;
    *out = json_is_integer(v) ? json_integer_value(v)
                              : strtoll(json_string_value(v), NULL, 10);
    return 0;
}

static const json_t *m_config_json(pyoco_host *h, const char *key) {
    return json_object_get(h->config, key);
}

static const char *m_config_where(pyoco_host *h, const char *key) {
    return json_object_get(h->config, key) ? "pyoco.yaml:7" : "";
}

static int m_subscribe(pyoco_host *h, uint32_t kind, pyoco_event_fn fn,
                       void *ud, pyoco_free_fn free_fn) {
    if (h->nsubs == MOCK_MAX_SUBS)
        return -ENOMEM;
    h->subs[h->nsubs] = fn;
    h->sub_ud[h->nsubs] = ud;
    h->sub_kind[h->nsubs] = kind;
    return ++h->nsubs;
}

static int m_route_add(pyoco_host *h, unsigned methods, const char *pattern,
                       pyoco_route_fn fn, void *ud, pyoco_free_fn free_fn) {
    if (h->route_fn)
        return -EEXIST;
    h->route_methods = methods;
    snprintf(h->route_pattern, sizeof(h->route_pattern), "%s", pattern);
    h->route_fn = fn;
    h->route_ud = ud;
    return 0;
}

static const char *m_req_header(pyoco_request *req, const char *name) {
    return strcasecmp(name, "Accept") == 0 ? req->accept : NULL;
}

static int m_reply(pyoco_request *req, int status, const char *ct,
                   const char *body, size_t len) {
    req->status = status;
    snprintf(req->content_type, sizeof(req->content_type), "%s", ct ? ct : "");
    req->body = malloc(len + 1);
    memcpy(req->body, body, len);
    req->body[len] = '\0';
    req->len = len;
    return 0;
}

static int m_reply_ref(pyoco_request *req, int status, const char *ct,
                       const char *body, size_t len, pyoco_free_fn done,
                       void *ud) {
    int rc = m_reply(req, status, ct, body, len);
    if (done)
        done(ud);
    return rc;
}

static int m_reply_error(pyoco_request *req, int status, const char *detail) {
    return m_reply(req, status, "application/json", detail, strlen(detail));
}

static int m_registry_stats(pyoco_host *h, pyoco_registry_stats *out) {
    uint32_t size = out->size;
    *out = h->stats;
    out->size = size;
    return 0;
}

static const char *m_server_version(pyoco_host *h) {
    return "0.1.0";
}

static int m_plugin_info(pyoco_host *h, size_t i, pyoco_plugin_info *out) {
    static const char *const names[] = {"rest", "prometheus"};
    if (i >= 2)
        return -ENOENT;
    out->name = names[i];
    out->version = "1.0.0";
    out->description = "";
    return 0;
}

static double m_now(pyoco_host *h) {
    return 1796315198.0;
}

const pyoco_api mock_api = {
    .size = sizeof(pyoco_api),
    .abi_major = PYOCO_ABI_MAJOR,
    .abi_minor = PYOCO_ABI_MINOR,
    .log = m_log,
    .logv = m_logv,
    .config_string = m_config_string,
    .config_int = m_config_int,
    .config_json = m_config_json,
    .config_where = m_config_where,
    .subscribe = m_subscribe,
    .route_add = m_route_add,
    .req_header = m_req_header,
    .reply = m_reply,
    .reply_error = m_reply_error,
    .reply_ref = m_reply_ref,
    .registry_stats = m_registry_stats,
    .now = m_now,
    .server_version = m_server_version,
    .plugin_info = m_plugin_info,
};

void mock_host_init(pyoco_host *h) {
    memset(h, 0, sizeof(*h));
    h->config = json_object();
}

void mock_host_free(pyoco_host *h) {
    json_decref(h->config);
}

void mock_publish(pyoco_host *h, pyoco_event *ev) {
    ev->size = sizeof(*ev);
    ev->seq = ++h->seq;
    for (int i = 0; i < h->nsubs; i++)
        if (h->sub_kind[i] == PYOCO_EV_ANY || h->sub_kind[i] == ev->kind)
            h->subs[i](ev, h->sub_ud[i]);
}

void mock_get(pyoco_host *h, const char *accept, pyoco_request *req) {
    memset(req, 0, sizeof(*req));
    req->accept = accept;
    h->route_fn(req, h->route_ud);
}
