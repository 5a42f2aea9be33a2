/* core/http.c - evhttp listener, route table and request handles.
 *
 * Every request goes through one generic callback that matches the path
 * against the routes plugins added ("/runs/{run_id}/logs"), answers 404/405
 * itself, and otherwise hands the plugin a pyoco_request that stays valid
 * until the plugin replies - possibly much later, after the durability
 * barrier. If the client disconnects first, libevent detaches the request
 * and frees it when we reply, so a late reply is always safe. */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"

#define MAX_SEGMENTS 16

typedef struct route_seg {
    char *text; /* literal text, or the parameter name */
    bool param;
} route_seg;

typedef struct route {
    unsigned methods;
    char *pattern;
    route_seg segs[MAX_SEGMENTS];
    int nsegs;
    int nliterals;
    pyoco_route_fn fn;
    void *user_data;
    pyoco_free_fn free_fn;
    void *owner;
} route;

struct pyoco_request {
    TAILQ_ENTRY(pyoco_request) link;
    struct evhttp_request *ev;
    pyoco_http *http;
    const route *route;
    unsigned method;
    const char *path; /* raw path from the URI (not decoded) */
    char *param_val[MAX_SEGMENTS];
    const char *param_name[MAX_SEGMENTS];
    int nparams;
    struct evkeyvalq query;
    bool query_parsed;
    char *body;
    size_t body_len;
    struct timespec t0;
    char *route_pattern; /* copy: the route may be removed before the reply */
    /* streaming replies */
    bool streaming;
    bool gone; /* the client disconnected */
    int status;
    pyoco_close_fn close_fn;
    void *close_ud;
};

TAILQ_HEAD(req_list, pyoco_request);

typedef struct filter {
    pyoco_filter_fn fn;
    void *user_data;
    pyoco_free_fn free_fn;
    void *owner;
} filter;

struct pyoco_http {
    struct event_base *base;
    struct evhttp *evh;
    struct evhttp_bound_socket *bound;
    pyoco_bus *bus;
    pyoco_http_limits limits;
    route **routes;
    size_t nroutes, cap;
    struct req_list pending;
    size_t in_flight;
    filter *filters;
    size_t nfilters;
};

static const struct {
    unsigned bit;
    enum evhttp_cmd_type cmd;
    const char *name;
} k_methods[] = {
    {PYOCO_HTTP_GET, EVHTTP_REQ_GET, "GET"},
    {PYOCO_HTTP_POST, EVHTTP_REQ_POST, "POST"},
    {PYOCO_HTTP_PUT, EVHTTP_REQ_PUT, "PUT"},
    {PYOCO_HTTP_DELETE, EVHTTP_REQ_DELETE, "DELETE"},
    {PYOCO_HTTP_HEAD, EVHTTP_REQ_HEAD, "HEAD"},
    {PYOCO_HTTP_PATCH, EVHTTP_REQ_PATCH, "PATCH"},
};

static unsigned method_bit(enum evhttp_cmd_type cmd) {
    for (size_t i = 0; i < sizeof(k_methods) / sizeof(k_methods[0]); i++)
        if (k_methods[i].cmd == cmd)
            return k_methods[i].bit;
    return 0;
}

static const char *method_name(unsigned bit) {
    for (size_t i = 0; i < sizeof(k_methods) / sizeof(k_methods[0]); i++)
        if (k_methods[i].bit == bit)
            return k_methods[i].name;
    return "OTHER";
}

static const char *reason_phrase(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

/* ---- routes -------------------------------------------------------------- */

static void route_free(route *r) {
    if (!r)
        return;
    if (r->free_fn)
        r->free_fn(r->user_data);
    for (int i = 0; i < r->nsegs; i++)
        free(r->segs[i].text);
    free(r->pattern);
    free(r);
}

/* Split "/a/{b}/c" into segments. -EINVAL for anything that is not a clean
 * absolute pattern. */
static int route_parse(route *r, const char *pattern) {
    if (pattern[0] != '/')
        return -EINVAL;
    const char *p = pattern + 1;
    if (*p == '\0')
        return 0; /* "/" : zero segments */
    while (*p) {
        if (r->nsegs == MAX_SEGMENTS)
            return -EINVAL;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            return -EINVAL;
        route_seg *s = &r->segs[r->nsegs++];
        if (p[0] == '{') {
            if (len < 3 || p[len - 1] != '}')
                return -EINVAL;
            s->param = true;
            s->text = strndup(p + 1, len - 2);
        } else {
            s->text = strndup(p, len);
            r->nliterals++;
        }
        if (!s->text)
            return -ENOMEM;
        p += len;
        if (*p == '/')
            p++;
        if (end && *p == '\0')
            return -EINVAL; /* trailing slash */
    }
    return 0;
}

static bool route_same_shape(const route *a, const route *b) {
    if (a->nsegs != b->nsegs)
        return false;
    for (int i = 0; i < a->nsegs; i++) {
        if (a->segs[i].param != b->segs[i].param)
            return false;
        if (!a->segs[i].param && strcmp(a->segs[i].text, b->segs[i].text))
            return false;
    }
    return true;
}

int pyoco_http_route_add(pyoco_http *http, unsigned methods,
                         const char *pattern, pyoco_route_fn fn,
                         void *user_data, pyoco_free_fn free_fn, void *owner) {
    if (!http || !pattern || !fn || methods == 0)
        return -EINVAL;
    route *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rc = route_parse(r, pattern);
    r->pattern = strdup(pattern);
    if (rc == 0 && !r->pattern)
        rc = -ENOMEM;
    if (rc == 0) {
        for (size_t i = 0; i < http->nroutes; i++) {
            if ((http->routes[i]->methods & methods) &&
                route_same_shape(http->routes[i], r)) {
                rc = -EEXIST;
                break;
            }
        }
    }
    if (rc == 0 && http->nroutes == http->cap) {
        size_t cap = http->cap ? http->cap * 2 : 16;
        route **nr = realloc(http->routes, cap * sizeof(*nr));
        if (!nr)
            rc = -ENOMEM;
        else {
            http->routes = nr;
            http->cap = cap;
        }
    }
    if (rc != 0) {
        route_free(r); /* free_fn not set yet: user data stays the caller's */
        return rc;
    }
    r->methods = methods;
    r->fn = fn;
    r->user_data = user_data;
    r->free_fn = free_fn;
    r->owner = owner;
    http->routes[http->nroutes++] = r;
    return 0;
}

int pyoco_http_routes_remove_owner(pyoco_http *http, void *owner) {
    size_t j = 0;
    int removed = 0;
    for (size_t i = 0; i < http->nroutes; i++) {
        if (http->routes[i]->owner == owner) {
            route_free(http->routes[i]);
            removed++;
        } else {
            http->routes[j++] = http->routes[i];
        }
    }
    http->nroutes = j;
    return removed;
}

/* Split the request path into segments (pointers into buf). Returns the
 * count, or -1 when the path cannot match any route. */
static int path_split(char *buf, char **segs) {
    if (buf[0] != '/')
        return -1;
    int n = 0;
    char *p = buf + 1;
    if (*p == '\0')
        return 0;
    while (p) {
        if (n == MAX_SEGMENTS)
            return -1;
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (*p == '\0')
            return -1;
        segs[n++] = p;
        p = slash ? slash + 1 : NULL;
    }
    return n;
}

static bool route_match(const route *r, char **segs, int n) {
    if (r->nsegs != n)
        return false;
    for (int i = 0; i < n; i++)
        if (!r->segs[i].param && strcmp(r->segs[i].text, segs[i]) != 0)
            return false;
    return true;
}

/* ---- requests -------------------------------------------------------------
 */

static void req_free(pyoco_request *req) {
    for (int i = 0; i < req->nparams; i++)
        free(req->param_val[i]);
    if (req->query_parsed)
        evhttp_clear_headers(&req->query);
    free(req->body);
    free(req->route_pattern);
    free(req);
}

static double elapsed_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void finish(pyoco_request *req, int status) {
    pyoco_http *http = req->http;
    TAILQ_REMOVE(&http->pending, req, link);
    http->in_flight--;
    pyoco_event ev = {.kind = PYOCO_EV_HTTP_REQUEST,
                      .http_method = method_name(req->method),
                      .http_route = req->route_pattern,
                      .http_status = status,
                      .http_duration_s = elapsed_since(&req->t0)};
    pyoco_bus_publish(http->bus, &ev);
    req_free(req);
}

static void free_dumped(const void *data, size_t len, void *arg) {
    (void)data;
    (void)len;
    free(arg);
}

static int reply_owned(pyoco_request *req, int status, const char *ctype,
                       char *body, size_t len) {
    struct evhttp_request *ev = req->ev;
    struct evkeyvalq *out = evhttp_request_get_output_headers(ev);
    if (ctype)
        evhttp_add_header(out, "Content-Type", ctype);
    struct evbuffer *buf = evhttp_request_get_output_buffer(ev);
    if (body && len &&
        evbuffer_add_reference(buf, body, len, free_dumped, body) != 0) {
        free(body);
        status = 500;
    } else if (body && !len) {
        free(body);
    }
    evhttp_send_reply(ev, status, reason_phrase(status), NULL);
    finish(req, status);
    return 0;
}

int pyoco_http_reply(pyoco_request *req, int status, const char *content_type,
                     const char *body, size_t len) {
    if (!req)
        return -EINVAL;
    struct evhttp_request *ev = req->ev;
    if (content_type)
        evhttp_add_header(evhttp_request_get_output_headers(ev), "Content-Type",
                          content_type);
    if (body && len)
        evbuffer_add(evhttp_request_get_output_buffer(ev), body, len);
    evhttp_send_reply(ev, status, reason_phrase(status), NULL);
    finish(req, status);
    return 0;
}

typedef struct ref_done {
    pyoco_free_fn fn;
    void *ud;
} ref_done;

static void ref_cleanup(const void *data, size_t len, void *arg) {
    (void)data;
    (void)len;
    ref_done *d = arg;
    if (d->fn)
        d->fn(d->ud);
    free(d);
}

int pyoco_http_reply_ref(pyoco_request *req, int status,
                         const char *content_type, const char *body, size_t len,
                         pyoco_free_fn done, void *user_data) {
    if (!req || (len && !body))
        return -EINVAL;
    ref_done *d = malloc(sizeof(*d));
    if (!d)
        return -ENOMEM;
    *d = (ref_done){done, user_data};
    struct evhttp_request *ev = req->ev;
    if (content_type)
        evhttp_add_header(evhttp_request_get_output_headers(ev), "Content-Type",
                          content_type);
    if (!len || evbuffer_add_reference(evhttp_request_get_output_buffer(ev),
                                       body, len, ref_cleanup, d) != 0)
        ref_cleanup(body, len, d);
    evhttp_send_reply(ev, status, reason_phrase(status), NULL);
    finish(req, status);
    return 0;
}

int pyoco_http_reply_json(pyoco_request *req, int status, const json_t *body) {
    if (!req || !body)
        return -EINVAL;
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return pyoco_http_reply_error(req, 500, "cannot encode the reply");
    return reply_owned(req, status, "application/json", text, strlen(text));
}

int pyoco_http_reply_error(pyoco_request *req, int status, const char *detail) {
    if (!req)
        return -EINVAL;
    json_t *o = json_pack("{s:s}", "detail", detail ? detail : "");
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return pyoco_http_reply(req, status, "application/json",
                                "{\"detail\":\"error\"}", 18);
    return reply_owned(req, status, "application/json", text, strlen(text));
}

int pyoco_http_req_add_header(pyoco_request *req, const char *name,
                              const char *value) {
    if (!req || !name || !value)
        return -EINVAL;
    return evhttp_add_header(evhttp_request_get_output_headers(req->ev), name,
                             value) == 0
               ? 0
               : -EINVAL;
}

unsigned pyoco_http_req_method(pyoco_request *req) {
    return req ? req->method : 0;
}

const char *pyoco_http_req_path(pyoco_request *req) {
    return req ? req->path : NULL;
}

const char *pyoco_http_req_param(pyoco_request *req, const char *name) {
    if (!req || !name)
        return NULL;
    for (int i = 0; i < req->nparams; i++)
        if (strcmp(req->param_name[i], name) == 0)
            return req->param_val[i];
    return NULL;
}

const char *pyoco_http_req_query(pyoco_request *req, const char *name) {
    if (!req || !name)
        return NULL;
    if (!req->query_parsed) {
        TAILQ_INIT(&req->query);
        const char *q =
            evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req->ev));
        if (q)
            evhttp_parse_query_str(q, &req->query);
        req->query_parsed = true;
    }
    return evhttp_find_header(&req->query, name);
}

const char *pyoco_http_req_header(pyoco_request *req, const char *name) {
    if (!req || !name)
        return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
}

const char *pyoco_http_req_body(pyoco_request *req, size_t *len) {
    if (!req)
        return NULL;
    if (!req->body) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req->ev);
        size_t n = evbuffer_get_length(in);
        req->body = malloc(n + 1);
        if (!req->body) {
            if (len)
                *len = 0;
            return NULL;
        }
        evbuffer_copyout(in, req->body, n);
        req->body[n] = '\0';
        req->body_len = n;
    }
    if (len)
        *len = req->body_len;
    return req->body;
}

/* ---- filters --------------------------------------------------------------
 */

int pyoco_http_filter_add(pyoco_http *http, pyoco_filter_fn fn, void *user_data,
                          pyoco_free_fn free_fn, void *owner) {
    if (!http || !fn)
        return -EINVAL;
    filter *f = realloc(http->filters, (http->nfilters + 1) * sizeof(*f));
    if (!f)
        return -ENOMEM;
    http->filters = f;
    http->filters[http->nfilters++] = (filter){fn, user_data, free_fn, owner};
    return 0;
}

int pyoco_http_filters_remove_owner(pyoco_http *http, void *owner) {
    size_t j = 0;
    int removed = 0;
    for (size_t i = 0; i < http->nfilters; i++) {
        if (http->filters[i].owner == owner) {
            if (http->filters[i].free_fn)
                http->filters[i].free_fn(http->filters[i].user_data);
            removed++;
        } else {
            http->filters[j++] = http->filters[i];
        }
    }
    http->nfilters = j;
    return removed;
}

const char *pyoco_http_req_route(pyoco_request *req) {
    return req ? req->route_pattern : NULL;
}

const char *pyoco_http_req_peer(pyoco_request *req) {
    if (!req)
        return NULL;
    struct evhttp_connection *c = evhttp_request_get_connection(req->ev);
    if (!c)
        return NULL;
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(c, &addr, &port);
    return addr;
}

/* ---- streaming replies ----------------------------------------------------
 */

static void on_conn_close(struct evhttp_connection *c, void *arg) {
    (void)c;
    pyoco_request *req = arg;
    req->gone = true;
    if (req->close_fn) {
        pyoco_close_fn fn = req->close_fn;
        req->close_fn = NULL;
        fn(req, req->close_ud);
    }
}

int pyoco_http_reply_start(pyoco_request *req, int status,
                           const char *content_type) {
    if (!req || req->streaming)
        return -EINVAL;
    struct evhttp_connection *c = evhttp_request_get_connection(req->ev);
    if (!c) {
        req->gone = true; /* already gone: only reply_end is left to do */
        req->streaming = true;
        req->status = status;
        return -EPIPE;
    }
    if (content_type)
        evhttp_add_header(evhttp_request_get_output_headers(req->ev),
                          "Content-Type", content_type);
    req->streaming = true;
    req->status = status;
    evhttp_connection_set_closecb(c, on_conn_close, req);
    evhttp_send_reply_start(req->ev, status, reason_phrase(status));
    return 0;
}

int pyoco_http_reply_chunk(pyoco_request *req, const char *data, size_t len) {
    if (!req || !req->streaming)
        return -EINVAL;
    if (req->gone || !evhttp_request_get_connection(req->ev))
        return -EPIPE;
    struct evbuffer *buf = evbuffer_new();
    if (!buf)
        return -ENOMEM;
    evbuffer_add(buf, data, len);
    evhttp_send_reply_chunk(req->ev, buf);
    evbuffer_free(buf);
    return 0;
}

size_t pyoco_http_req_output_pending(pyoco_request *req) {
    if (!req || req->gone)
        return 0;
    struct evhttp_connection *c = evhttp_request_get_connection(req->ev);
    struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

int pyoco_http_req_on_close(pyoco_request *req, pyoco_close_fn fn,
                            void *user_data) {
    if (!req)
        return -EINVAL;
    req->close_fn = fn;
    req->close_ud = user_data;
    return 0;
}

int pyoco_http_reply_end(pyoco_request *req) {
    if (!req || !req->streaming)
        return -EINVAL;
    struct evhttp_connection *c = evhttp_request_get_connection(req->ev);
    if (c && !req->gone)
        evhttp_connection_set_closecb(c, NULL, NULL);
    /* With the client gone, libevent only frees the request here. */
    evhttp_send_reply_end(req->ev);
    finish(req, req->status);
    return 0;
}

/* Answer a request no route takes: 404, or 405 when the path exists for
 * another method (with an Allow header, as HTTP asks). */
static void reply_unrouted(pyoco_request *req, unsigned allowed) {
    if (!allowed) {
        pyoco_http_reply_error(req, 404, "Not Found");
        return;
    }
    char allow[64] = "";
    for (size_t i = 0; i < sizeof(k_methods) / sizeof(k_methods[0]); i++) {
        if (allowed & k_methods[i].bit) {
            if (allow[0])
                strcat(allow, ", ");
            strcat(allow, k_methods[i].name);
        }
    }
    pyoco_http_req_add_header(req, "Allow", allow);
    pyoco_http_reply_error(req, 405, "Method Not Allowed");
}

static void on_request(struct evhttp_request *ev, void *arg) {
    pyoco_http *http = arg;
    pyoco_request *req = calloc(1, sizeof(*req));
    if (!req) {
        evhttp_send_error(ev, 503, "Out of memory");
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &req->t0);
    req->ev = ev;
    req->http = http;
    req->method = method_bit(evhttp_request_get_command(ev));
    TAILQ_INSERT_TAIL(&http->pending, req, link);
    http->in_flight++;

    size_t body_len = evbuffer_get_length(evhttp_request_get_input_buffer(ev));
    if (http->limits.max_body_bytes && body_len > http->limits.max_body_bytes) {
        char detail[128];
        snprintf(detail, sizeof(detail),
                 "request body too large: %zu bytes, the limit is %zu",
                 body_len, http->limits.max_body_bytes);
        pyoco_http_reply_error(req, 413, detail);
        return;
    }

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    req->path = path ? path : "/";

    char buf[2048];
    char *segs[MAX_SEGMENTS];
    int n = -1;
    if (strlen(req->path) < sizeof(buf)) {
        strcpy(buf, req->path);
        n = path_split(buf, segs);
    }
    const route *best = NULL;
    unsigned allowed = 0;
    for (size_t i = 0; n >= 0 && i < http->nroutes; i++) {
        const route *r = http->routes[i];
        if (!route_match(r, segs, n))
            continue;
        if (!(r->methods & req->method)) {
            allowed |= r->methods;
            continue;
        }
        /* Exact segments beat parameters: /runs/stats over /runs/{id}. */
        if (!best || r->nliterals > best->nliterals)
            best = r;
    }
    if (!best) {
        reply_unrouted(req, allowed);
        return;
    }
    req->route = best;
    req->route_pattern = strdup(best->pattern);
    for (int i = 0; i < n; i++) {
        if (!best->segs[i].param)
            continue;
        size_t dlen = 0;
        char *v = evhttp_uridecode(segs[i], 0, &dlen);
        if (!v || strlen(v) != dlen) { /* %00 inside a path parameter */
            free(v);
            pyoco_http_reply_error(req, 404, "Not Found");
            return;
        }
        req->param_name[req->nparams] = best->segs[i].text;
        req->param_val[req->nparams++] = v;
    }
    for (size_t i = 0; i < http->nfilters; i++)
        if (http->filters[i].fn(req, http->filters[i].user_data) != 0)
            return; /* the filter answered */
    best->fn(req, best->user_data);
}

/* ---- listener -------------------------------------------------------------
 */

void pyoco_http_set_limits(pyoco_http *http, const pyoco_http_limits *limits) {
    http->limits = *limits;
    /* Bodies over max_body_bytes get a JSON 413 from on_request. libevent's
     * own limit (an HTML 413, connection closed, body never buffered) is
     * kept above it, as the hard stop for absurd sizes. */
    if (limits->max_body_bytes)
        evhttp_set_max_body_size(
            http->evh, (ev_ssize_t)(limits->max_body_bytes * 4 + 65536));
    if (limits->max_header_bytes)
        evhttp_set_max_headers_size(http->evh,
                                    (ev_ssize_t)limits->max_header_bytes);
    if (limits->read_timeout > 0) {
        struct timeval tv = {
            (time_t)limits->read_timeout,
            (suseconds_t)((limits->read_timeout -
                           (double)(time_t)limits->read_timeout) *
                          1e6)};
        evhttp_set_timeout_tv(http->evh, &tv);
    }
}

pyoco_http *pyoco_http_new(struct event_base *base, pyoco_bus *bus,
                           const pyoco_http_limits *limits) {
    pyoco_http *http = calloc(1, sizeof(*http));
    if (!http)
        return NULL;
    http->base = base;
    http->bus = bus;
    http->limits = *limits;
    TAILQ_INIT(&http->pending);
    http->evh = evhttp_new(base);
    if (!http->evh) {
        free(http);
        return NULL;
    }
    evhttp_set_allowed_methods(
        http->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                       EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(http->evh, "application/json");
    evhttp_set_gencb(http->evh, on_request, http);
    return http;
}

int pyoco_http_listen(pyoco_http *http, const char *host, int port,
                      int *bound_port) {
    http->bound =
        evhttp_bind_socket_with_handle(http->evh, host, (ev_uint16_t)port);
    if (!http->bound)
        return errno ? -errno : -EADDRINUSE;
    /* Replies go out in one write; without this, large ones wait ~40 ms
     * for the client's delayed ACK. Accepted sockets inherit it. */
    int one = 1;
    setsockopt(evhttp_bound_socket_get_fd(http->bound), IPPROTO_TCP,
               TCP_NODELAY, &one, sizeof(one));
    if (bound_port) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        evutil_socket_t fd = evhttp_bound_socket_get_fd(http->bound);
        *bound_port = port;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET)
                *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    return 0;
}

void pyoco_http_stop_accepting(pyoco_http *http) {
    if (http && http->bound) {
        evhttp_del_accept_socket(http->evh, http->bound);
        http->bound = NULL;
    }
}

size_t pyoco_http_in_flight(const pyoco_http *http) {
    return http ? http->in_flight : 0;
}

void pyoco_http_free(pyoco_http *http) {
    if (!http)
        return;
    /* Nobody will answer these any more: tell the clients, end streams. */
    while (!TAILQ_EMPTY(&http->pending)) {
        pyoco_request *req = TAILQ_FIRST(&http->pending);
        if (req->streaming)
            pyoco_http_reply_end(req);
        else
            pyoco_http_reply_error(req, 503, "server shutting down");
    }
    for (size_t i = 0; i < http->nfilters; i++)
        if (http->filters[i].free_fn)
            http->filters[i].free_fn(http->filters[i].user_data);
    free(http->filters);
    if (http->evh)
        evhttp_free(http->evh);
    for (size_t i = 0; i < http->nroutes; i++)
        route_free(http->routes[i]);
    free(http->routes);
    free(http);
}
