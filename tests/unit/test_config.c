/* tests/unit/test_config.c - pyoco.yaml parsing: defaults, every core key,
 * every error kind with its exact file:line and key, environment
 * overrides, plugin_path resolution, plugin block listing, and hostile
 * input (deep nesting, huge values, bad bytes). */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define NAME "conf/x.yaml"
#define DIR "/etc/pyoco/conf"

static char err[2048];

static pyoco_config *parse_ok(const char *text) {
    pyoco_config *cfg = NULL;
    err[0] = '\0';
    int rc = pyoco_config_parse(text, strlen(text), NAME, DIR, &cfg, err,
                                sizeof err);
    if (rc)
        fprintf(stderr, "unexpected error: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(cfg);
    return cfg;
}

/* Expects -EINVAL and exactly `want` (or a prefix when `prefix`). */
static void parse_err(const char *text, const char *want, bool prefix) {
    pyoco_config *cfg = (pyoco_config *)1;
    int rc = pyoco_config_parse(text, strlen(text), NAME, DIR, &cfg, err,
                                sizeof err);
    CU_ASSERT_EQUAL(rc, -EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    bool ok =
        prefix ? strncmp(err, want, strlen(want)) == 0 : strcmp(err, want) == 0;
    if (!ok)
        fprintf(stderr, "\n  want %s: %s\n  got: %s\n",
                prefix ? "prefix" : "exact", want, err);
    CU_ASSERT_TRUE(ok);
}

static void clear_env(void) {
    unsetenv("PYOCO_MAX_RUN_HISTORY");
    unsetenv("PYOCO_RUN_ARCHIVE_DIR");
    unsetenv("PYOCO_MAX_LOG_BYTES");
}

static void check_defaults(const pyoco_server_settings *s) {
    CU_ASSERT_STRING_EQUAL(s->host, "0.0.0.0");
    CU_ASSERT_EQUAL(s->port, 8000);
    CU_ASSERT_EQUAL(s->max_body_bytes, 1048576);
    CU_ASSERT_EQUAL(s->max_header_bytes, 65536);
    CU_ASSERT_DOUBLE_EQUAL(s->read_timeout, 30, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->idle_timeout, 60, 1e-9);
    CU_ASSERT_EQUAL(s->max_connections, 4096);
    CU_ASSERT_DOUBLE_EQUAL(s->drain_timeout, 10, 1e-9);
    CU_ASSERT_EQUAL(s->max_run_history, 50);
    CU_ASSERT_STRING_EQUAL(s->archive_dir, "artifacts/runs");
    CU_ASSERT_EQUAL(s->max_log_bytes, 1048576);
}

static void test_defaults(void) {
    clear_env();
    pyoco_config *cfg = pyoco_config_default();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    check_defaults(pyoco_config_server(cfg));
    CU_ASSERT_EQUAL(pyoco_config_path_count(cfg), 0);
    CU_ASSERT_EQUAL(pyoco_config_plugin_count(cfg), 0);
    pyoco_config_free(cfg);

    const char *empties[] = {"", "# only a comment\n\n", "~\n", "---\n",
                             "server:\nregistry:\nplugins:\nplugin_path:\n"};
    for (size_t i = 0; i < sizeof empties / sizeof *empties; i++) {
        cfg = parse_ok(empties[i]);
        if (!cfg)
            continue;
        check_defaults(pyoco_config_server(cfg));
        CU_ASSERT_EQUAL(pyoco_config_path_count(cfg), 0);
        CU_ASSERT_EQUAL(pyoco_config_plugin_count(cfg), 0);
        pyoco_config_free(cfg);
    }
}

static void test_all_core_keys(void) {
    clear_env();
    pyoco_config *cfg = parse_ok("server:\n"
                                 "  host: 127.0.0.1\n"
                                 "  port: 0\n"
                                 "  max_body_bytes: 2048\n"
                                 "  max_header_bytes: 0x400\n"
                                 "  read_timeout: 2.5\n"
                                 "  idle_timeout: 7\n"
                                 "  max_connections: 16\n"
                                 "  drain_timeout: 0\n"
                                 "registry:\n"
                                 "  max_run_history: 3\n"
                                 "  archive_dir: 'runs dir'\n"
                                 "  max_log_bytes: 100\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    const pyoco_server_settings *s = pyoco_config_server(cfg);
    CU_ASSERT_STRING_EQUAL(s->host, "127.0.0.1");
    CU_ASSERT_EQUAL(s->port, 0);
    CU_ASSERT_EQUAL(s->max_body_bytes, 2048);
    CU_ASSERT_EQUAL(s->max_header_bytes, 1024);
    CU_ASSERT_DOUBLE_EQUAL(s->read_timeout, 2.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->idle_timeout, 7, 1e-9);
    CU_ASSERT_EQUAL(s->max_connections, 16);
    CU_ASSERT_DOUBLE_EQUAL(s->drain_timeout, 0, 1e-9);
    CU_ASSERT_EQUAL(s->max_run_history, 3);
    CU_ASSERT_STRING_EQUAL(s->archive_dir, "runs dir");
    CU_ASSERT_EQUAL(s->max_log_bytes, 100);
    /* --host / --port overrides */
    CU_ASSERT_EQUAL(pyoco_config_set_host(cfg, "::1"), 0);
    pyoco_config_server_mut(cfg)->port = 9;
    CU_ASSERT_STRING_EQUAL(pyoco_config_server(cfg)->host, "::1");
    CU_ASSERT_EQUAL(pyoco_config_server(cfg)->port, 9);
    pyoco_config_free(cfg);

    /* A STRING key takes any scalar's text; `key:` alone keeps the default. */
    cfg = parse_ok("server:\n  host: 1234\n  port:\n  read_timeout: ~\n");
    if (cfg) {
        CU_ASSERT_STRING_EQUAL(pyoco_config_server(cfg)->host, "1234");
        CU_ASSERT_EQUAL(pyoco_config_server(cfg)->port, 8000);
        CU_ASSERT_DOUBLE_EQUAL(pyoco_config_server(cfg)->read_timeout, 30,
                               1e-9);
        pyoco_config_free(cfg);
    }
}

static void test_file_errors(void) {
    pyoco_config *cfg = (pyoco_config *)1;
    int rc =
        pyoco_config_load("/nonexistent/dir/x.yaml", &cfg, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -ENOENT);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_STRING_EQUAL(
        err, "/nonexistent/dir/x.yaml: cannot open: No such file or directory");

    /* A directory opens but cannot be read. */
    rc = pyoco_config_load("/tmp", &cfg, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_STRING_EQUAL(err, "/tmp: cannot read: Is a directory");
}

static void test_syntax_errors(void) {
    parse_err("server:\n  port: 1\n  host: [a, b\n",
              NAME ":4: YAML syntax error: ", true);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "(column "));
    parse_err("server:\n  port: 1\n bad: 2\n",
              NAME ":3: YAML syntax error: ", true);
    parse_err("a: 'unterminated\n", NAME ":2: YAML syntax error: ", true);
    /* invalid UTF-8 is a YAML error, not a crash */
    parse_err("server:\n  host: \xff\xfe\n", NAME ":", true);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "YAML syntax error"));
    parse_err("server: {}\n---\nserver: {}\n",
              NAME ":2: more than one YAML document", false);
}

static void test_structure_errors(void) {
    parse_err("- a\n- b\n",
              NAME ":1: the top level must be a mapping, got a list", false);
    parse_err("just text\n",
              NAME ":1: the top level must be a mapping, got a scalar", false);
    parse_err("server:\n  port: 1\nsever: 2\n", NAME ":3: unknown key 'sever'",
              true);
    parse_err("server:\n  prot: 1\n",
              NAME ":2: server.prot: unknown key (known: host, port, "
                   "max_body_bytes, max_header_bytes, read_timeout, "
                   "idle_timeout, max_connections, drain_timeout)",
              false);
    parse_err("registry:\n  history: 1\n",
              NAME ":2: registry.history: unknown key (known: "
                   "max_run_history, archive_dir, max_log_bytes, "
                   "assignment_lease, heartbeat_timeout)",
              false);
    parse_err("server: [1]\n",
              NAME ":1: server: expected a mapping, got a list", false);
    parse_err("registry: 5\n",
              NAME ":1: registry: expected a mapping, got a scalar", false);
    parse_err("? [a]\n: 1\n", NAME ":1: mapping keys must be scalars", false);
}

static void test_type_errors(void) {
    parse_err("# x\n\nserver:\n  port: abc\n",
              NAME ":4: server.port: expected an integer, got \"abc\"", false);
    /* quoted scalars are strings, even when they look like numbers */
    parse_err("server:\n  port: \"8000\"\n",
              NAME ":2: server.port: expected an integer, got \"8000\"", false);
    parse_err("server:\n  port: 1.5\n",
              NAME ":2: server.port: expected an integer, got \"1.5\"", false);
    parse_err("server:\n  read_timeout: yes\n",
              NAME ":2: server.read_timeout: expected a number, got \"yes\"",
              false);
    parse_err("server:\n  host: [a]\n",
              NAME ":2: server.host: expected a string, got a list", false);
    parse_err("registry:\n  max_log_bytes: {a: 1}\n",
              NAME ":2: registry.max_log_bytes: expected an integer, got a "
                   "mapping",
              false);
    parse_err("server:\n  port:\n    - 1\n",
              NAME ":3: server.port: expected an integer, got a list", false);
    /* quotes and control characters are escaped in the message */
    parse_err("server:\n  port: 'a\"b\\tc'\n",
              NAME ":2: server.port: expected an integer, got \"a\\\"b\\\\tc\"",
              false);
}

static void test_range_errors(void) {
    parse_err("server:\n  port: 70000\n",
              NAME ":2: server.port: out of range (0..65535), got 70000",
              false);
    parse_err("server:\n  port: -1\n",
              NAME ":2: server.port: out of range (0..65535), got -1", false);
    parse_err("server:\n  max_body_bytes: 0\n",
              NAME ":2: server.max_body_bytes: out of range (>= 1), got 0",
              false);
    parse_err("server:\n  read_timeout: 0\n",
              NAME ":2: server.read_timeout: out of range (> 0), got 0", false);
    parse_err("server:\n  idle_timeout: -.inf\n",
              NAME ":2: server.idle_timeout: out of range (> 0), got -inf",
              false);
    parse_err("server:\n  drain_timeout: .nan\n",
              NAME ":2: server.drain_timeout: out of range (>= 0), got nan",
              false);
    parse_err("server:\n  max_connections: 99999999999\n",
              NAME ":2: server.max_connections: out of range (1..2147483647), "
                   "got 99999999999",
              false);
    parse_err("registry:\n  max_run_history: 0\n",
              NAME ":2: registry.max_run_history: out of range (>= 1), got 0",
              false);
    parse_err("registry:\n  archive_dir: ''\n",
              NAME ":2: registry.archive_dir: must not be empty", false);
    /* beyond int64: a number, but not an integer */
    parse_err("registry:\n  max_log_bytes: 99999999999999999999\n",
              NAME ":2: registry.max_log_bytes: expected an integer, got "
                   "\"99999999999999999999\"",
              false);
}

static void test_duplicates(void) {
    parse_err("server: {}\nserver: {}\n", NAME ":2: server: duplicate key",
              false);
    parse_err("server:\n  port: 1\n  port: 2\n",
              NAME ":3: server.port: duplicate key", false);
    parse_err("plugins:\n  rest: {}\n  rest:\n",
              NAME ":3: plugins.rest: duplicate key", false);
    parse_err("plugins:\n  p:\n    m: {a: 1, b: [{c: 1, c: 2}]}\n",
              NAME ":3: plugins.p.m.b[0].c: duplicate key", false);
}

static void test_plugin_blocks(void) {
    pyoco_config *cfg = parse_ok("plugins:\n"
                                 "  rest: {}\n"
                                 "  zeta:\n"
                                 "  prometheus:\n"
                                 "    buckets: [0.05, 0.1]\n"
                                 "  my_plugin2:\n"
                                 "    file: ../lib/./my.so\n"
                                 "  abs:\n"
                                 "    file: /opt/x/abs.so\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(pyoco_config_plugin_count(cfg), 5);
    const char *names[] = {"rest", "zeta", "prometheus", "my_plugin2", "abs"};
    const char *wheres[] = {NAME ":2", NAME ":3", NAME ":4", NAME ":6",
                            NAME ":8"};
    for (size_t i = 0; i < 5; i++) {
        CU_ASSERT_STRING_EQUAL(pyoco_config_plugin_name(cfg, i), names[i]);
        CU_ASSERT_STRING_EQUAL(pyoco_config_plugin_where(cfg, i), wheres[i]);
    }
    CU_ASSERT_PTR_NULL(pyoco_config_plugin_file(cfg, 0));
    CU_ASSERT_PTR_NULL(pyoco_config_plugin_file(cfg, 1));
    CU_ASSERT_STRING_EQUAL(pyoco_config_plugin_file(cfg, 3),
                           "/etc/pyoco/lib/my.so");
    CU_ASSERT_STRING_EQUAL(pyoco_config_plugin_file(cfg, 4), "/opt/x/abs.so");
    CU_ASSERT_PTR_NULL(pyoco_config_plugin_name(cfg, 5));
    pyoco_config_free(cfg);

    parse_err("plugins: [rest]\n",
              NAME ":1: plugins: expected a mapping of plugin blocks, got a "
                   "list",
              false);
    parse_err("plugins:\n  rest: yes\n",
              NAME ":2: plugins.rest: expected a mapping or nothing, got "
                   "\"yes\"",
              false);
    parse_err("plugins:\n  rest: [a]\n",
              NAME ":2: plugins.rest: expected a mapping or nothing, got a "
                   "list",
              false);
    parse_err("plugins:\n  Rest: {}\n",
              NAME ":2: plugins.Rest: a plugin name must match [a-z0-9_]+",
              true);
    parse_err("plugins:\n  my-plugin: {}\n",
              NAME ":2: plugins.my-plugin: a plugin name must match", true);
    parse_err("plugins:\n  x:\n    file: [a]\n",
              NAME ":3: plugins.x.file: expected a non-empty path, got a list",
              false);
    parse_err("plugins:\n  x:\n    file: ''\n",
              NAME ":3: plugins.x.file: expected a non-empty path, got an "
                   "empty value",
              false);
}

static void test_plugin_path(void) {
    pyoco_config *cfg = parse_ok("plugin_path: ../build/plugins\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(pyoco_config_path_count(cfg), 1);
    CU_ASSERT_STRING_EQUAL(pyoco_config_path(cfg, 0),
                           "/etc/pyoco/build/plugins");
    CU_ASSERT_PTR_NULL(pyoco_config_path(cfg, 1));
    pyoco_config_free(cfg);

    cfg = parse_ok("plugin_path:\n  - plugins\n  - /usr/lib/pyoco//x/\n"
                   "  - ./a/../b\n  - ../../../..\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(pyoco_config_path_count(cfg), 4);
    CU_ASSERT_STRING_EQUAL(pyoco_config_path(cfg, 0),
                           "/etc/pyoco/conf/plugins");
    CU_ASSERT_STRING_EQUAL(pyoco_config_path(cfg, 1), "/usr/lib/pyoco/x");
    CU_ASSERT_STRING_EQUAL(pyoco_config_path(cfg, 2), "/etc/pyoco/conf/b");
    CU_ASSERT_STRING_EQUAL(pyoco_config_path(cfg, 3), "/");
    pyoco_config_free(cfg);

    parse_err("plugin_path: {a: b}\n",
              NAME ":1: plugin_path: expected a string or a list, got a "
                   "mapping",
              false);
    parse_err("plugin_path:\n  - a\n  - [b]\n",
              NAME ":3: plugin_path[1]: expected a non-empty path, got a list",
              false);
    parse_err("plugin_path:\n  - a\n  - ~\n",
              NAME ":3: plugin_path[1]: expected a non-empty path, got an "
                   "empty value",
              false);

    /* A relative `dir` is made absolute against the working directory. */
    char cwd[4096];
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
    cfg = NULL;
    CU_ASSERT_EQUAL(pyoco_config_parse("plugin_path: p\n", 15, "x.yaml", "sub",
                                       &cfg, err, sizeof err),
                    0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    char want[4200];
    snprintf(want, sizeof want, "%s/sub/p", strcmp(cwd, "/") ? cwd : "");
    CU_ASSERT_STRING_EQUAL(pyoco_config_path(cfg, 0), want);
    pyoco_config_free(cfg);
}

/* pyoco_config_load: relative entries resolve against the file's folder. */
static void test_load_file(void) {
    clear_env();
    char dir[] = "/tmp/pyoco_cfg_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char sub[64], path[128];
    snprintf(sub, sizeof sub, "%s/conf", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/pyoco.yaml", sub);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("server:\n  port: 0\nplugin_path: ../build/plugins\nplugins:\n"
          "  rest:\n  mine: {file: ../x/mine.so}\n",
          f);
    fclose(f);
    pyoco_config *cfg = NULL;
    int rc = pyoco_config_load(path, &cfg, err, sizeof err);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    char want[400];
    snprintf(want, sizeof want, "%s/conf", dir);
    CU_ASSERT_STRING_EQUAL(pyoco_config_dir(cfg), want);
    CU_ASSERT_STRING_EQUAL(pyoco_config_name(cfg), path);
    snprintf(want, sizeof want, "%s/build/plugins", dir);
    CU_ASSERT_STRING_EQUAL(pyoco_config_path(cfg, 0), want);
    snprintf(want, sizeof want, "%s/x/mine.so", dir);
    CU_ASSERT_STRING_EQUAL(pyoco_config_plugin_file(cfg, 1), want);
    snprintf(want, sizeof want, "%s:5", path);
    CU_ASSERT_STRING_EQUAL(pyoco_config_plugin_where(cfg, 0), want);
    CU_ASSERT_EQUAL(pyoco_config_server(cfg)->port, 0);
    pyoco_config_free(cfg);

    /* errors in a loaded file name the path as given */
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("server:\n  port: nope\n", f);
    fclose(f);
    cfg = (pyoco_config *)1;
    rc = pyoco_config_load(path, &cfg, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    snprintf(want, sizeof want,
             "%s:2: server.port: expected an integer, got \"nope\"", path);
    CU_ASSERT_STRING_EQUAL(err, want);

    /* an empty file: every default */
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    rc = pyoco_config_load(path, &cfg, err, sizeof err);
    CU_ASSERT_EQUAL(rc, 0);
    if (cfg)
        check_defaults(pyoco_config_server(cfg));
    pyoco_config_free(cfg);

    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

static void test_env(void) {
    clear_env();
    const char *file = "registry:\n  max_run_history: 3\n"
                       "  archive_dir: file_dir\n  max_log_bytes: 10\n";
    setenv("PYOCO_MAX_RUN_HISTORY", "7", 1);
    setenv("PYOCO_RUN_ARCHIVE_DIR", "/tmp/a: b", 1); /* taken verbatim */
    setenv("PYOCO_MAX_LOG_BYTES", "0x10", 1);
    pyoco_config *cfg = parse_ok(file);
    if (cfg) {
        const pyoco_server_settings *s = pyoco_config_server(cfg);
        CU_ASSERT_EQUAL(s->max_run_history, 7);
        CU_ASSERT_STRING_EQUAL(s->archive_dir, "/tmp/a: b");
        CU_ASSERT_EQUAL(s->max_log_bytes, 16);
        pyoco_config_free(cfg);
    }
    /* empty variables are ignored: the file wins */
    setenv("PYOCO_MAX_RUN_HISTORY", "", 1);
    setenv("PYOCO_RUN_ARCHIVE_DIR", "", 1);
    unsetenv("PYOCO_MAX_LOG_BYTES");
    cfg = parse_ok(file);
    if (cfg) {
        CU_ASSERT_EQUAL(pyoco_config_server(cfg)->max_run_history, 3);
        CU_ASSERT_STRING_EQUAL(pyoco_config_server(cfg)->archive_dir,
                               "file_dir");
        CU_ASSERT_EQUAL(pyoco_config_server(cfg)->max_log_bytes, 10);
        pyoco_config_free(cfg);
    }
    /* bad values */
    setenv("PYOCO_MAX_LOG_BYTES", "x", 1);
    parse_err(file,
              "environment PYOCO_MAX_LOG_BYTES: expected an integer, got "
              "\"x\"",
              false);
    setenv("PYOCO_MAX_LOG_BYTES", "5 ", 1);
    parse_err("",
              "environment PYOCO_MAX_LOG_BYTES: expected an integer, "
              "got \"5 \"",
              false);
    unsetenv("PYOCO_MAX_LOG_BYTES");
    setenv("PYOCO_MAX_RUN_HISTORY", "0", 1);
    parse_err("",
              "environment PYOCO_MAX_RUN_HISTORY: out of range (>= 1), "
              "got 0",
              false);
    /* apply_env on a default config (no file) */
    setenv("PYOCO_MAX_RUN_HISTORY", "12", 1);
    cfg = pyoco_config_default();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(pyoco_config_server(cfg)->max_run_history, 50);
    CU_ASSERT_EQUAL(pyoco_config_apply_env(cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(pyoco_config_server(cfg)->max_run_history, 12);
    setenv("PYOCO_MAX_RUN_HISTORY", "many", 1);
    CU_ASSERT_EQUAL(pyoco_config_apply_env(cfg, err, sizeof err), -EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "environment PYOCO_MAX_RUN_HISTORY: expected "
                                "an integer, got \"many\"");
    pyoco_config_free(cfg);
    clear_env();
}

static char *repeat(const char *a, size_t n, const char *mid, const char *b) {
    size_t la = strlen(a), lb = strlen(b), lm = strlen(mid);
    char *s = malloc(la * n + lm + lb * n + 1), *p = s;
    for (size_t i = 0; i < n; i++, p += la)
        memcpy(p, a, la);
    memcpy(p, mid, lm);
    p += lm;
    for (size_t i = 0; i < n; i++, p += lb)
        memcpy(p, b, lb);
    *p = '\0';
    return s;
}

static void test_hostile(void) {
    clear_env();
    /* deep flow nesting */
    char *deep = repeat("[", 100000, "1", "]");
    char *text = malloc(strlen(deep) + 64);
    sprintf(text, "plugins:\n  p:\n    k: %s\n", deep);
    parse_err(text, NAME ":3: plugins.p.k", true);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nested deeper than 64 levels"));
    free(text);
    free(deep);
    /* deep block nesting through mappings */
    deep = repeat("{a: ", 5000, "1", "}");
    text = malloc(strlen(deep) + 32);
    sprintf(text, "server: %s\n", deep);
    parse_err(text, NAME ":1: server.a.a.a", true);
    free(text);
    free(deep);
    /* a huge scalar is fine where a string goes ... */
    size_t big = 4u << 20;
    text = malloc(big + 64);
    char *p = text + sprintf(text, "server:\n  host: ");
    memset(p, 'h', big);
    strcpy(p + big, "\n");
    pyoco_config *cfg = parse_ok(text);
    if (cfg) {
        CU_ASSERT_EQUAL(strlen(pyoco_config_server(cfg)->host), big);
        pyoco_config_free(cfg);
    }
    /* ... and cut short in a message where it does not belong */
    memcpy(text, "server:\n  port: ", 16);
    parse_err(text, NAME ":2: server.port: expected an integer, got \"hhh",
              true);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "...\""));
    CU_ASSERT_TRUE(strlen(err) < 200);
    free(text);
    /* many plugin blocks */
    size_t n = 2000;
    text = malloc(n * 16 + 16);
    p = text + sprintf(text, "plugins:\n");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "  p%zu: {}\n", i);
    cfg = parse_ok(text);
    if (cfg) {
        CU_ASSERT_EQUAL(pyoco_config_plugin_count(cfg), n);
        CU_ASSERT_STRING_EQUAL(pyoco_config_plugin_name(cfg, n - 1), "p1999");
        pyoco_config_free(cfg);
    }
    free(text);
    /* a NUL byte in a key (via an escape) is no crash */
    parse_err("\"serv\\0er\": 1\n", NAME ":1: unknown key 'serv'", true);
    /* a tiny error buffer is still terminated */
    char small[8];
    cfg = NULL;
    CU_ASSERT_EQUAL(
        pyoco_config_parse("x: 1", 4, NAME, DIR, &cfg, small, sizeof small),
        -EINVAL);
    CU_ASSERT_EQUAL(strlen(small), 7);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    CU_add_test(s, "defaults and empty files", test_defaults);
    CU_add_test(s, "every core key", test_all_core_keys);
    CU_add_test(s, "missing and unreadable file", test_file_errors);
    CU_add_test(s, "YAML syntax errors", test_syntax_errors);
    CU_add_test(s, "structure errors", test_structure_errors);
    CU_add_test(s, "type errors", test_type_errors);
    CU_add_test(s, "range errors", test_range_errors);
    CU_add_test(s, "duplicate keys", test_duplicates);
    CU_add_test(s, "plugin blocks", test_plugin_blocks);
    CU_add_test(s, "plugin_path", test_plugin_path);
    CU_add_test(s, "load a file", test_load_file);
    CU_add_test(s, "environment overrides", test_env);
    CU_add_test(s, "deep, huge and odd input", test_hostile);
}
