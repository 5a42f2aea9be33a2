/* Loader: every way a plugin file can be wrong gives a message naming the
 * file and the reason, and a failed plugin leaves nothing registered. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static pyoco_server *make_server(const char *yaml) {
    char err[1024] = "";
    pyoco_config *cfg = NULL;
    int rc = pyoco_config_parse(yaml, strlen(yaml), "test.yaml", FX_DIR, &cfg,
                                err, sizeof(err));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    pyoco_server *srv = NULL;
    CU_ASSERT_EQUAL_FATAL(pyoco_server_new(cfg, &srv, err, sizeof(err)), 0);
    return srv;
}

#define BASE_YAML "plugin_path: [\"" FX_DIR "\"]\n"

static void expect_fail(const char *name, const char *file, int want_rc,
                        const char *must_contain1, const char *must_contain2) {
    pyoco_server *srv = make_server(BASE_YAML);
    pyoco_host *h = (pyoco_host *)0x1;
    char err[2048] = "";
    int rc = pyoco_loader_load(srv, name, file, SIZE_MAX, &h, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, want_rc);
    CU_ASSERT_PTR_NULL(h);
    if (!strstr(err, must_contain1) ||
        (must_contain2 && !strstr(err, must_contain2))) {
        fprintf(stderr, "\nunexpected message for %s: %s\n", name, err);
        CU_FAIL("message does not say which file and why");
    }
    pyoco_server_free(srv);
}

static void test_missing_file(void) {
    expect_fail("nope", NULL, -ENOENT, "plugin 'nope': not found",
                FX_DIR "/nope.so");
    expect_fail("nope", FX_DIR "/really_missing.so", -ENOENT,
                "really_missing.so", "no such file");
}

static void test_not_a_shared_object(void) {
    expect_fail("fx_garbage", NULL, -ENOEXEC, FX_DIR "/fx_garbage.so",
                "cannot load as a shared object");
}

static void test_missing_symbol(void) {
    expect_fail("fx_noentry", NULL, -ENOEXEC, "fx_noentry.so",
                "missing symbol 'pyoco_plugin_entry'");
}

static void test_abi_major(void) {
    expect_fail("fx_badabi", NULL, -EPROTO, "fx_badabi.so", "ABI mismatch");
}

static void test_abi_newer_minor(void) {
    expect_fail("fx_newminor", NULL, -EPROTO, "fx_newminor.so",
                "upgrade the server");
}

static void test_wrong_name(void) {
    expect_fail("fx_wrongname", NULL, -EINVAL, "fx_wrongname.so",
                "provides plugin 'somebody_else'");
}

static void test_init_failure_unregisters(void) {
    pyoco_server *srv = make_server(BASE_YAML);
    size_t subs_before = pyoco_bus_subscriptions(srv->bus);
    pyoco_host *h = NULL;
    char err[2048] = "";
    int rc = pyoco_loader_load(srv, "fx_initfail", NULL, SIZE_MAX, &h, err,
                               sizeof(err));
    CU_ASSERT_EQUAL(rc, -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "fx_initfail.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "boom: the fixture refuses"));
    /* Its subscription, route and durability provider are gone. */
    CU_ASSERT_EQUAL(pyoco_bus_subscriptions(srv->bus), subs_before);
    CU_ASSERT_EQUAL(pyoco_durability_providers(srv->dur), 0);
    CU_ASSERT_EQUAL(pyoco_http_route_add(srv->http, PYOCO_HTTP_GET,
                                         "/fx/initfail", (pyoco_route_fn)1,
                                         NULL, NULL, NULL),
                    0);
    pyoco_server_free(srv);
}

static void test_ok_and_config(void) {
    pyoco_server *srv = make_server(BASE_YAML "plugins:\n"
                                              "  fx_ok:\n"
                                              "    greeting: hi there\n");
    pyoco_host *h = NULL;
    char err[2048] = "";
    int rc = pyoco_loader_load(srv, "fx_ok", NULL, 0, &h, err, sizeof(err));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(pyoco_host_api()->config_string(h, "greeting"),
                           "hi there");
    int64_t times = 0;
    CU_ASSERT_EQUAL(pyoco_host_api()->config_int(h, "times", &times), 0);
    CU_ASSERT_EQUAL(times, 1);
    /* Its route exists: adding it again collides. */
    CU_ASSERT_EQUAL(pyoco_http_route_add(srv->http, PYOCO_HTTP_GET, "/fx/hello",
                                         (pyoco_route_fn)1, NULL, NULL, NULL),
                    -EEXIST);
    size_t subs = pyoco_bus_subscriptions(srv->bus);
    CU_ASSERT_TRUE(subs >= 1);
    pyoco_loader_unload(srv, h);
    CU_ASSERT_EQUAL(pyoco_bus_subscriptions(srv->bus), subs - 1);
    CU_ASSERT_EQUAL(pyoco_http_route_add(srv->http, PYOCO_HTTP_GET, "/fx/hello",
                                         (pyoco_route_fn)1, NULL, NULL, NULL),
                    0);
    pyoco_server_free(srv);
}

static void test_unknown_config_key(void) {
    pyoco_server *srv = make_server(BASE_YAML "plugins:\n"
                                              "  fx_ok:\n"
                                              "    greting: typo\n");
    pyoco_host *h = NULL;
    char err[2048] = "";
    int rc = pyoco_loader_load(srv, "fx_ok", NULL, 0, &h, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "test.yaml:4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "greting"));
    pyoco_server_free(srv);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("loader", NULL, NULL);
    CU_add_test(s, "missing file", test_missing_file);
    CU_add_test(s, "not a shared object", test_not_a_shared_object);
    CU_add_test(s, "missing symbol", test_missing_symbol);
    CU_add_test(s, "ABI major mismatch", test_abi_major);
    CU_add_test(s, "ABI newer minor", test_abi_newer_minor);
    CU_add_test(s, "descriptor names another plugin", test_wrong_name);
    CU_add_test(s, "init failure unregisters all",
                test_init_failure_unregisters);
    CU_add_test(s, "load, config, unload", test_ok_and_config);
    CU_add_test(s, "unknown config key", test_unknown_config_key);
}
