/* auth.c - the auth plugin: a request filter that lets a routed request
 * through only with an API key holding the right its route needs (or basic
 * auth on the metrics path). Keys are held as SHA-256 digests; keys and
 * passwords are never logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pyoco/plugin.h>

#include "auth_conf.h"
#include "auth_cred.h"
#include "auth_keys.h"
#include "auth_rights.h"

#define AUTH_PLUGIN_VERSION "1.0.0"
#define AUTH_METRIC "pyoco_auth_requests_total"
#define AUTH_METRIC_HELP                                                       \
    "Requests checked by the auth plugin, by outcome (open routes are not "    \
    "counted)"

typedef struct auth {
    pyoco_host *host;
    const pyoco_api *api;
    pyoco_auth_conf conf;
    double last_log;     /* when the last denial was logged */
    unsigned long quiet; /* denials not logged since then */
} auth;

static void count(auth *a, const char *outcome, double value) {
    static const char *const names[] = {"outcome"};
    const char *values[] = {outcome};
    pyoco_metric_sample s = {
        .size = sizeof s,
        .name = AUTH_METRIC,
        .help = AUTH_METRIC_HELP,
        .type = PYOCO_METRIC_COUNTER,
        .op = PYOCO_METRIC_ADD,
        .value = value,
        .nlabels = 1,
        .label_names = names,
        .label_values = values,
    };
    a->api->metric(a->host, &s);
}

static const char *method_name(unsigned m) {
    switch (m) {
    case PYOCO_HTTP_GET:
        return "GET";
    case PYOCO_HTTP_POST:
        return "POST";
    case PYOCO_HTTP_PUT:
        return "PUT";
    case PYOCO_HTTP_DELETE:
        return "DELETE";
    case PYOCO_HTTP_HEAD:
        return "HEAD";
    case PYOCO_HTTP_PATCH:
        return "PATCH";
    default:
        return "?";
    }
}

/* At most one line a second, so a client hammering with a bad key cannot
 * flood the log; the next line says how many were left out. */
static void log_denied(auth *a, pyoco_request *req, const char *route,
                       const char *why) {
    double now = a->api->now(a->host);
    if (a->last_log > 0 && now - a->last_log < 1.0 && now >= a->last_log) {
        a->quiet++;
        return;
    }
    const char *peer = a->api->req_peer(req);
    if (a->quiet)
        a->api->log(a->host, PYOCO_LOG_WARN,
                    "denied %s %s from %s: %s (%lu more denied requests not "
                    "logged)",
                    method_name(a->api->req_method(req)), route ? route : "?",
                    peer ? peer : "?", why, a->quiet);
    else
        a->api->log(a->host, PYOCO_LOG_WARN, "denied %s %s from %s: %s",
                    method_name(a->api->req_method(req)), route ? route : "?",
                    peer ? peer : "?", why);
    a->last_log = now;
    a->quiet = 0;
}

static int unauthenticated(auth *a, pyoco_request *req, const char *route,
                           bool basic_too, const char *detail) {
    log_denied(a, req, route, detail);
    count(a, "unauthenticated", 1);
    a->api->req_add_header(req, "WWW-Authenticate", "Bearer");
    if (basic_too)
        a->api->req_add_header(req, "WWW-Authenticate",
                               "Basic realm=\"pyoco\"");
    a->api->reply_error(req, 401, detail);
    return 1;
}

static int forbidden(auth *a, pyoco_request *req, const char *route,
                     const pyoco_auth_key *k, unsigned need) {
    char detail[160];
    snprintf(detail, sizeof detail, "key '%s' lacks the '%s' right", k->name,
             pyoco_auth_role_name(need));
    log_denied(a, req, route, detail);
    count(a, "forbidden", 1);
    a->api->reply_error(req, 403, detail);
    return 1;
}

static int on_request(pyoco_request *req, void *user_data) {
    auth *a = user_data;
    const pyoco_auth_conf *c = &a->conf;
    if (!c->enabled)
        return 0;
    const char *route = a->api->req_route(req);
    if (pyoco_auth_conf_is_open(c, route))
        return 0;
    unsigned need =
        pyoco_auth_required(a->api->req_method(req), route, c->metrics_path);
    bool basic_ok = need == PYOCO_AUTH_METRICS && c->basic.set;
    pyoco_auth_cred cred;
    pyoco_auth_cred_parse(a->api->req_header(req, "X-API-Key"),
                          a->api->req_header(req, "Authorization"), &cred);
    int rc = 0;
    const pyoco_auth_key *k;
    switch (cred.kind) {
    case PYOCO_AUTH_CRED_KEY:
        if (!(k = pyoco_auth_keys_match(&c->keys, cred.key, cred.keylen)))
            rc = unauthenticated(a, req, route, basic_ok, "invalid API key");
        else if (!pyoco_auth_allows(k->roles, need))
            rc = forbidden(a, req, route, k, need);
        break;
    case PYOCO_AUTH_CRED_BASIC:
        if (!basic_ok)
            rc = unauthenticated(a, req, route, false,
                                 "basic auth is not accepted here: send "
                                 "X-API-Key: <key> or Authorization: Bearer "
                                 "<key>");
        else if (!pyoco_auth_basic_check(&c->basic, &cred))
            rc = unauthenticated(a, req, route, true,
                                 "invalid username or password");
        break;
    case PYOCO_AUTH_CRED_BAD:
        rc = unauthenticated(a, req, route, basic_ok,
                             "unreadable credentials: send X-API-Key: <key> "
                             "or Authorization: Bearer <key>");
        break;
    default:
        rc = unauthenticated(a, req, route, basic_ok,
                             "missing credentials: send X-API-Key: <key> or "
                             "Authorization: Bearer <key>");
        break;
    }
    pyoco_auth_cred_clear(&cred);
    if (rc == 0)
        count(a, "allowed", 1);
    return rc;
}

static void describe(auth *a) {
    const pyoco_auth_conf *c = &a->conf;
    if (!c->enabled) {
        a->api->log(a->host, PYOCO_LOG_WARN,
                    "disabled (enabled: false): every request passes without "
                    "credentials; listen on loopback only");
        return;
    }
    a->api->log(a->host, PYOCO_LOG_INFO, "%zu API key(s)%s, %zu open route(s)",
                c->keys.n,
                c->basic.set ? ", basic auth on the metrics path" : "",
                c->nopen);
    if (c->keys.n == 0 && !c->basic.set)
        a->api->log(a->host, PYOCO_LOG_WARN,
                    "no keys configured: every request but open routes gets "
                    "401");
}

static int auth_init(pyoco_host *host, const pyoco_api *api, void **state,
                     char *err, size_t errlen) {
    auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    a->host = host;
    a->api = api;
    int rc = pyoco_auth_conf_load(host, api, &a->conf, err, errlen);
    if (rc == 0 && (rc = api->filter_add(host, on_request, a, NULL)) < 0)
        snprintf(err, errlen, "cannot add the request filter: %s",
                 strerror(-rc));
    if (rc < 0) {
        pyoco_auth_conf_free(&a->conf);
        free(a);
        return rc;
    }
    *state = a;
    describe(a);
    return 0;
}

static int auth_start(pyoco_host *host, void *state) {
    auth *a = state;
    /* Every outcome's series exists from the first scrape (exporters have
     * subscribed by now; they had not all during init). */
    count(a, "allowed", 0);
    count(a, "unauthenticated", 0);
    count(a, "forbidden", 0);
    return 0;
}

static int auth_stop(pyoco_host *host, void *state) {
    return 0;
}

static void auth_fini(pyoco_host *host, void *state) {
    auth *a = state;
    if (!a)
        return;
    pyoco_auth_conf_free(&a->conf);
    free(a);
}

/* SIGHUP (the host calls this on every one): re-read everything, key_file
 * included; keep the old settings if the new ones are wrong. */
static int auth_reload(pyoco_host *host, void *state, char *err,
                       size_t errlen) {
    auth *a = state;
    pyoco_auth_conf fresh;
    int rc = pyoco_auth_conf_load(host, a->api, &fresh, err, errlen);
    if (rc < 0)
        return rc;
    pyoco_auth_conf_free(&a->conf);
    a->conf = fresh;
    a->api->log(host, PYOCO_LOG_INFO, "reloaded");
    describe(a);
    return 0;
}

static const pyoco_plugin_desc desc = {
    PYOCO_PLUGIN_DESC_INIT,
    .name = "auth",
    .version = AUTH_PLUGIN_VERSION,
    .description = "API keys with roles, and basic auth on /metrics",
    .config_keys = pyoco_auth_config_keys,
    .init = auth_init,
    .start = auth_start,
    .stop = auth_stop,
    .fini = auth_fini,
    .reload = auth_reload,
};

PYOCO_PLUGIN_EXPORT const pyoco_plugin_desc *pyoco_plugin_entry(void) {
    return &desc;
}
