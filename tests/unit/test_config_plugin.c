/* tests/unit/test_config_plugin.c - binding a plugin's pyoco.yaml block to
 * its declared keys: defaults, file values, environment overrides, unknown
 * keys and wrong types (per type), LIST/MAP as JSON, getters, origins. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define NAME "conf/x.yaml"
#define DIR "/srv/pyoco/conf"

static char err[2048];

static const pyoco_config_key keys[] = {
    {"name", PYOCO_CONFIG_STRING, "dflt", "a string", NULL},
    {"count", PYOCO_CONFIG_INT, "3", "an int", "PYOCO_T_COUNT"},
    {"ratio", PYOCO_CONFIG_DOUBLE, "0.5", "a double", "PYOCO_T_RATIO"},
    {"enabled", PYOCO_CONFIG_BOOL, "false", "a bool", "PYOCO_T_ENABLED"},
    {"buckets", PYOCO_CONFIG_LIST, "[0.05, 0.1]", "a list", "PYOCO_T_BUCKETS"},
    {"headers", PYOCO_CONFIG_MAP, NULL, "a map", "PYOCO_T_HEADERS"},
    {"token", PYOCO_CONFIG_STRING, NULL, "unset by default", "PYOCO_T_TOKEN"},
    {NULL, 0, NULL, NULL, NULL},
};

static void clear_env(void) {
    const char *vars[] = {"PYOCO_T_COUNT",   "PYOCO_T_RATIO",
                          "PYOCO_T_ENABLED", "PYOCO_T_BUCKETS",
                          "PYOCO_T_HEADERS", "PYOCO_T_TOKEN"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

static pyoco_config *cfg_of(const char *text) {
    pyoco_config *cfg = NULL;
    int rc = pyoco_config_parse(text, strlen(text), NAME, DIR, &cfg, err,
                                sizeof err);
    if (rc)
        fprintf(stderr, "parse: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    return cfg;
}

/* Binds block 0 of `text` (SIZE_MAX when text is NULL). */
static pyoco_plugin_config *bind_ok(const char *text,
                                    const pyoco_config_key *k) {
    pyoco_config *cfg = text ? cfg_of(text) : pyoco_config_default();
    if (!cfg)
        return NULL;
    pyoco_plugin_config *pc = NULL;
    int rc = pyoco_config_plugin_bind(cfg, text ? 0 : SIZE_MAX, "t", k, &pc,
                                      err, sizeof err);
    if (rc)
        fprintf(stderr, "bind: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    pyoco_config_free(cfg); /* the bound view must not depend on it */
    return pc;
}

static void bind_err(const char *text, const pyoco_config_key *k,
                     const char *want, bool prefix) {
    pyoco_config *cfg = text ? cfg_of(text) : pyoco_config_default();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    pyoco_plugin_config *pc = (pyoco_plugin_config *)1;
    int rc = pyoco_config_plugin_bind(cfg, text ? 0 : SIZE_MAX, "t", k, &pc,
                                      err, sizeof err);
    CU_ASSERT_EQUAL(rc, -EINVAL);
    CU_ASSERT_PTR_NULL(pc);
    bool ok =
        prefix ? strncmp(err, want, strlen(want)) == 0 : strcmp(err, want) == 0;
    if (!ok)
        fprintf(stderr, "\n  want %s: %s\n  got: %s\n",
                prefix ? "prefix" : "exact", want, err);
    CU_ASSERT_TRUE(ok);
    pyoco_config_free(cfg);
}

static char *dump(const json_t *j) {
    return j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS |
                                 JSON_REAL_PRECISION(15))
             : strdup("(null)");
}

static void json_is(const pyoco_plugin_config *pc, const char *key,
                    const char *want) {
    char *got = dump(pyoco_plugin_config_json(pc, key));
    if (strcmp(got, want))
        fprintf(stderr, "\n  %s: want %s got %s\n", key, want, got);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

static void check_defaults(const pyoco_plugin_config *pc) {
    int64_t i = 0;
    double d = 0;
    bool b = true;
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_string(pc, "name"), "dflt");
    CU_ASSERT_EQUAL(pyoco_plugin_config_int(pc, "count", &i), 0);
    CU_ASSERT_EQUAL(i, 3);
    CU_ASSERT_EQUAL(pyoco_plugin_config_double(pc, "ratio", &d), 0);
    CU_ASSERT_DOUBLE_EQUAL(d, 0.5, 1e-12);
    CU_ASSERT_EQUAL(pyoco_plugin_config_bool(pc, "enabled", &b), 0);
    CU_ASSERT_FALSE(b);
    json_is(pc, "buckets", "[0.05,0.1]");
    json_is(pc, "headers", "(null)");
    CU_ASSERT_PTR_NULL(pyoco_plugin_config_string(pc, "token"));
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, "count"), "");
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, "buckets"), "");
}

static void test_defaults(void) {
    clear_env();
    pyoco_plugin_config *pc = bind_ok(NULL, keys); /* no block at all */
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    check_defaults(pc);
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, NULL), "");
    pyoco_plugin_config_free(pc);

    /* a null block and an empty block are all defaults too */
    pc = bind_ok("plugins:\n  t:\n", keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    check_defaults(pc);
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, NULL), NAME ":2");
    pyoco_plugin_config_free(pc);
    pc = bind_ok("plugins:\n\n  t: {}\n", keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    check_defaults(pc);
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, NULL), NAME ":3");
    pyoco_plugin_config_free(pc);

    /* `key:` alone keeps the default */
    pc = bind_ok("plugins:\n  t:\n    count:\n    buckets: ~\n", keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    check_defaults(pc);
    pyoco_plugin_config_free(pc);

    /* no declared keys at all */
    pc = bind_ok("plugins:\n  t: {}\n", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(pyoco_plugin_config_json(pc, "x"));
    pyoco_plugin_config_free(pc);
}

static void test_file_values(void) {
    clear_env();
    pyoco_plugin_config *pc =
        bind_ok("plugins:\n"
                "  t:\n"
                "    name: 42\n"
                "    count: -7\n"
                "    ratio: 2\n"
                "    enabled: yes\n"
                "    buckets: [1, 2.5, \"3\", on, ~, .inf, abc, {a: 1}, []]\n"
                "    headers:\n"
                "      X-A: \"1\"\n"
                "      hex: 0x1F\n"
                "      oct: 0o17\n"
                "      neg: -5\n"
                "      nan: .NaN\n"
                "      empty:\n"
                "      no: NO\n"
                "      big: 123456789012345678901234\n"
                "    token: 's3cret'\n"
                "    file: ../plugins/t.so\n",
                keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    int64_t i = 0;
    double d = 0;
    bool b = false;
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_string(pc, "name"), "42");
    json_is(pc, "name", "\"42\""); /* a STRING key is a JSON string */
    CU_ASSERT_EQUAL(pyoco_plugin_config_int(pc, "count", &i), 0);
    CU_ASSERT_EQUAL(i, -7);
    json_is(pc, "count", "-7");
    CU_ASSERT_EQUAL(pyoco_plugin_config_double(pc, "ratio", &d), 0);
    CU_ASSERT_DOUBLE_EQUAL(d, 2.0, 1e-12);
    json_is(pc, "ratio", "2.0");
    CU_ASSERT_EQUAL(pyoco_plugin_config_bool(pc, "enabled", &b), 0);
    CU_ASSERT_TRUE(b);
    json_is(pc, "enabled", "true");
    json_is(pc, "buckets",
            "[1,2.5,\"3\",true,null,\".inf\",\"abc\",{\"a\":1},[]]");
    json_is(pc, "headers",
            "{\"X-A\":\"1\",\"big\":1.23456789012346e23,\"empty\":null,"
            "\"hex\":31,\"nan\":\".NaN\",\"neg\":-5,\"no\":false,\"oct\":15}");
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_string(pc, "token"), "s3cret");
    /* `file` is the core's: never visible to the plugin */
    CU_ASSERT_PTR_NULL(pyoco_plugin_config_json(pc, "file"));
    CU_ASSERT_PTR_NULL(pyoco_plugin_config_where(pc, "file"));
    /* origins */
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, NULL), NAME ":2");
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, "name"), NAME ":3");
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, "headers"), NAME ":8");
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, "token"), NAME ":17");
    pyoco_plugin_config_free(pc);

    /* the file key resolves against the config's folder */
    pyoco_config *cfg =
        cfg_of("plugins:\n  t:\n    file: ../plugins/t.so\n  u: {}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(pyoco_config_plugin_file(cfg, 0),
                           "/srv/pyoco/plugins/t.so");
    CU_ASSERT_PTR_NULL(pyoco_config_plugin_file(cfg, 1));
    pyoco_config_free(cfg);
}

static void test_getters(void) {
    clear_env();
    pyoco_plugin_config *pc = bind_ok(NULL, keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    int64_t i;
    double d;
    bool b;
    /* another type's getter: -EINVAL (even for DOUBLE vs INT) */
    CU_ASSERT_EQUAL(pyoco_plugin_config_int(pc, "ratio", &i), -EINVAL);
    CU_ASSERT_EQUAL(pyoco_plugin_config_double(pc, "count", &d), -EINVAL);
    CU_ASSERT_EQUAL(pyoco_plugin_config_bool(pc, "name", &b), -EINVAL);
    CU_ASSERT_EQUAL(pyoco_plugin_config_int(pc, "buckets", &i), -EINVAL);
    CU_ASSERT_PTR_NULL(pyoco_plugin_config_string(pc, "count"));
    /* undeclared and unset: -ENOENT / NULL */
    CU_ASSERT_EQUAL(pyoco_plugin_config_int(pc, "nope", &i), -ENOENT);
    CU_ASSERT_PTR_NULL(pyoco_plugin_config_string(pc, "nope"));
    CU_ASSERT_PTR_NULL(pyoco_plugin_config_json(pc, "nope"));
    CU_ASSERT_PTR_NULL(pyoco_plugin_config_where(pc, "nope"));
    static const pyoco_config_key unset[] = {
        {"i", PYOCO_CONFIG_INT, NULL, NULL, NULL},
        {"d", PYOCO_CONFIG_DOUBLE, NULL, NULL, NULL},
        {"b", PYOCO_CONFIG_BOOL, NULL, NULL, NULL},
        {"s", PYOCO_CONFIG_STRING, "", NULL, NULL},
        {NULL, 0, NULL, NULL, NULL},
    };
    pyoco_plugin_config *pu = bind_ok(NULL, unset);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pu);
    CU_ASSERT_EQUAL(pyoco_plugin_config_int(pu, "i", &i), -ENOENT);
    CU_ASSERT_EQUAL(pyoco_plugin_config_double(pu, "d", &d), -ENOENT);
    CU_ASSERT_EQUAL(pyoco_plugin_config_bool(pu, "b", &b), -ENOENT);
    CU_ASSERT_PTR_NULL(pyoco_plugin_config_json(pu, "i"));
    /* an empty string default is the empty string, not unset */
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_string(pu, "s"), "");
    pyoco_plugin_config_free(pu);
    pyoco_plugin_config_free(pc);
    pyoco_plugin_config_free(NULL);
}

static void test_unknown_and_types(void) {
    clear_env();
    bind_err("plugins:\n  t:\n    colour: red\n", keys,
             NAME ":3: plugins.t.colour: unknown key (known: name, count, "
                  "ratio, enabled, buckets, headers, token)",
             false);
    bind_err("plugins:\n  t:\n    x: 1\n", NULL,
             NAME ":3: plugins.t.x: unknown key (known: none)", false);
    struct {
        const char *yaml, *want;
    } cases[] = {
        {"count: abc", "count: expected an integer, got \"abc\""},
        {"count: 1.5", "count: expected an integer, got \"1.5\""},
        {"count: '3'", "count: expected an integer, got \"3\""},
        {"count: [3]", "count: expected an integer, got a list"},
        {"ratio: \"0.5\"", "ratio: expected a number, got \"0.5\""},
        {"ratio: yes", "ratio: expected a number, got \"yes\""},
        {"enabled: 1", "enabled: expected a boolean, got \"1\""},
        {"enabled: 'true'", "enabled: expected a boolean, got \"true\""},
        {"buckets: 5", "buckets: expected a list, got \"5\""},
        {"buckets: {a: 1}", "buckets: expected a list, got a mapping"},
        {"headers: [1]", "headers: expected a mapping, got a list"},
        {"headers: x", "headers: expected a mapping, got \"x\""},
        {"name: [a]", "name: expected a string, got a list"},
        {"name: {a: b}", "name: expected a string, got a mapping"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[256], want[256];
        snprintf(text, sizeof text, "plugins:\n  t:\n    token: ok\n    %s\n",
                 cases[i].yaml);
        snprintf(want, sizeof want, NAME ":4: plugins.t.%s", cases[i].want);
        bind_err(text, keys, want, false);
    }
    /* the value's own line when it sits below its key */
    bind_err("plugins:\n  t:\n    count:\n      - 1\n", keys,
             NAME ":4: plugins.t.count: expected an integer, got a list",
             false);
}

static void test_env(void) {
    clear_env();
    const char *file = "plugins:\n  t:\n    count: 5\n    enabled: no\n"
                       "    buckets: [9]\n    token: from_file\n";
    setenv("PYOCO_T_COUNT", "42", 1);
    setenv("PYOCO_T_RATIO", "1e-3", 1);
    setenv("PYOCO_T_ENABLED", "on", 1);
    setenv("PYOCO_T_BUCKETS", "[1, 2, x]", 1);
    setenv("PYOCO_T_HEADERS", "{Authorization: Bearer x, n: 1}", 1);
    setenv("PYOCO_T_TOKEN", "a: b # not a comment", 1);
    pyoco_plugin_config *pc = bind_ok(file, keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    int64_t i = 0;
    double d = 0;
    bool b = false;
    CU_ASSERT_EQUAL(pyoco_plugin_config_int(pc, "count", &i), 0);
    CU_ASSERT_EQUAL(i, 42);
    CU_ASSERT_EQUAL(pyoco_plugin_config_double(pc, "ratio", &d), 0);
    CU_ASSERT_DOUBLE_EQUAL(d, 0.001, 1e-12);
    CU_ASSERT_EQUAL(pyoco_plugin_config_bool(pc, "enabled", &b), 0);
    CU_ASSERT_TRUE(b);
    json_is(pc, "buckets", "[1,2,\"x\"]");
    json_is(pc, "headers", "{\"Authorization\":\"Bearer x\",\"n\":1}");
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_string(pc, "token"),
                           "a: b # not a comment");
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, "count"),
                           "environment PYOCO_T_COUNT");
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, "name"), "");
    pyoco_plugin_config_free(pc);

    /* env applies without a block too (`pyoco plugins list`) */
    pc = bind_ok(NULL, keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_EQUAL(pyoco_plugin_config_int(pc, "count", &i), 0);
    CU_ASSERT_EQUAL(i, 42);
    pyoco_plugin_config_free(pc);

    /* empty means unset: the file wins again */
    clear_env();
    setenv("PYOCO_T_COUNT", "", 1);
    pc = bind_ok(file, keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_EQUAL(pyoco_plugin_config_int(pc, "count", &i), 0);
    CU_ASSERT_EQUAL(i, 5);
    CU_ASSERT_STRING_EQUAL(pyoco_plugin_config_where(pc, "count"), NAME ":3");
    pyoco_plugin_config_free(pc);

    /* bad values */
    setenv("PYOCO_T_COUNT", "x", 1);
    bind_err(file, keys,
             "environment PYOCO_T_COUNT: expected an integer, got \"x\"",
             false);
    clear_env();
    setenv("PYOCO_T_ENABLED", "maybe", 1);
    bind_err(NULL, keys,
             "environment PYOCO_T_ENABLED: expected a boolean, got \"maybe\"",
             false);
    clear_env();
    setenv("PYOCO_T_BUCKETS", "[1, 2", 1);
    bind_err(file, keys,
             "environment PYOCO_T_BUCKETS: YAML syntax error: ", true);
    setenv("PYOCO_T_BUCKETS", "5", 1);
    bind_err(file, keys,
             "environment PYOCO_T_BUCKETS: expected a list, got \"5\"", false);
    clear_env();
    setenv("PYOCO_T_HEADERS", "{a: 1, a: 2}", 1);
    bind_err(file, keys, "environment PYOCO_T_HEADERS: a: duplicate key",
             false);
    clear_env();
}

static void test_bad_declarations(void) {
    clear_env();
    static const pyoco_config_key bad_default[] = {
        {"x", PYOCO_CONFIG_INT, "abc", NULL, NULL},
        {NULL, 0, NULL, NULL, NULL},
    };
    bind_err(NULL, bad_default, "plugin t: bad default for key x", true);
    static const pyoco_config_key bad_list[] = {
        {"l", PYOCO_CONFIG_LIST, "[1, 2", NULL, NULL},
        {NULL, 0, NULL, NULL, NULL},
    };
    bind_err("plugins:\n  t: {}\n", bad_list, "plugin t: bad default for key l",
             true);
    static const pyoco_config_key reserved[] = {
        {"file", PYOCO_CONFIG_STRING, NULL, NULL, NULL},
        {NULL, 0, NULL, NULL, NULL},
    };
    bind_err(NULL, reserved, "plugin t: bad declaration of key 'file'", true);
    static const pyoco_config_key twice[] = {
        {"a", PYOCO_CONFIG_INT, NULL, NULL, NULL},
        {"a", PYOCO_CONFIG_BOOL, NULL, NULL, NULL},
        {NULL, 0, NULL, NULL, NULL},
    };
    bind_err(NULL, twice, "plugin t: bad declaration of key 'a'", true);
    static const pyoco_config_key badtype[] = {
        {"a", (pyoco_config_type)99, NULL, NULL, NULL},
        {NULL, 0, NULL, NULL, NULL},
    };
    bind_err(NULL, badtype, "plugin t: bad declaration of key 'a'", true);

    /* a block index past the end */
    pyoco_config *cfg = cfg_of("plugins:\n  t: {}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    pyoco_plugin_config *pc = NULL;
    CU_ASSERT_EQUAL(
        pyoco_config_plugin_bind(cfg, 1, "t", keys, &pc, err, sizeof err),
        -EINVAL);
    CU_ASSERT_PTR_NULL(pc);
    pyoco_config_free(cfg);
}

static void test_hostile(void) {
    clear_env();
    /* an alias bomb: 10^9 nodes if expanded naively */
    const char *bomb = "plugins:\n  t:\n    buckets: &a9 [*a8, *a8, *a8, *a8, "
                       "*a8, *a8, *a8, *a8, *a8, *a8]\n";
    char text[4096], *p = text;
    p += sprintf(p, "x0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n");
    for (int l = 1; l < 9; l++)
        p += sprintf(p,
                     "x%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                     "*a%d, *a%d, *a%d]\n",
                     l, l, l - 1, l - 1, l - 1, l - 1, l - 1, l - 1, l - 1,
                     l - 1, l - 1, l - 1);
    /* the anchors live under a plugin block, so the file stays valid */
    char full[8192];
    snprintf(full, sizeof full, "plugins:\n  t:\n    headers:\n");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        strcat(full, "      ");
        strcat(full, line);
        strcat(full, "\n");
    }
    strcat(full, bomb + strlen("plugins:\n  t:\n"));
    bind_err(full, keys, NAME ":", true);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "value too large or nested too deep"));

    /* a big list is fine */
    size_t n = 20000, cap = n * 8 + 64;
    char *big = malloc(cap);
    p = big + sprintf(big, "plugins:\n  t:\n    buckets: [");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%zu,", i);
    strcpy(p, "]\n");
    pyoco_plugin_config *pc = bind_ok(big, keys);
    CU_ASSERT_PTR_NOT_NULL(pc);
    if (pc) {
        CU_ASSERT_EQUAL(
            json_array_size(pyoco_plugin_config_json(pc, "buckets")), n);
        pyoco_plugin_config_free(pc);
    }
    free(big);

    /* deep nesting in a default and in env */
    static const pyoco_config_key deep[] = {
        {"l", PYOCO_CONFIG_LIST,
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
         "[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
         "]]]]]]]",
         NULL, "PYOCO_T_DEEP"},
        {NULL, 0, NULL, NULL, NULL},
    };
    bind_err(NULL, deep, "plugin t: bad default for key l", true);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nested deeper than 64 levels"));
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("config_plugin", NULL, NULL);
    CU_add_test(s, "defaults, null and empty blocks", test_defaults);
    CU_add_test(s, "file values, JSON typing, file key, origins",
                test_file_values);
    CU_add_test(s, "getters: wrong type, unset, undeclared", test_getters);
    CU_add_test(s, "unknown keys and wrong types", test_unknown_and_types);
    CU_add_test(s, "environment overrides", test_env);
    CU_add_test(s, "bad declarations and defaults", test_bad_declarations);
    CU_add_test(s, "alias bombs, big and deep values", test_hostile);
}
