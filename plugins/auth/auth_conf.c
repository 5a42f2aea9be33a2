/* auth_conf.c - see auth_conf.h. */
#include "auth_conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const pyoco_config_key pyoco_auth_config_keys[] = {
    {"enabled", PYOCO_CONFIG_BOOL, "true",
     "check credentials (false: every request passes, e.g. loopback only)",
     "PYOCO_AUTH_ENABLED"},
    {"keys", PYOCO_CONFIG_LIST, NULL,
     "API keys: a list of {name, sha256 (hex SHA-256 of the key), roles: "
     "[worker, submitter, reader, metrics, admin]}",
     NULL},
    {"key_file", PYOCO_CONFIG_STRING, NULL,
     "file of API keys, one \"name sha256hex role,role\" per line, '#' "
     "comments; re-read on SIGHUP",
     "PYOCO_AUTH_KEY_FILE"},
    {"open_routes", PYOCO_CONFIG_LIST, "[\"/health\"]",
     "route patterns served without credentials (any method)", NULL},
    {"metrics_path", PYOCO_CONFIG_STRING, "/metrics",
     "route that needs the metrics right (and accepts metrics_basic_auth)",
     NULL},
    {"metrics_basic_auth", PYOCO_CONFIG_MAP, NULL,
     "{username, password_sha256}: HTTP basic auth also accepted on "
     "metrics_path (Prometheus basic_auth)",
     NULL},
    {NULL, 0, NULL, NULL, NULL},
};

__attribute__((format(printf, 6, 7))) static int
fail(char *err, size_t errlen, const pyoco_api *api, pyoco_host *h,
     const char *key, const char *fmt, ...) {
    const char *where = api->config_where(h, key);
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s%splugins.auth.%s: %s",
             where && *where ? where : "", where && *where ? ": " : "", key,
             msg);
    return -EINVAL;
}

static bool path_ok(const char *p) {
    return p && p[0] == '/' && !strpbrk(p, " \t?#");
}

static int load_open(pyoco_host *h, const pyoco_api *api, pyoco_auth_conf *c,
                     char *err, size_t errlen) {
    const json_t *list = api->config_json(h, "open_routes");
    if (!list)
        return 0;
    if (!json_is_array(list))
        return fail(err, errlen, api, h, "open_routes",
                    "expected a list of route patterns");
    c->open_routes = calloc(json_array_size(list) + 1, sizeof(char *));
    if (!c->open_routes)
        return -ENOMEM;
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        if (!path_ok(s))
            return fail(err, errlen, api, h, "open_routes",
                        "expected route patterns such as /health, got %s",
                        s ? s : "a non-string");
        if (!(c->open_routes[c->nopen++] = strdup(s)))
            return -ENOMEM;
    }
    return 0;
}

static int load_basic(pyoco_host *h, const pyoco_api *api, pyoco_auth_conf *c,
                      char *err, size_t errlen) {
    const json_t *m = api->config_json(h, "metrics_basic_auth");
    if (!m || json_is_null(m))
        return 0;
    const char *k = "metrics_basic_auth";
    if (!json_is_object(m))
        return fail(err, errlen, api, h, k,
                    "expected a mapping {username, password_sha256}");
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)m, name, v) {
        if (strcmp(name, "username") && strcmp(name, "password_sha256"))
            return fail(err, errlen, api, h, k,
                        "unknown key '%s' (known: username, password_sha256)",
                        name);
    }
    const char *user = json_string_value(json_object_get(m, "username"));
    const char *hex = json_string_value(json_object_get(m, "password_sha256"));
    if (!user || !*user || strchr(user, ':'))
        return fail(err, errlen, api, h, k,
                    "username: expected a non-empty string without ':'");
    if (!hex || pyoco_auth_hex_decode(hex, c->basic.pass_digest) < 0)
        return fail(err, errlen, api, h, k,
                    "password_sha256: expected 64 hex digits (printf %%s "
                    "\"$PASSWORD\" | sha256sum)");
    if (pyoco_auth_sha256(user, strlen(user), c->basic.user_digest) < 0)
        return -EIO;
    c->basic.set = true;
    return 0;
}

int pyoco_auth_conf_load(pyoco_host *h, const pyoco_api *api,
                         pyoco_auth_conf *out, char *err, size_t errlen) {
    pyoco_auth_conf c = {.enabled = true};
    int rc = 0;
    bool b;
    if (api->config_bool(h, "enabled", &b) == 0)
        c.enabled = b;
    const char *mp = api->config_string(h, "metrics_path");
    if (!mp)
        mp = "/metrics";
    if (!path_ok(mp)) {
        rc = fail(err, errlen, api, h, "metrics_path",
                  "expected an absolute URL path such as /metrics, got %s", mp);
        goto out;
    }
    if (!(c.metrics_path = strdup(mp))) {
        rc = -ENOMEM;
        goto out;
    }
    const json_t *keys = api->config_json(h, "keys");
    if (keys && !json_is_null(keys) &&
        (rc = pyoco_auth_keys_from_json(
             &c.keys, keys, api->config_where(h, "keys"), err, errlen)) < 0)
        goto out;
    const char *kf = api->config_string(h, "key_file");
    if (kf && *kf) {
        char why[512];
        if ((rc = pyoco_auth_keys_from_file(&c.keys, kf, why, sizeof why)) <
            0) {
            const char *where = api->config_where(h, "key_file");
            snprintf(err, errlen, "%s%splugins.auth.key_file: %s",
                     where && *where ? where : "", where && *where ? ": " : "",
                     why);
            goto out;
        }
    }
    if ((rc = load_open(h, api, &c, err, errlen)) < 0)
        goto out;
    rc = load_basic(h, api, &c, err, errlen);
out:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc < 0) {
        pyoco_auth_conf_free(&c);
        memset(out, 0, sizeof *out);
        return rc;
    }
    *out = c;
    return 0;
}

void pyoco_auth_conf_free(pyoco_auth_conf *c) {
    if (!c)
        return;
    pyoco_auth_keyset_free(&c->keys);
    for (size_t i = 0; i < c->nopen; i++)
        free(c->open_routes[i]);
    free(c->open_routes);
    free(c->metrics_path);
    memset(c, 0, sizeof *c);
}

bool pyoco_auth_conf_is_open(const pyoco_auth_conf *c, const char *route) {
    if (!route)
        return false;
    for (size_t i = 0; i < c->nopen; i++)
        if (strcmp(c->open_routes[i], route) == 0)
            return true;
    return false;
}
