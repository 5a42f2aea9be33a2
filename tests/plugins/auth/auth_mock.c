/* auth_mock.c - see auth_mock.h. */
#include "auth_mock.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static void m_logv(pyoco_host *h, pyoco_log_level level, const char *fmt,
                   va_list ap) {
    if (level >= PYOCO_LOG_WARN)
        h->warnings++;
    vsnprintf(h->last_log, sizeof h->last_log, fmt, ap);
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

static int m_config_bool(pyoco_host *h, const char *key, bool *out) {
    const json_t *v = json_object_get(h->config, key);
    if (!json_is_boolean(v))
        return -ENOENT;
    *out = json_is_true(v);
    return 0;
}

static const json_t *m_config_json(pyoco_host *h, const char *key) {
    return json_object_get(h->config, key);
}

static const char *m_config_where(pyoco_host *h, const char *key) {
    return json_object_get(h->config, key) ? "pyoco.yaml:7" : "";
}

static int m_filter_add(pyoco_host *h, pyoco_filter_fn fn, void *ud,
                        pyoco_free_fn free_fn) {
    if (h->filter)
        return -EEXIST;
    h->filter = fn;
    h->filter_ud = ud;
    return 0;
}

static unsigned m_req_method(pyoco_request *r) {
    return r->method;
}
static const char *m_req_route(pyoco_request *r) {
    return r->route;
}
static const char *m_req_peer(pyoco_request *r) {
    return "192.0.2.7";
}

static const char *m_req_header(pyoco_request *r, const char *name) {
    if (strcasecmp(name, "X-API-Key") == 0)
        return r->x_api_key;
    if (strcasecmp(name, "Authorization") == 0)
        return r->authorization;
    return NULL;
}

static int m_reply_error(pyoco_request *r, int status, const char *detail) {
    if (r->status)
        return -EINVAL; /* answered twice */
    r->status = status;
    snprintf(r->detail, sizeof r->detail, "%s", detail);
    return 0;
}

static int m_req_add_header(pyoco_request *r, const char *name,
                            const char *value) {
    if (strcmp(name, "WWW-Authenticate") == 0 && r->nwww < 4)
        snprintf(r->www[r->nwww++], sizeof r->www[0], "%s", value);
    return 0;
}

static int m_metric(pyoco_host *h, const pyoco_metric_sample *s) {
    h->metric_calls++;
    if (strcmp(s->name, "pyoco_auth_requests_total") != 0 || s->nlabels != 1 ||
        strcmp(s->label_names[0], "outcome") != 0 ||
        s->type != PYOCO_METRIC_COUNTER || s->op != PYOCO_METRIC_ADD)
        return -EINVAL;
    const char *o = s->label_values[0];
    if (strcmp(o, "allowed") == 0)
        h->allowed += s->value;
    else if (strcmp(o, "unauthenticated") == 0)
        h->unauthenticated += s->value;
    else if (strcmp(o, "forbidden") == 0)
        h->forbidden += s->value;
    else
        return -EINVAL;
    return 0;
}

static double m_now(pyoco_host *h) {
    return h->now;
}

static struct event_base *m_event_base(pyoco_host *h) {
    return h->base;
}

static const pyoco_api api = {
    .size = sizeof(pyoco_api),
    .abi_major = PYOCO_ABI_MAJOR,
    .abi_minor = PYOCO_ABI_MINOR,
    .log = m_log,
    .logv = m_logv,
    .config_string = m_config_string,
    .config_bool = m_config_bool,
    .config_json = m_config_json,
    .config_where = m_config_where,
    .req_method = m_req_method,
    .req_header = m_req_header,
    .reply_error = m_reply_error,
    .req_add_header = m_req_add_header,
    .now = m_now,
    .event_base = m_event_base,
    .metric = m_metric,
    .filter_add = m_filter_add,
    .req_route = m_req_route,
    .req_peer = m_req_peer,
};

const pyoco_api *mock_api(void) {
    return &api;
}

const pyoco_plugin_desc *pyoco_plugin_entry(void);
const pyoco_plugin_desc *mock_desc(void) {
    return pyoco_plugin_entry();
}

int mock_filter(pyoco_host *h, pyoco_request *req) {
    return h->filter(req, h->filter_ud);
}
