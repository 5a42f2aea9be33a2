/* libFuzzer target: pyoco.yaml text through pyoco_config_parse, then every
 * plugin block through pyoco_config_plugin_bind with a key table of every
 * type (with defaults), and the resolved values read back.
 * Invariants (abort otherwise): 0 or -EINVAL/-ENOENT/-ENOMEM with a
 * non-empty NUL-terminated message; the server settings of a parsed config
 * are sane; a bound value of each type reads back with its accessor. The
 * text is passed in an exact-size buffer (no NUL) so an over-read shows. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const pyoco_config_key KEYS[] = {
    {"url", PYOCO_CONFIG_STRING, NULL, "a string, unset", NULL},
    {"name", PYOCO_CONFIG_STRING, "\"x: y\"", "a quoted default", NULL},
    {"retries", PYOCO_CONFIG_INT, "3", "an int", NULL},
    {"timeout", PYOCO_CONFIG_DOUBLE, "2.5", "a double", NULL},
    {"enabled", PYOCO_CONFIG_BOOL, "yes", "a bool", NULL},
    {"buckets", PYOCO_CONFIG_LIST, "[0.1, 1, 10]", "a list", NULL},
    {"headers", PYOCO_CONFIG_MAP, "{}", "a map", NULL},
    {"path", PYOCO_CONFIG_STRING, NULL, "a path", NULL},
    {NULL, 0, NULL, NULL, NULL},
};

static void fail(const char *what, int rc, const char *err) {
    fprintf(stderr, "fuzz_config invariant: %s (rc %d, err \"%s\")\n", what, rc,
            err);
    abort();
}

static void check_err(int rc, const char *err, size_t errlen) {
    if (rc != -EINVAL && rc != -ENOENT && rc != -ENOMEM && rc != -ERANGE)
        fail("unexpected return code", rc, "");
    if (!memchr(err, '\0', errlen))
        fail("error message not NUL-terminated", rc, "");
    if (!err[0])
        fail("error without a message", rc, err);
}

static void read_back(const pyoco_plugin_config *pc) {
    int64_t i;
    double d;
    bool b;
    for (const pyoco_config_key *k = KEYS; k->name; k++) {
        const json_t *j = pyoco_plugin_config_json(pc, k->name);
        (void)pyoco_plugin_config_where(pc, k->name);
        switch (k->type) {
        case PYOCO_CONFIG_STRING:
            (void)pyoco_plugin_config_string(pc, k->name);
            break;
        case PYOCO_CONFIG_INT:
            if (pyoco_plugin_config_int(pc, k->name, &i) != 0)
                fail("bound int does not read back", 0, k->name);
            break;
        case PYOCO_CONFIG_DOUBLE:
            if (pyoco_plugin_config_double(pc, k->name, &d) != 0)
                fail("bound double does not read back", 0, k->name);
            break;
        case PYOCO_CONFIG_BOOL:
            if (pyoco_plugin_config_bool(pc, k->name, &b) != 0)
                fail("bound bool does not read back", 0, k->name);
            break;
        case PYOCO_CONFIG_LIST:
            if (!json_is_array(j))
                fail("bound list is not an array", 0, k->name);
            break;
        case PYOCO_CONFIG_MAP:
            if (!json_is_object(j))
                fail("bound map is not an object", 0, k->name);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    char err[256];
    memset(err, 'Z', sizeof err);
    pyoco_config *cfg = NULL;
    int rc = pyoco_config_parse(text, size, "fuzz.yaml", "/nonexistent/conf",
                                &cfg, err, sizeof err);
    free(text);
    if (rc) {
        check_err(rc, err, sizeof err);
        if (cfg)
            fail("error but a config returned", rc, err);
        return 0;
    }
    const pyoco_server_settings *s = pyoco_config_server(cfg);
    if (!s || !s->host || s->port < 0 || s->port > 65535 || !s->archive_dir)
        fail("server settings", 0, "");
    for (size_t i = 0; i < pyoco_config_path_count(cfg); i++)
        if (!pyoco_config_path(cfg, i) || pyoco_config_path(cfg, i)[0] != '/')
            fail("plugin_path entry not absolute", 0, "");
    size_t n = pyoco_config_plugin_count(cfg);
    for (size_t i = 0; i <= n; i++) {
        size_t idx = i < n ? i : SIZE_MAX;
        const char *name = i < n ? pyoco_config_plugin_name(cfg, i) : "fuzz";
        if (!name)
            fail("plugin without a name", 0, "");
        if (i < n) {
            (void)pyoco_config_plugin_file(cfg, i);
            (void)pyoco_config_plugin_where(cfg, i);
        }
        pyoco_plugin_config *pc = NULL;
        memset(err, 'Z', sizeof err);
        rc = pyoco_config_plugin_bind(cfg, idx, name, KEYS, &pc, err,
                                      sizeof err);
        if (rc) {
            check_err(rc, err, sizeof err);
            if (idx == SIZE_MAX)
                fail("defaults alone do not bind", rc, err);
            continue;
        }
        read_back(pc);
        pyoco_plugin_config_free(pc);
    }
    pyoco_config_free(cfg);
    return 0;
}
