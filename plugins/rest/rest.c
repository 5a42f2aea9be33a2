/* plugins/rest/rest.c - the Kanban REST API: HTTP routes to registry calls.
 *
 * Wire validation happens here (422, FastAPI-shaped detail) before the
 * registry is called, so a bad request changes nothing. Requests that
 * change state are answered after the durability barrier (durable.c).
 * No logging per request: this is the hot path of every worker. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pyoco/plugin.h>

#include "durable.h"
#include "validate.h"

#define REST_VERSION "1.0.0"
#define MAX_LIST_LIMIT 200

typedef struct rest {
    pyoco_host *host;
    const pyoco_api *api;
    pyoco_rest_durable *durable;
    char *health; /* GET /health body, built once the plugin set is final */
    size_t health_len;
} rest;

static const char POLL_EMPTY[] =
    "{\"run_id\":null,\"flow_name\":null,\"params\":null}";
static const char CANCEL_REPLY[] = "{\"status\":\"CANCELLING\"}";
static const char HB_TRUE[] = "{\"cancel_requested\":true}";
static const char HB_FALSE[] = "{\"cancel_requested\":false}";

/* Copy at most max bytes of s into out (>= max + 4 bytes) as valid UTF-8:
 * cut on a character boundary, invalid bytes as U+FFFD (any query value
 * may be echoed in an error; the reply must stay valid JSON text). */
static void utf8_excerpt(const char *s, char *out, size_t max) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80         ? 1
                   : (*p >> 5) == 6  ? 2
                   : (*p >> 4) == 14 ? 3
                   : (*p >> 3) == 30 ? 4
                                     : 0;
        bool ok = n > 0;
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xC0) == 0x80;
        if (ok && n == 2 && *p < 0xC2)
            ok = false; /* overlong */
        const char *src = ok ? (const char *)p : "\xEF\xBF\xBD";
        size_t len = ok ? n : 3;
        if (o + len > max)
            break;
        memcpy(out + o, src, len);
        o += len;
        p += ok ? n : 1;
    }
    out[o] = '\0';
}

static void reply_detail(rest *r, pyoco_request *req, int status,
                         json_t *detail) {
    json_t *o = json_pack("{s:o}", "detail", detail);
    if (o) {
        r->api->reply_json(req, status, o);
        json_decref(o);
    } else {
        r->api->reply_error(req, 500, "out of memory");
    }
}

/* A registry failure other than validation. */
static void reply_errno(rest *r, pyoco_request *req, int rc) {
    if (rc == -ENOENT) {
        r->api->reply_error(req, 404, "Run not found");
    } else if (rc == -EINVAL) {
        /* The registry found a shape this plugin let through. */
        reply_detail(r, req, 422,
                     json_pack("[{s:[s],s:s,s:s}]", "loc", "body", "msg",
                               "body: rejected by the registry", "type",
                               "value_error"));
    } else {
        char msg[128];
        snprintf(msg, sizeof msg, "internal error: %s", strerror(-rc));
        r->api->reply_error(req, 500, msg);
    }
}

/* Parse and validate a body; NULL when already answered with 422. */
static json_t *read_body(rest *r, pyoco_request *req,
                         json_t *(*validate)(const json_t *)) {
    size_t len = 0;
    const char *buf = r->api->req_body(req, &len);
    json_t *detail = NULL;
    json_t *body = pyoco_rest_parse_object(buf, len, &detail);
    if (body && (detail = validate(body)) != NULL) {
        json_decref(body);
        body = NULL;
    }
    if (!body)
        reply_detail(r, req, 422, detail);
    return body;
}

/* A text query parameter; empty counts as absent, like the reference's
 * `if status:` tests. */
static const char *query_text(rest *r, pyoco_request *req, const char *name) {
    const char *v = r->api->req_query(req, name);
    return v && *v ? v : NULL;
}

/* A run id path parameter; the router guarantees it is non-empty. */
static const char *run_id_of(rest *r, pyoco_request *req) {
    const char *id = r->api->req_param(req, "run_id");
    return id ? id : "";
}

/* ---- handlers ------------------------------------------------------------ */

static void h_submit(pyoco_request *req, void *ud) {
    rest *r = ud;
    json_t *body = read_body(r, req, pyoco_rest_validate_submit);
    if (!body)
        return;
    char id[37];
    int rc = r->api->run_submit(
        r->host, json_string_value(json_object_get(body, "flow_name")),
        json_object_get(body, "params"), json_object_get(body, "tags"), id);
    json_decref(body);
    if (rc < 0) {
        reply_errno(r, req, rc);
        return;
    }
    char out[96];
    int n = snprintf(out, sizeof out,
                     "{\"run_id\":\"%s\",\"status\":\"PENDING\"}", id);
    pyoco_rest_durable_reply_text(r->durable, req, out, (size_t)n);
}

static void h_list(pyoco_request *req, void *ud) {
    rest *r = ud;
    const char *status = query_text(r, req, "status");
    const char *flow = query_text(r, req, "flow");
    const char *limit_s = r->api->req_query(req, "limit");
    long limit = -1;
    json_t *detail = NULL;
    if (limit_s &&
        pyoco_rest_parse_query_int("limit", limit_s, 1, MAX_LIST_LIMIT, &limit,
                                   &detail) < 0) {
        reply_detail(r, req, 422, detail);
        return;
    }
    if (status && !pyoco_rest_is_run_status(status)) {
        char shown[128], msg[160];
        utf8_excerpt(status, shown, 100);
        snprintf(msg, sizeof msg, "Invalid status '%s'", shown);
        json_t *probe = json_string(msg); /* jansson's own UTF-8 check */
        if (!probe)
            snprintf(msg, sizeof msg, "Invalid status");
        json_decref(probe);
        r->api->reply_error(req, 400, msg);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = r->api->run_list_text(r->host, status, flow,
                                   limit < 0 ? (size_t)-1 : (size_t)limit,
                                   &text, &len);
    if (rc < 0) {
        reply_errno(r, req, rc);
        return;
    }
    r->api->reply_ref(req, 200, "application/json", text, len, free, text);
}

/* GET answers come from the host's per-run JSON text cache: a copy, not a
 * rebuild and dump of the run's objects. */
static void h_get(pyoco_request *req, void *ud) {
    rest *r = ud;
    char *text = NULL;
    size_t len = 0;
    int rc = r->api->run_get_text(r->host, run_id_of(r, req), &text, &len);
    if (rc < 0) {
        reply_errno(r, req, rc);
        return;
    }
    r->api->reply_ref(req, 200, "application/json", text, len, free, text);
}

static void h_cancel(pyoco_request *req, void *ud) {
    rest *r = ud;
    int rc = r->api->run_cancel(r->host, run_id_of(r, req));
    if (rc < 0) {
        reply_errno(r, req, rc);
        return;
    }
    pyoco_rest_durable_reply_text(r->durable, req, CANCEL_REPLY,
                                  sizeof CANCEL_REPLY - 1);
}

static void h_poll(pyoco_request *req, void *ud) {
    rest *r = ud;
    json_t *body = read_body(r, req, pyoco_rest_validate_poll);
    if (!body)
        return;
    json_t *out = NULL;
    int rc = r->api->worker_poll(
        r->host, json_string_value(json_object_get(body, "worker_id")),
        json_object_get(body, "tags"), &out);
    json_decref(body);
    if (rc < 0) {
        reply_errno(r, req, rc);
        return;
    }
    if (json_is_string(json_object_get(out, "run_id"))) {
        /* A run was handed out: an assignment to make durable. */
        pyoco_rest_durable_reply_json(r->durable, req, out);
        return;
    }
    json_decref(out);
    r->api->reply(req, 200, "application/json", POLL_EMPTY,
                  sizeof POLL_EMPTY - 1);
}

static void h_heartbeat(pyoco_request *req, void *ud) {
    rest *r = ud;
    /* Validation first, as FastAPI does: a bad body is 422 even for an
     * unknown run. */
    json_t *body = read_body(r, req, pyoco_rest_validate_heartbeat);
    if (!body)
        return;
    bool cancel = false;
    int rc = r->api->run_heartbeat(r->host, run_id_of(r, req), body, &cancel);
    json_decref(body);
    if (rc < 0) {
        reply_errno(r, req, rc);
        return;
    }
    if (cancel)
        pyoco_rest_durable_reply_text(r->durable, req, HB_TRUE,
                                      sizeof HB_TRUE - 1);
    else
        pyoco_rest_durable_reply_text(r->durable, req, HB_FALSE,
                                      sizeof HB_FALSE - 1);
}

static void h_logs(pyoco_request *req, void *ud) {
    rest *r = ud;
    const char *task = query_text(r, req, "task");
    const char *tail_s = r->api->req_query(req, "tail");
    long tail = -1;
    json_t *detail = NULL;
    if (tail_s && pyoco_rest_parse_query_int("tail", tail_s, 0, 1L << 40, &tail,
                                             &detail) < 0) {
        reply_detail(r, req, 422, detail);
        return;
    }
    if (tail == 0)
        tail = -1; /* the reference's logs[-0:] is every entry */
    json_t *out = NULL;
    int rc = r->api->run_logs(r->host, run_id_of(r, req), task, tail, &out);
    if (rc < 0) {
        reply_errno(r, req, rc);
        return;
    }
    r->api->reply_json(req, 200, out);
    json_decref(out);
}

static int build_health(rest *r) {
    json_t *names = json_array();
    pyoco_plugin_info info;
    for (size_t i = 0;; i++) {
        memset(&info, 0, sizeof info);
        info.size = sizeof info;
        if (r->api->plugin_info(r->host, i, &info) < 0)
            break;
        json_array_append_new(names, json_string(info.name ? info.name : ""));
    }
    const char *version = r->api->server_version(r->host);
    json_t *o = json_pack("{s:s,s:s,s:o}", "status", "ok", "version",
                          version ? version : "", "plugins", names);
    if (!o)
        return -ENOMEM;
    r->health = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!r->health)
        return -ENOMEM;
    r->health_len = strlen(r->health);
    return 0;
}

static void h_health(pyoco_request *req, void *ud) {
    rest *r = ud;
    if (!r->health && build_health(r) < 0) {
        r->api->reply_error(req, 500, "out of memory");
        return;
    }
    r->api->reply(req, 200, "application/json", r->health, r->health_len);
}

/* ---- lifecycle ----------------------------------------------------------- */

static const struct {
    unsigned methods;
    const char *pattern;
    pyoco_route_fn fn;
} routes[] = {
    {PYOCO_HTTP_POST, "/runs", h_submit},
    {PYOCO_HTTP_GET, "/runs", h_list},
    {PYOCO_HTTP_GET, "/runs/{run_id}", h_get},
    {PYOCO_HTTP_POST, "/runs/{run_id}/cancel", h_cancel},
    {PYOCO_HTTP_POST, "/runs/{run_id}/heartbeat", h_heartbeat},
    {PYOCO_HTTP_GET, "/runs/{run_id}/logs", h_logs},
    {PYOCO_HTTP_POST, "/workers/poll", h_poll},
    {PYOCO_HTTP_GET, "/health", h_health},
};

static int rest_init(pyoco_host *host, const pyoco_api *api, void **state,
                     char *err, size_t errlen) {
    rest *r = calloc(1, sizeof *r);
    if (!r || !(r->durable = pyoco_rest_durable_new(host, api))) {
        free(r);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->host = host;
    r->api = api;
    *state = r;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        /* The host unloads everything registered if init fails. */
        int rc = api->route_add(host, routes[i].methods, routes[i].pattern,
                                routes[i].fn, r, NULL);
        if (rc < 0) {
            snprintf(err, errlen, "cannot add route %s: %s", routes[i].pattern,
                     strerror(-rc));
            pyoco_rest_durable_free(r->durable);
            free(r);
            *state = NULL;
            return rc;
        }
    }
    return 0;
}

static int rest_start(pyoco_host *host, void *state) {
    rest *r = state;
    /* Every plugin is initialised now: the list for /health is final. */
    return build_health(r);
}

static int rest_stop(pyoco_host *host, void *state) {
    return 0;
}

static void rest_fini(pyoco_host *host, void *state) {
    rest *r = state;
    if (!r)
        return;
    pyoco_rest_durable_free(r->durable);
    free(r->health);
    free(r);
}

static const pyoco_plugin_desc desc = {
    PYOCO_PLUGIN_DESC_INIT,
    .name = "rest",
    .version = REST_VERSION,
    .description = "Kanban REST API (Pyoco v0.5.1 compatible)",
    .config_keys = NULL,
    .init = rest_init,
    .start = rest_start,
    .stop = rest_stop,
    .fini = rest_fini,
};

PYOCO_PLUGIN_EXPORT const pyoco_plugin_desc *pyoco_plugin_entry(void) {
    return &desc;
}
