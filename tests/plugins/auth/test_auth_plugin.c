/* test_auth_plugin.c - the whole auth plugin on a mock host: init errors,
 * the filter's answers (401/403/pass, challenges, details), open routes,
 * basic auth, the outcome counter, rate-limited logging, enabled: false and
 * reload (new keys taken, bad ones refused with the old kept), also of a
 * key_file whose block did not change. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth_keys.h"
#include "auth_mock.h"

static const char *hex_of(const char *s) {
    static char out[4][65];
    static int slot;
    char *o = out[slot++ % 4];
    unsigned char d[32];
    pyoco_auth_sha256(s, strlen(s), d);
    for (int i = 0; i < 32; i++)
        sprintf(o + 2 * i, "%02x", d[i]);
    return o;
}

typedef struct fixture {
    pyoco_host host;
    void *state;
    char err[512];
    int rc;
} fixture;

static void start(fixture *f, const char *config_json) {
    memset(f, 0, sizeof *f);
    json_error_t je;
    f->host.config = json_loads(config_json, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->host.config);
    f->host.now = 1000.0;
    const pyoco_plugin_desc *d = mock_desc();
    f->rc = d->init(&f->host, mock_api(), &f->state, f->err, sizeof f->err);
    if (f->rc == 0)
        CU_ASSERT(d->start(&f->host, f->state) == 0);
}

static void finish(fixture *f) {
    if (f->rc == 0)
        mock_desc()->fini(&f->host, f->state);
    json_decref(f->host.config);
}

static pyoco_request req(unsigned m, const char *route, const char *key,
                         const char *authz) {
    return (pyoco_request){
        .method = m, .route = route, .x_api_key = key, .authorization = authz};
}

/* Keys: "kw" worker, "kr" reader, "ka" admin. */
static char *std_config(const char *extra) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"keys\": [{\"name\":\"w\",\"sha256\":\"%s\",\"roles\":"
             "[\"worker\"]},{\"name\":\"r\",\"sha256\":\"%s\",\"roles\":"
             "[\"reader\"]},{\"name\":\"a\",\"sha256\":\"%s\",\"roles\":"
             "[\"admin\"]}], \"open_routes\": [\"/health\"], "
             "\"metrics_path\": \"/metrics\"%s}",
             hex_of("kw"), hex_of("kr"), hex_of("ka"), extra ? extra : "");
    return buf;
}

static void test_init_errors(void) {
    fixture f;
    start(&f, "{\"keys\": [{\"name\":\"x\",\"sha256\":\"12\",\"roles\":"
              "[\"reader\"]}]}");
    CU_ASSERT(f.rc == -EINVAL);
    CU_ASSERT(strstr(f.err, "pyoco.yaml:7: plugins.auth.keys[0]: key 'x': "
                            "sha256") != NULL);
    CU_ASSERT_PTR_NULL(f.host.filter);
    finish(&f);
    start(&f, "{\"metrics_basic_auth\": {\"username\":\"u\"}}");
    CU_ASSERT(f.rc == -EINVAL);
    CU_ASSERT(strstr(f.err, "plugins.auth.metrics_basic_auth: "
                            "password_sha256") != NULL);
    finish(&f);
    start(&f, "{\"metrics_basic_auth\": {\"username\":\"u\", \"password\":"
              "\"plain\"}}");
    CU_ASSERT(f.rc == -EINVAL);
    CU_ASSERT(strstr(f.err, "unknown key 'password'") != NULL);
    finish(&f);
    start(&f, "{\"key_file\": \"/nonexistent/keys\"}");
    CU_ASSERT(f.rc == -ENOENT);
    CU_ASSERT(strstr(f.err, "pyoco.yaml:7: plugins.auth.key_file: "
                            "/nonexistent/keys: cannot open") != NULL);
    finish(&f);
}

static void test_filter_answers(void) {
    fixture f;
    start(&f, std_config(NULL));
    CU_ASSERT_FATAL(f.rc == 0);
    pyoco_host *h = &f.host;
    CU_ASSERT(h->allowed == 0 && h->metric_calls == 3); /* zeroed at start */

    pyoco_request r = req(PYOCO_HTTP_POST, "/workers/poll", "kw", NULL);
    CU_ASSERT(mock_filter(h, &r) == 0 && r.status == 0);
    r = req(PYOCO_HTTP_POST, "/runs/{run_id}/heartbeat", NULL, "Bearer kw");
    CU_ASSERT(mock_filter(h, &r) == 0 && r.status == 0);
    r = req(PYOCO_HTTP_POST, "/runs", "ka", NULL);
    CU_ASSERT(mock_filter(h, &r) == 0 && r.status == 0);
    CU_ASSERT(h->allowed == 3);

    r = req(PYOCO_HTTP_POST, "/runs", "kw", NULL);
    CU_ASSERT(mock_filter(h, &r) == 1);
    CU_ASSERT(r.status == 403);
    CU_ASSERT_STRING_EQUAL(r.detail, "key 'w' lacks the 'submitter' right");
    CU_ASSERT(r.nwww == 0);
    CU_ASSERT(h->forbidden == 1);
    CU_ASSERT(strstr(h->last_log, "denied POST /runs from 192.0.2.7: key 'w' "
                                  "lacks the 'submitter' right") != NULL);

    r = req(PYOCO_HTTP_GET, "/metrics", "kr", NULL);
    CU_ASSERT(mock_filter(h, &r) == 1 && r.status == 403);
    CU_ASSERT_STRING_EQUAL(r.detail, "key 'r' lacks the 'metrics' right");

    r = req(PYOCO_HTTP_GET, "/runs", "nope", NULL);
    CU_ASSERT(mock_filter(h, &r) == 1 && r.status == 401);
    CU_ASSERT_STRING_EQUAL(r.detail, "invalid API key");
    CU_ASSERT(r.nwww == 1 && strcmp(r.www[0], "Bearer") == 0);
    r = req(PYOCO_HTTP_GET, "/runs", NULL, NULL);
    CU_ASSERT(mock_filter(h, &r) == 1 && r.status == 401);
    CU_ASSERT(strstr(r.detail, "missing credentials") != NULL);
    /* Basic auth is not set: refused even on /metrics, no Basic challenge. */
    r = req(PYOCO_HTTP_GET, "/metrics", NULL, "Basic YTpi");
    CU_ASSERT(mock_filter(h, &r) == 1 && r.status == 401 && r.nwww == 1);
    CU_ASSERT(h->unauthenticated == 3);

    /* Open route: passes, not counted. */
    r = req(PYOCO_HTTP_GET, "/health", NULL, NULL);
    CU_ASSERT(mock_filter(h, &r) == 0 && r.status == 0);
    CU_ASSERT(h->allowed == 3 && h->forbidden == 2);
    finish(&f);
}

static void test_basic_auth(void) {
    fixture f;
    char extra[256];
    snprintf(extra, sizeof extra,
             ", \"metrics_basic_auth\": {\"username\": \"prom\", "
             "\"password_sha256\": \"%s\"}",
             hex_of("b"));
    start(&f, std_config(extra));
    CU_ASSERT_FATAL(f.rc == 0);
    pyoco_request r =
        req(PYOCO_HTTP_GET, "/metrics", NULL, "Basic cHJvbTpi"); /* prom:b */
    CU_ASSERT(mock_filter(&f.host, &r) == 0 && r.status == 0);
    r = req(PYOCO_HTTP_GET, "/metrics", NULL, "Basic cHJvbTpj"); /* prom:c */
    CU_ASSERT(mock_filter(&f.host, &r) == 1 && r.status == 401);
    CU_ASSERT_STRING_EQUAL(r.detail, "invalid username or password");
    CU_ASSERT(r.nwww == 2 && strcmp(r.www[0], "Bearer") == 0 &&
              strcmp(r.www[1], "Basic realm=\"pyoco\"") == 0);
    r = req(PYOCO_HTTP_GET, "/metrics", NULL, NULL);
    CU_ASSERT(mock_filter(&f.host, &r) == 1 && r.nwww == 2);
    /* Good basic credentials elsewhere: 401, Bearer only. */
    r = req(PYOCO_HTTP_GET, "/runs", NULL, "Basic cHJvbTpi");
    CU_ASSERT(mock_filter(&f.host, &r) == 1 && r.status == 401 && r.nwww == 1);
    r = req(PYOCO_HTTP_POST, "/metrics", NULL, "Basic cHJvbTpi");
    CU_ASSERT(mock_filter(&f.host, &r) == 1 && r.status == 401);
    finish(&f);
}

static void test_log_rate_limit(void) {
    fixture f;
    start(&f, std_config(NULL));
    CU_ASSERT_FATAL(f.rc == 0);
    pyoco_host *h = &f.host;
    int w0 = h->warnings;
    for (int i = 0; i < 50; i++) {
        pyoco_request r = req(PYOCO_HTTP_GET, "/runs", "bad-key", NULL);
        CU_ASSERT(mock_filter(h, &r) == 1 && r.status == 401);
        h->now += 0.01; /* 50 requests in half a second */
    }
    CU_ASSERT(h->warnings - w0 == 1);
    CU_ASSERT(h->unauthenticated == 50);
    h->now += 1.0;
    pyoco_request r = req(PYOCO_HTTP_GET, "/runs", "bad-key", NULL);
    mock_filter(h, &r);
    CU_ASSERT(h->warnings - w0 == 2);
    CU_ASSERT(strstr(h->last_log, "(49 more denied requests not logged)") !=
              NULL);
    CU_ASSERT(strstr(h->last_log, "bad-key") == NULL);
    finish(&f);
}

static void test_disabled_and_reload(void) {
    fixture f;
    start(&f, "{\"enabled\": false}");
    CU_ASSERT_FATAL(f.rc == 0);
    pyoco_request r = req(PYOCO_HTTP_POST, "/runs", NULL, NULL);
    CU_ASSERT(mock_filter(&f.host, &r) == 0 && r.status == 0);

    /* Reload with keys: enforced from now on. */
    json_decref(f.host.config);
    f.host.config = json_loads(std_config(NULL), 0, NULL);
    char err[512] = "";
    CU_ASSERT(mock_desc()->reload(&f.host, f.state, err, sizeof err) == 0);
    r = req(PYOCO_HTTP_POST, "/runs", NULL, NULL);
    CU_ASSERT(mock_filter(&f.host, &r) == 1 && r.status == 401);
    r = req(PYOCO_HTTP_GET, "/runs", "kr", NULL);
    CU_ASSERT(mock_filter(&f.host, &r) == 0);

    /* A bad block: refused, the old keys stay. */
    json_decref(f.host.config);
    f.host.config = json_loads(
        "{\"keys\": "
        "[{\"name\":\"n\",\"sha256\":\"zz\",\"roles\":[\"admin\"]}]}",
        0, NULL);
    CU_ASSERT(mock_desc()->reload(&f.host, f.state, err, sizeof err) ==
              -EINVAL);
    CU_ASSERT(strstr(err, "key 'n': sha256") != NULL);
    r = req(PYOCO_HTTP_GET, "/runs", "kr", NULL);
    CU_ASSERT(mock_filter(&f.host, &r) == 0 && r.status == 0);
    r = req(PYOCO_HTTP_GET, "/runs", "nope", NULL);
    CU_ASSERT(mock_filter(&f.host, &r) == 1 && r.status == 401);
    finish(&f);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

static bool key_ok(pyoco_host *h, const char *key) {
    pyoco_request r = req(PYOCO_HTTP_GET, "/runs", key, NULL);
    return mock_filter(h, &r) == 0;
}

/* The host calls reload on every SIGHUP: a key_file edit applies even when
 * the block itself did not change, and a broken file keeps the keys. */
static void test_reload_rereads_key_file(void) {
    char path[] = "/tmp/auth_hup_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    char line[128], cfg[256];
    snprintf(line, sizeof line, "one %s reader\n", hex_of("k1"));
    write_file(path, line);
    snprintf(cfg, sizeof cfg, "{\"key_file\": \"%s\"}", path);

    fixture f;
    memset(&f, 0, sizeof f);
    f.host.config = json_loads(cfg, 0, NULL);
    const pyoco_plugin_desc *d = mock_desc();
    CU_ASSERT_FATAL(
        d->init(&f.host, mock_api(), &f.state, f.err, sizeof f.err) == 0);
    CU_ASSERT_FATAL(d->start(&f.host, f.state) == 0);
    CU_ASSERT(key_ok(&f.host, "k1") && !key_ok(&f.host, "k2"));

    snprintf(line, sizeof line, "two %s reader\n", hex_of("k2"));
    write_file(path, line);
    char err[256] = "";
    CU_ASSERT(d->reload(&f.host, f.state, err, sizeof err) == 0);
    CU_ASSERT(key_ok(&f.host, "k2") && !key_ok(&f.host, "k1"));

    write_file(path, "two nothex reader\n");
    CU_ASSERT(d->reload(&f.host, f.state, err, sizeof err) < 0);
    CU_ASSERT(strstr(err, ":1: key 'two': sha256") != NULL);
    CU_ASSERT(key_ok(&f.host, "k2"));

    d->fini(&f.host, f.state);
    json_decref(f.host.config);
    unlink(path);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("auth_plugin", NULL, NULL);
    CU_add_test(s, "init errors", test_init_errors);
    CU_add_test(s, "filter answers", test_filter_answers);
    CU_add_test(s, "basic auth", test_basic_auth);
    CU_add_test(s, "log rate limit", test_log_rate_limit);
    CU_add_test(s, "disabled and reload", test_disabled_and_reload);
    CU_add_test(s, "reload re-reads key_file", test_reload_rereads_key_file);
}
