/* wh_config.c - the webhook endpoints from the plugin's config block.
 *
 * Two sources: `endpoints` (a list of maps, each fully validated here since
 * the core only checks top-level keys), and the compat top-level keys
 * url/secret/timeout/retries (PYOCO_WEBHOOK_* env) that make one endpoint
 * named "default", as the reference does. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "wh.h"

#define DEFAULT_TIMEOUT 3.0
#define DEFAULT_BACKOFF_INITIAL 1.0
#define DEFAULT_BACKOFF_MAX 60.0
#define DEFAULT_MAX_IN_FLIGHT 16

typedef struct ctx {
    const char *where;
    char *err;
    size_t errlen;
} ctx;

__attribute__((format(printf, 3, 4))) static int fail(ctx *c, const char *key,
                                                      const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->where && *c->where)
        snprintf(c->err, c->errlen, "%s: plugins.webhook.%s: %s", c->where, key,
                 msg);
    else
        snprintf(c->err, c->errlen, "plugins.webhook.%s: %s", key, msg);
    return -EINVAL;
}

/* A scalar as text for messages. */
static void show(const json_t *v, char *buf, size_t len) {
    if (json_is_string(v)) {
        snprintf(buf, len, "\"%s\"", json_string_value(v));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, len, "%s", s ? s : "?");
    free(s);
}

/* Numbers may arrive typed or as YAML text. */
static int get_double(const json_t *v, double *out) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -EINVAL;
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end || errno)
        return -EINVAL;
    *out = d;
    return 0;
}

static int get_int(const json_t *v, long long *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -EINVAL;
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (end == s || *end || errno)
        return -EINVAL;
    *out = n;
    return 0;
}

static bool is_null(const json_t *v) {
    return !v || json_is_null(v) ||
           (json_is_string(v) && (!strcmp(json_string_value(v), "~") ||
                                  !strcmp(json_string_value(v), "null")));
}

static bool valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > WH_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
            return false;
    return true;
}

/* No control characters: the secret goes into a header line. */
static bool valid_header_value(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* http(s) only, parsed by libcurl's own URL parser. */
static int check_url(ctx *c, const char *key, const char *url) {
    if (!valid_header_value(url))
        return fail(c, key, "control characters in URL");
    CURLU *u = curl_url();
    if (!u)
        return -ENOMEM;
    char *scheme = NULL, *host = NULL;
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
    int r = 0;
    if (rc != CURLUE_OK) {
        r = fail(c, key, "invalid URL \"%s\": %s", url, curl_url_strerror(rc));
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
        r = fail(c, key, "URL \"%s\" must be http:// or https://", url);
    } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
               !*host) {
        r = fail(c, key, "URL \"%s\" has no host", url);
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return r;
}

static int set_secret(ctx *c, const char *key, wh_endpoint *ep,
                      const char *secret) {
    if (!secret || !*secret)
        return 0;
    if (!valid_header_value(secret))
        return fail(c, key, "control characters in secret");
    if (wh_secret_key(secret, &ep->key, &ep->key_len) < 0)
        return fail(c, key, "a whsec_ secret must be base64 after the prefix");
    ep->secret = strdup(secret);
    return ep->secret ? 0 : -ENOMEM;
}

static void endpoint_free(wh_endpoint *ep) {
    free(ep->name);
    free(ep->url);
    free(ep->secret);
    if (ep->key)
        memset(ep->key, 0, ep->key_len);
    free(ep->key);
}

static void endpoint_defaults(wh_endpoint *ep) {
    memset(ep, 0, sizeof *ep);
    ep->events = WH_EV_ALL;
    ep->timeout = DEFAULT_TIMEOUT;
    ep->attempts = 1;
    ep->backoff_initial = DEFAULT_BACKOFF_INITIAL;
    ep->backoff_max = DEFAULT_BACKOFF_MAX;
    ep->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
}

static int read_seconds(ctx *c, const char *key, const json_t *v, double min,
                        bool min_exclusive, double *out) {
    char shown[128];
    double d;
    if (get_double(v, &d) < 0 || !isfinite(d) ||
        (min_exclusive ? d <= min : d < min)) {
        show(v, shown, sizeof shown);
        return fail(c, key, "expected a number of seconds %s %g, got %s",
                    min_exclusive ? ">" : ">=", min, shown);
    }
    *out = d;
    return 0;
}

static int read_count(ctx *c, const char *key, const json_t *v, int *out) {
    char shown[128];
    long long n;
    if (get_int(v, &n) < 0 || n < 1 || n > 1000000) {
        show(v, shown, sizeof shown);
        return fail(c, key, "expected an integer >= 1, got %s", shown);
    }
    *out = (int)n;
    return 0;
}

static int read_events(ctx *c, const char *key, const json_t *v,
                       unsigned *out) {
    char shown[128];
    if (json_is_string(v)) { /* one event written as a scalar */
        unsigned bit = wh_event_bit_from_name(json_string_value(v));
        if (!bit)
            goto bad;
        *out = bit;
        return 0;
    }
    if (!json_is_array(v))
        goto bad;
    unsigned bits = 0;
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        unsigned bit = json_is_string(e)
                           ? wh_event_bit_from_name(json_string_value(e))
                           : 0;
        if (!bit) {
            show(e, shown, sizeof shown);
            return fail(c, key,
                        "unknown event %s (expected run.completed, "
                        "run.failed or run.cancelled)",
                        shown);
        }
        bits |= bit;
    }
    if (!bits)
        return fail(c, key, "empty event list");
    *out = bits;
    return 0;
bad:
    show(v, shown, sizeof shown);
    return fail(c, key,
                "expected a list of run.completed, run.failed, "
                "run.cancelled, got %s",
                shown);
}

static int read_string(ctx *c, const char *key, const json_t *v,
                       const char **out) {
    char shown[128];
    if (!json_is_string(v)) {
        show(v, shown, sizeof shown);
        return fail(c, key, "expected a string, got %s", shown);
    }
    *out = json_string_value(v);
    return 0;
}

static int parse_endpoint(ctx *c, size_t idx, const json_t *m,
                          wh_endpoint *ep) {
    char key[96];
    endpoint_defaults(ep);
    if (!json_is_object(m)) {
        snprintf(key, sizeof key, "endpoints[%zu]", idx);
        return fail(c, key, "expected a map with name and url");
    }
    const char *k;
    const json_t *v;
    const char *name = NULL, *url = NULL, *secret = NULL;
    int r = 0;
    json_object_foreach((json_t *)m, k, v) {
        snprintf(key, sizeof key, "endpoints[%zu].%s", idx, k);
        if (is_null(v))
            continue;
        if (!strcmp(k, "name"))
            r = read_string(c, key, v, &name);
        else if (!strcmp(k, "url"))
            r = read_string(c, key, v, &url);
        else if (!strcmp(k, "secret"))
            r = read_string(c, key, v, &secret);
        else if (!strcmp(k, "events"))
            r = read_events(c, key, v, &ep->events);
        else if (!strcmp(k, "timeout"))
            r = read_seconds(c, key, v, 0, true, &ep->timeout);
        else if (!strcmp(k, "attempts"))
            r = read_count(c, key, v, &ep->attempts);
        else if (!strcmp(k, "backoff_initial"))
            r = read_seconds(c, key, v, 0, false, &ep->backoff_initial);
        else if (!strcmp(k, "backoff_max"))
            r = read_seconds(c, key, v, 0, false, &ep->backoff_max);
        else if (!strcmp(k, "max_in_flight"))
            r = read_count(c, key, v, &ep->max_in_flight);
        else
            r = fail(c, key,
                     "unknown key (expected name, url, secret, events, "
                     "timeout, attempts, backoff_initial, backoff_max, "
                     "max_in_flight)");
        if (r < 0)
            return r;
    }
    snprintf(key, sizeof key, "endpoints[%zu].name", idx);
    if (!name)
        return fail(c, key, "required");
    if (!valid_name(name))
        return fail(c, key, "\"%s\" must be 1-%d characters of [A-Za-z0-9_.-]",
                    name, WH_NAME_MAX);
    snprintf(key, sizeof key, "endpoints[%zu].url", idx);
    if (!url)
        return fail(c, key, "required");
    if ((r = check_url(c, key, url)) < 0)
        return r;
    if (ep->backoff_max < ep->backoff_initial) {
        snprintf(key, sizeof key, "endpoints[%zu].backoff_max", idx);
        return fail(c, key, "%g is below backoff_initial %g", ep->backoff_max,
                    ep->backoff_initial);
    }
    snprintf(key, sizeof key, "endpoints[%zu].secret", idx);
    if ((r = set_secret(c, key, ep, secret)) < 0)
        return r;
    ep->name = strdup(name);
    ep->url = strdup(url);
    return ep->name && ep->url ? 0 : -ENOMEM;
}

/* The compat endpoint: PYOCO_WEBHOOK_URL and friends (or url/secret/...). */
static int parse_default(pyoco_host *h, const pyoco_api *api, ctx *c,
                         wh_endpoint *ep, bool *made) {
    *made = false;
    const char *url = api->config_string(h, "url");
    if (!url || !*url) /* unset or empty: no notifications, as the reference */
        return 0;
    endpoint_defaults(ep);
    c->where = api->config_where(h, "url");
    int r = check_url(c, "url", url);
    if (r < 0)
        return r;
    double timeout = DEFAULT_TIMEOUT;
    if (api->config_double(h, "timeout", &timeout) == 0) {
        if (!isfinite(timeout) || timeout <= 0) {
            c->where = api->config_where(h, "timeout");
            return fail(c, "timeout", "expected seconds > 0, got %g", timeout);
        }
        ep->timeout = timeout;
    }
    int64_t retries = 1;
    if (api->config_int(h, "retries", &retries) == 0)
        /* The reference clamps: retries is the total number of attempts. */
        ep->attempts = retries < 1         ? 1
                       : retries > 1000000 ? 1000000
                                           : (int)retries;
    c->where = api->config_where(h, "secret");
    if ((r = set_secret(c, "secret", ep, api->config_string(h, "secret"))) < 0)
        return r;
    ep->name = strdup("default");
    ep->url = strdup(url);
    if (!ep->name || !ep->url)
        return -ENOMEM;
    *made = true;
    return 0;
}

int wh_config_load(pyoco_host *h, const pyoco_api *api, wh_config *out,
                   char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    ctx c = {.where = api->config_where(h, "endpoints"),
             .err = err,
             .errlen = errlen};
    const json_t *list = api->config_json(h, "endpoints");
    size_t n = 0;
    if (list && !json_is_null(list)) {
        if (!json_is_array(list))
            return fail(&c, "endpoints", "expected a list of maps");
        n = json_array_size(list);
    }
    out->endpoints = calloc(n + 1, sizeof *out->endpoints);
    if (!out->endpoints)
        return -ENOMEM;
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        r = parse_endpoint(&c, i, json_array_get(list, i),
                           &out->endpoints[out->count]);
        out->count++; /* counted even on error so free releases it */
        if (r < 0)
            goto fail;
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(out->endpoints[j].name, out->endpoints[i].name)) {
                char key[64];
                snprintf(key, sizeof key, "endpoints[%zu].name", i);
                r = fail(&c, key, "duplicate endpoint name \"%s\"",
                         out->endpoints[i].name);
                goto fail;
            }
        }
    }
    bool made;
    r = parse_default(h, api, &c, &out->endpoints[out->count], &made);
    if (r < 0 || made)
        out->count++;
    if (r < 0)
        goto fail;
    if (made &&
        wh_config_find(out, "default") != &out->endpoints[out->count - 1]) {
        c.where = api->config_where(h, "endpoints");
        r = fail(&c, "endpoints",
                 "an endpoint is named \"default\" and url is set too "
                 "(url configures the endpoint \"default\")");
        goto fail;
    }
    return 0;
fail:
    wh_config_free(out);
    return r;
}

void wh_config_free(wh_config *cfg) {
    for (size_t i = 0; i < cfg->count; i++)
        endpoint_free(&cfg->endpoints[i]);
    free(cfg->endpoints);
    cfg->endpoints = NULL;
    cfg->count = 0;
}

wh_endpoint *wh_config_find(wh_config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->count; i++)
        if (cfg->endpoints[i].name && !strcmp(cfg->endpoints[i].name, name))
            return &cfg->endpoints[i];
    return NULL;
}
