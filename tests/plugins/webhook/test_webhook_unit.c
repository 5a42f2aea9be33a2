/* Unit tests of the webhook plugin: payload, signature, backoff and
 * Retry-After, config validation, the outbox/event handling against a mock
 * api, and real deliveries through libcurl to an evhttp receiver on the
 * same libevent loop (127.0.0.1, port 0). */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mock_api.h"
#include "wh.h"

const pyoco_plugin_desc *pyoco_plugin_entry(void);

static pyoco_host *H = (pyoco_host *)&M;

/* ---------------------------------------------------------------- payload */

static json_t *sample_run(void) {
    return json_pack(
        "{s:s, s:s, s:{s:i}, s:s, s:f, s:f, s:{s:s}, s:{s:{s:s, s:f, s:f, "
        "s:f, s:n, s:n, s:{}, s:i, s:{}}}, s:[], s:{s:s}, s:f, s:{}}",
        "run_id", "9811b55d-b60b-49e8-b8e0-384f4d7dc86a", "flow_name", "demo",
        "params", "x", 1, "status", "COMPLETED", "start_time", 1000.5,
        "end_time", 1001.75, "tasks", "t1", "SUCCEEDED", "task_records", "t1",
        "state", "SUCCEEDED", "started_at", 1000.5, "ended_at", 1000.75,
        "duration_ms", 250.0, "error", "traceback", "inputs", "output", 42,
        "artifacts", "logs", "metadata", "worker_id", "w1", "run_duration_ms",
        1250.0, "task_summary");
}

static void test_event_names(void) {
    CU_ASSERT_STRING_EQUAL(wh_event_name(PYOCO_STATUS_COMPLETED),
                           "run.completed");
    CU_ASSERT_STRING_EQUAL(wh_event_name(PYOCO_STATUS_FAILED), "run.failed");
    CU_ASSERT_STRING_EQUAL(wh_event_name(PYOCO_STATUS_CANCELLED),
                           "run.cancelled");
    CU_ASSERT_PTR_NULL(wh_event_name(PYOCO_STATUS_RUNNING));
    CU_ASSERT_PTR_NULL(wh_event_name(PYOCO_STATUS_CANCELLING));
    CU_ASSERT_EQUAL(wh_event_bit_from_name("run.failed"), WH_EV_FAILED);
    CU_ASSERT_EQUAL(wh_event_bit_from_name("run.done"), 0);
}

static void test_payload_from_run(void) {
    json_t *run = sample_run();
    pyoco_event ev = {.size = sizeof ev,
                      .kind = PYOCO_EV_RUN_FINISHED,
                      .run_id = "9811b55d-b60b-49e8-b8e0-384f4d7dc86a",
                      .status = PYOCO_STATUS_COMPLETED};
    json_t *p = wh_payload_build("run.completed", &ev, run);
    char *s = wh_payload_dump(p);
    CU_ASSERT_STRING_EQUAL(
        s, "{\"event\":\"run.completed\","
           "\"run_id\":\"9811b55d-b60b-49e8-b8e0-384f4d7dc86a\","
           "\"flow_name\":\"demo\",\"status\":\"COMPLETED\","
           "\"started_at\":1000.5,\"ended_at\":1001.75,"
           "\"duration_ms\":1250.0,"
           "\"tasks\":{\"t1\":{\"state\":\"SUCCEEDED\",\"started_at\":1000.5,"
           "\"ended_at\":1000.75,\"duration_ms\":250.0,\"error\":null,"
           "\"traceback\":null,\"inputs\":{},\"output\":42,"
           "\"artifacts\":{}}},"
           "\"metadata\":{\"worker_id\":\"w1\"}}");
    free(s);
    json_decref(p);
    json_decref(run);
}

static void test_payload_without_run(void) {
    json_t *meta = json_pack("{s:s}", "k", "v");
    pyoco_event ev = {.size = sizeof ev,
                      .kind = PYOCO_EV_RUN_FINISHED,
                      .run_id = "r1",
                      .flow_name = "f",
                      .status = PYOCO_STATUS_CANCELLED,
                      .start_time = 10.5,
                      .metadata = meta};
    json_t *p = wh_payload_build("run.cancelled", &ev, NULL);
    char *s = wh_payload_dump(p);
    CU_ASSERT_STRING_EQUAL(
        s, "{\"event\":\"run.cancelled\",\"run_id\":\"r1\",\"flow_name\":\"f\","
           "\"status\":\"CANCELLED\",\"started_at\":10.5,\"ended_at\":null,"
           "\"duration_ms\":null,\"tasks\":{},\"metadata\":{\"k\":\"v\"}}");
    free(s);
    json_decref(p);
    json_decref(meta);
}

/* -------------------------------------------------------------- signature */

static void test_sign_standard_vector(void) {
    /* The Standard Webhooks specification's own test vector. */
    unsigned char *key;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(
        wh_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &key, &len), 0);
    CU_ASSERT_EQUAL(len, 24);
    char sig[128];
    const char *body = "{\"test\": 2432232314}";
    CU_ASSERT_EQUAL(wh_sign(key, len, "msg_p5jXN8AQM9LWM0D4loKWxJek",
                            1614265330, body, strlen(body), sig, sizeof sig),
                    0);
    CU_ASSERT_STRING_EQUAL(sig,
                           "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    free(key);
}

static void test_sign_raw_secret(void) {
    unsigned char *key;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(wh_secret_key("s3cret", &key, &len), 0);
    CU_ASSERT_EQUAL(len, 6);
    CU_ASSERT_EQUAL(memcmp(key, "s3cret", 6), 0);
    char sig[128];
    CU_ASSERT_EQUAL(wh_sign(key, len, "msg_1", 42, "{}", 2, sig, sizeof sig),
                    0);
    /* Independently: one-shot HMAC over the concatenated string. */
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), "s3cret", 6, (const unsigned char *)"msg_1.42.{}", 11,
         mac, &maclen);
    char expect[64] = "v1,";
    EVP_EncodeBlock((unsigned char *)expect + 3, mac, (int)maclen);
    CU_ASSERT_STRING_EQUAL(sig, expect);
    free(key);
}

static void test_secret_bad_base64(void) {
    unsigned char *key = NULL;
    size_t len;
    CU_ASSERT_EQUAL(wh_secret_key("whsec_", &key, &len), -EINVAL);
    CU_ASSERT_EQUAL(wh_secret_key("whsec_abc", &key, &len), -EINVAL);
    CU_ASSERT_EQUAL(wh_secret_key("whsec_ab!d", &key, &len), -EINVAL);
    CU_ASSERT_PTR_NULL(key);
    CU_ASSERT_EQUAL(wh_secret_key("whsec_YWI=", &key, &len), 0); /* "ab" */
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT_EQUAL(memcmp(key, "ab", 2), 0);
    free(key);
}

static void test_ids(void) {
    char a[64], b[64];
    CU_ASSERT_EQUAL(wh_make_id(a, sizeof a), 0);
    CU_ASSERT_EQUAL(wh_make_id(b, sizeof b), 0);
    CU_ASSERT_EQUAL(strlen(a), 40);
    CU_ASSERT_EQUAL(strncmp(a, "msg_", 4), 0);
    CU_ASSERT_EQUAL(a[4 + 14], '4'); /* uuid version */
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_EQUAL(wh_make_id(a, 20), -EIO);
}

/* ------------------------------------------------------------------ retry */

static void test_backoff(void) {
    CU_ASSERT_DOUBLE_EQUAL(wh_backoff_delay(1, 60, 1, 0.5), 1, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wh_backoff_delay(1, 60, 2, 0.5), 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wh_backoff_delay(1, 60, 4, 0.5), 8, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wh_backoff_delay(1, 60, 7, 0.5), 60, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wh_backoff_delay(1, 60, 1000, 0.5), 60, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wh_backoff_delay(0.5, 60, 3, 0.5), 2, 1e-9);
    /* +-20% jitter at the ends of u's range */
    CU_ASSERT_DOUBLE_EQUAL(wh_backoff_delay(10, 60, 1, 0.0), 8, 1e-9);
    CU_ASSERT(wh_backoff_delay(10, 60, 1, 0.9999999) <= 12.0);
    CU_ASSERT(wh_backoff_delay(10, 60, 1, 0.9999999) > 11.99);
    CU_ASSERT_DOUBLE_EQUAL(wh_backoff_delay(0, 60, 5, 0.3), 0, 1e-12);
}

static void test_retry_after(void) {
    double s = -1;
    time_t now = 1445412450; /* Wed, 21 Oct 2015 07:27:30 GMT */
    CU_ASSERT_EQUAL(wh_retry_after_parse("120", now, &s), 0);
    CU_ASSERT_DOUBLE_EQUAL(s, 120, 1e-9);
    CU_ASSERT_EQUAL(wh_retry_after_parse(" 7 ", now, &s), 0);
    CU_ASSERT_DOUBLE_EQUAL(s, 7, 1e-9);
    CU_ASSERT_EQUAL(
        wh_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", now, &s), 0);
    CU_ASSERT_DOUBLE_EQUAL(s, 30, 1e-9);
    CU_ASSERT_EQUAL(
        wh_retry_after_parse("Wed, 21 Oct 2015 07:00:00 GMT", now, &s), 0);
    CU_ASSERT_DOUBLE_EQUAL(s, 0, 1e-9); /* in the past: now */
    CU_ASSERT_EQUAL(wh_retry_after_parse("99999999", now, &s), 0);
    CU_ASSERT_DOUBLE_EQUAL(s, WH_RETRY_AFTER_MAX, 1e-9);
    CU_ASSERT_EQUAL(wh_retry_after_parse("99999999999999999999999", now, &s),
                    0);
    CU_ASSERT_DOUBLE_EQUAL(s, WH_RETRY_AFTER_MAX, 1e-9);
    CU_ASSERT_EQUAL(wh_retry_after_parse("soon", now, &s), -EINVAL);
    CU_ASSERT_EQUAL(wh_retry_after_parse("12abc", now, &s), -EINVAL);
    CU_ASSERT_EQUAL(wh_retry_after_parse("-5", now, &s), -EINVAL);
    CU_ASSERT_EQUAL(wh_retry_after_parse("", now, &s), -EINVAL);
    CU_ASSERT_EQUAL(wh_retry_after_parse(NULL, now, &s), -EINVAL);
    CU_ASSERT_DOUBLE_EQUAL(wh_retry_delay(2, 5), 5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(wh_retry_delay(8, 5), 8, 1e-9);
}

/* ----------------------------------------------------------------- config */

static int load(const char *config_json, wh_config *cfg, char *err,
                size_t errlen) {
    json_error_t je;
    json_t *c = json_loads(config_json, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    mock_reset(c);
    err[0] = 0;
    return wh_config_load(H, &mock_api, cfg, err, errlen);
}

static void test_config_none(void) {
    wh_config cfg;
    char err[512];
    CU_ASSERT_EQUAL(load("{}", &cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg.count, 0);
    wh_config_free(&cfg);
    CU_ASSERT_EQUAL(load("{\"url\": \"\"}", &cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg.count, 0);
    wh_config_free(&cfg);
    mock_clear();
}

static void test_config_endpoints(void) {
    wh_config cfg;
    char err[512];
    int r = load("{\"endpoints\": ["
                 "{\"name\": \"ops\", \"url\": \"http://127.0.0.1:9/hook\","
                 " \"secret\": \"whsec_YWI=\", \"events\": [\"run.failed\", "
                 "\"run.cancelled\"], \"timeout\": \"1.5\", \"attempts\": "
                 "\"4\", \"backoff_initial\": \"0.25\", \"backoff_max\": "
                 "\"10\", \"max_in_flight\": \"2\"},"
                 "{\"name\": \"all\", \"url\": \"https://example.com/x\"}]}",
                 &cfg, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    CU_ASSERT_EQUAL_FATAL(cfg.count, 2);
    wh_endpoint *a = wh_config_find(&cfg, "ops");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(a->url, "http://127.0.0.1:9/hook");
    CU_ASSERT_STRING_EQUAL(a->secret, "whsec_YWI=");
    CU_ASSERT_EQUAL(a->key_len, 2);
    CU_ASSERT_EQUAL(a->events, WH_EV_FAILED | WH_EV_CANCELLED);
    CU_ASSERT_DOUBLE_EQUAL(a->timeout, 1.5, 1e-9);
    CU_ASSERT_EQUAL(a->attempts, 4);
    CU_ASSERT_DOUBLE_EQUAL(a->backoff_initial, 0.25, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(a->backoff_max, 10, 1e-9);
    CU_ASSERT_EQUAL(a->max_in_flight, 2);
    wh_endpoint *b = wh_config_find(&cfg, "all");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NULL(b->secret);
    CU_ASSERT_EQUAL(b->events, WH_EV_ALL);
    CU_ASSERT_DOUBLE_EQUAL(b->timeout, 3.0, 1e-9);
    CU_ASSERT_EQUAL(b->attempts, 1);
    CU_ASSERT_DOUBLE_EQUAL(b->backoff_initial, 1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(b->backoff_max, 60, 1e-9);
    CU_ASSERT_PTR_NULL(wh_config_find(&cfg, "default"));
    wh_config_free(&cfg);
    /* typed scalars work as well as YAML text */
    r = load("{\"endpoints\": [{\"name\": \"n\", \"url\": \"http://h/\", "
             "\"timeout\": 2, \"attempts\": 3, \"events\": \"run.failed\"}]}",
             &cfg, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    CU_ASSERT_DOUBLE_EQUAL(cfg.endpoints[0].timeout, 2, 1e-9);
    CU_ASSERT_EQUAL(cfg.endpoints[0].attempts, 3);
    CU_ASSERT_EQUAL(cfg.endpoints[0].events, WH_EV_FAILED);
    wh_config_free(&cfg);
    mock_clear();
}

static void test_config_default_endpoint(void) {
    wh_config cfg;
    char err[512];
    int r = load("{\"url\": \"http://127.0.0.1:8/h\", \"secret\": \"tok\", "
                 "\"timeout\": \"1.25\", \"retries\": \"0\"}",
                 &cfg, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    CU_ASSERT_EQUAL_FATAL(cfg.count, 1);
    wh_endpoint *d = &cfg.endpoints[0];
    CU_ASSERT_STRING_EQUAL(d->name, "default");
    CU_ASSERT_STRING_EQUAL(d->secret, "tok");
    CU_ASSERT_DOUBLE_EQUAL(d->timeout, 1.25, 1e-9);
    CU_ASSERT_EQUAL(d->attempts, 1); /* retries 0 -> minimum 1 */
    CU_ASSERT_EQUAL(d->events, WH_EV_ALL);
    wh_config_free(&cfg);
    r = load("{\"url\": \"http://127.0.0.1:8/h\", \"retries\": \"5\", "
             "\"endpoints\": [{\"name\": \"x\", \"url\": \"http://h/\"}]}",
             &cfg, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    CU_ASSERT_EQUAL_FATAL(cfg.count, 2);
    CU_ASSERT_EQUAL(wh_config_find(&cfg, "default")->attempts, 5);
    CU_ASSERT_PTR_NULL(wh_config_find(&cfg, "default")->secret);
    wh_config_free(&cfg);
    mock_clear();
}

static void test_config_errors(void) {
    static const struct {
        const char *config, *expect1, *expect2;
    } cases[] = {
        {"{\"endpoints\": {\"a\": 1}}", "plugins.webhook.endpoints:", "list"},
        {"{\"endpoints\": [\"http://x\"]}", "endpoints[0]", "map"},
        {"{\"endpoints\": [{\"url\": \"http://x/\"}]}", "endpoints[0].name",
         "required"},
        {"{\"endpoints\": [{\"name\": \"a\"}]}", "endpoints[0].url",
         "required"},
        {"{\"endpoints\": [{\"name\": \"a b\", \"url\": \"http://x/\"}]}",
         "endpoints[0].name", "A-Za-z0-9"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"ftp://x/\"}]}",
         "endpoints[0].url", "http"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"not a url\"}]}",
         "endpoints[0].url", "not a url"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"http://x/\", "
         "\"timeout\": \"abc\"}]}",
         "endpoints[0].timeout", "\"abc\""},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"http://x/\", "
         "\"timeout\": \"0\"}]}",
         "endpoints[0].timeout", "> 0"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"http://x/\", "
         "\"attempts\": \"0\"}]}",
         "endpoints[0].attempts", ">= 1"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"http://x/\", "
         "\"max_in_flight\": \"1.5\"}]}",
         "endpoints[0].max_in_flight", "integer"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"http://x/\", "
         "\"backoff_initial\": \"-1\"}]}",
         "endpoints[0].backoff_initial", ">= 0"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"http://x/\", "
         "\"backoff_initial\": \"5\", \"backoff_max\": \"1\"}]}",
         "endpoints[0].backoff_max", "below"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"http://x/\", "
         "\"events\": [\"run.done\"]}]}",
         "endpoints[0].events", "run.done"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"http://x/\", "
         "\"retries\": \"3\"}]}",
         "endpoints[0].retries", "unknown key"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"http://x/\", "
         "\"secret\": \"whsec_%%%\"}]}",
         "endpoints[0].secret", "base64"},
        {"{\"endpoints\": [{\"name\": \"a\", \"url\": \"http://x/\"}, "
         "{\"name\": \"a\", \"url\": \"http://y/\"}]}",
         "endpoints[1].name", "duplicate"},
        {"{\"endpoints\": [{\"name\": \"default\", \"url\": \"http://x/\"}], "
         "\"url\": \"http://y/\"}",
         "plugins.webhook.endpoints", "default"},
        {"{\"url\": \"gopher://y/\"}", "plugins.webhook.url", "http"},
        {"{\"url\": \"http://y/\", \"timeout\": \"-1\"}",
         "plugins.webhook.timeout", "> 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wh_config cfg;
        char err[512];
        int r = load(cases[i].config, &cfg, err, sizeof err);
        CU_ASSERT_EQUAL(r, -EINVAL);
        bool ok = strstr(err, "test.yaml:7: ") &&
                  strstr(err, cases[i].expect1) &&
                  strstr(err, cases[i].expect2);
        if (!ok)
            fprintf(stderr, "\ncase %zu: %s\n  err: %s\n", i, cases[i].config,
                    err);
        CU_ASSERT(ok);
        CU_ASSERT_PTR_NULL(cfg.endpoints);
    }
    mock_clear();
}

static void test_init_error_and_inactive(void) {
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    CU_ASSERT_STRING_EQUAL(d->name, "webhook");
    CU_ASSERT_EQUAL(d->abi_major, PYOCO_ABI_MAJOR);
    void *state = NULL;
    char err[512] = "";
    mock_reset(json_pack("{s:s}", "url", "nope://x"));
    CU_ASSERT_EQUAL(d->init(H, &mock_api, &state, err, sizeof err), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "plugins.webhook.url"));
    /* nothing configured: loads, subscribes to nothing, stops at once */
    mock_reset(NULL);
    CU_ASSERT_EQUAL_FATAL(d->init(H, &mock_api, &state, err, sizeof err), 0);
    CU_ASSERT_PTR_NULL(M.subs[PYOCO_EV_RUN_FINISHED]);
    CU_ASSERT_EQUAL(mock_log_count("inactive"), 1);
    CU_ASSERT_EQUAL(d->start(H, state), 0);
    CU_ASSERT_EQUAL(d->stop(H, state), 0);
    d->fini(H, state);
    mock_clear();
}

/* ------------------------------------------- events and outbox (no I/O) */

/* Init and start the plugin on the current mock (its loop stays). */
static void *start_plugin(json_t *config) {
    json_decref(M.config);
    M.config = config;
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    void *state = NULL;
    char err[512] = "";
    int r = d->init(H, &mock_api, &state, err, sizeof err);
    if (r)
        fprintf(stderr, "\ninit: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    CU_ASSERT_EQUAL(d->start(H, state), 0);
    return state;
}

static void finish_run(pyoco_run_status status) {
    pyoco_event ev = {.kind = PYOCO_EV_RUN_FINISHED,
                      .run_id = "9811b55d-b60b-49e8-b8e0-384f4d7dc86a",
                      .flow_name = "demo",
                      .status = status,
                      .start_time = 1000.5,
                      .end_time = 1001.75,
                      .run_duration_s = 1.25};
    mock_publish(&ev);
}

static void test_finished_goes_to_outbox(void) {
    mock_reset(NULL);
    void *state = start_plugin(
        json_pack("{s:[{s:s, s:s}, {s:s, s:s, s:[s]}]}", "endpoints", "name",
                  "all", "url", "http://127.0.0.1:9/a", "name", "failures",
                  "url", "http://127.0.0.1:9/b", "events", "run.failed"));
    M.run = sample_run();
    CU_ASSERT_PTR_NOT_NULL_FATAL(M.subs[PYOCO_EV_RUN_FINISHED]);
    /* zero-valued series exist from start */
    CU_ASSERT_EQUAL(json_array_size(M.metrics), 7);
    finish_run(PYOCO_STATUS_COMPLETED);
    CU_ASSERT_EQUAL_FATAL(json_object_size(M.outbox), 1);
    const char *id = json_object_iter_key(json_object_iter(M.outbox));
    CU_ASSERT_EQUAL(strncmp(id, "msg_", 4), 0);
    json_t *rec = json_object_get(M.outbox, id);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(rec, "endpoint")),
                           "all");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(rec, "attempt")), 0);
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(rec, "not_before")),
                           M.now, 1e-6);
    json_t *payload =
        json_loads(json_string_value(json_object_get(rec, "payload")), 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(payload);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(payload, "event")),
                           "run.completed");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(payload, "status")), "COMPLETED");
    CU_ASSERT_DOUBLE_EQUAL(
        json_number_value(json_object_get(payload, "duration_ms")), 1250, 1e-9);
    CU_ASSERT_PTR_NOT_NULL(
        json_object_get(json_object_get(payload, "tasks"), "t1"));
    json_decref(payload);
    /* FAILED goes to both endpoints; RUNNING-like statuses to none */
    finish_run(PYOCO_STATUS_FAILED);
    CU_ASSERT_EQUAL(json_object_size(M.outbox), 3);
    finish_run(PYOCO_STATUS_CANCELLING);
    CU_ASSERT_EQUAL(json_object_size(M.outbox), 3);
    /* stop with nothing in flight: done at once, entries stay outboxed */
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    CU_ASSERT_EQUAL(d->stop(H, state), 0);
    CU_ASSERT_EQUAL(json_object_size(M.outbox), 3);
    CU_ASSERT_EQUAL(json_array_size(M.done_ids), 0);
    d->fini(H, state);
    mock_clear();
}

static void test_restored_entries(void) {
    mock_reset(NULL);
    void *state =
        start_plugin(json_pack("{s:[{s:s, s:s}]}", "endpoints", "name", "a",
                               "url", "http://127.0.0.1:9/a"));
    json_t *data = json_pack("{s:s, s:s, s:i, s:f}", "endpoint", "gone",
                             "payload", "{}", "attempt", 0, "not_before", 1.0);
    pyoco_event ev = {.kind = PYOCO_EV_OUTBOX_RESTORED,
                      .outbox_owner = "someone_else",
                      .outbox_id = "msg_x",
                      .data = data};
    mock_publish(&ev);
    CU_ASSERT_EQUAL(json_array_size(M.done_ids), 0); /* not ours */
    ev.outbox_owner = "webhook";
    mock_publish(&ev);
    CU_ASSERT_EQUAL(json_array_size(M.done_ids), 1); /* unknown endpoint */
    CU_ASSERT_EQUAL(mock_log_count("no longer configured"), 1);
    json_object_set_new(data, "payload", json_integer(3));
    mock_publish(&ev);
    CU_ASSERT_EQUAL(json_array_size(M.done_ids), 2); /* malformed */
    CU_ASSERT_EQUAL(mock_log_count("malformed"), 1);
    json_decref(data);
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    CU_ASSERT_EQUAL(d->stop(H, state), 0);
    d->fini(H, state);
    mock_clear();
}

/* --------------------------- real HTTP: evhttp receiver on the same loop */

typedef struct step {
    int code;
    const char *retry_after;
    const char *location;
    double delay;     /* seconds before answering */
    size_t body_size; /* response body bytes */
} step;

static struct {
    struct evhttp *http;
    int port;
    const step *steps;
    size_t nsteps, next;
    json_t *requests; /* [{path, headers:{lowercase}, body}] */
} R;

typedef struct pending {
    struct evhttp_request *req;
    step s;
    struct event *ev;
} pending;

static void answer(struct evhttp_request *req, const step *s) {
    struct evbuffer *out = evbuffer_new();
    if (s->body_size) {
        char *big = malloc(s->body_size);
        memset(big, 'x', s->body_size);
        evbuffer_add(out, big, s->body_size);
        free(big);
    }
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    if (s->retry_after)
        evhttp_add_header(oh, "Retry-After", s->retry_after);
    if (s->location)
        evhttp_add_header(oh, "Location", s->location);
    evhttp_send_reply(req, s->code, "X", out);
    evbuffer_free(out);
}

static void on_delayed(evutil_socket_t fd, short what, void *arg) {
    pending *p = arg;
    answer(p->req, &p->s);
    event_free(p->ev);
    free(p);
}

static void on_request(struct evhttp_request *req, void *arg) {
    json_t *headers = json_object();
    struct evkeyval *kv;
    for (kv = evhttp_request_get_input_headers(req)->tqh_first; kv;
         kv = kv->next.tqe_next) {
        char name[128];
        size_t i;
        for (i = 0; kv->key[i] && i < sizeof name - 1; i++)
            name[i] = (char)tolower((unsigned char)kv->key[i]);
        name[i] = 0;
        json_object_set_new(headers, name, json_string(kv->value));
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_array_append_new(
        R.requests,
        json_pack("{s:s, s:o, s:s%}", "path", evhttp_request_get_uri(req),
                  "headers", headers, "body",
                  (const char *)evbuffer_pullup(in, -1), len));
    step s = R.next < R.nsteps ? R.steps[R.next] : (step){.code = 200};
    R.next++;
    if (s.delay > 0) {
        pending *p = calloc(1, sizeof *p);
        p->req = req;
        p->s = s;
        p->ev = evtimer_new(M.base, on_delayed, p);
        struct timeval tv = {0, (suseconds_t)(s.delay * 1e6)};
        evtimer_add(p->ev, &tv);
        return;
    }
    answer(req, &s);
}

static void receiver_start(const step *steps, size_t n) {
    memset(&R, 0, sizeof R);
    R.steps = steps;
    R.nsteps = n;
    R.requests = json_array();
    R.http = evhttp_new(M.base);
    struct evhttp_bound_socket *bs =
        evhttp_bind_socket_with_handle(R.http, "127.0.0.1", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bs);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
    R.port = ntohs(sa.sin_port);
    evhttp_set_gencb(R.http, on_request, NULL);
}

static void receiver_stop(void) {
    evhttp_free(R.http);
    json_decref(R.requests);
    memset(&R, 0, sizeof R);
}

/* Run the loop until `cond` holds; ctest's TIMEOUT is the real guard, this
 * one only turns a hang into a failed assertion. */
static void loop_once(void) {
    struct timeval tv = {0, 200000}; /* wake up to check the deadline */
    event_base_loopexit(M.base, &tv);
    event_base_loop(M.base, EVLOOP_ONCE);
}

static bool loop_until(bool (*cond)(void)) {
    time_t deadline = time(NULL) + 20;
    while (!cond() && time(NULL) < deadline)
        loop_once();
    return cond();
}

static bool one_done(void) {
    return json_array_size(M.done_ids) >= 1;
}

static bool two_done(void) {
    return json_array_size(M.done_ids) >= 2;
}

static bool one_request(void) {
    return json_array_size(R.requests) >= 1;
}

static bool stop_done_called(void) {
    return M.stop_done_calls > 0;
}

static json_t *endpoint_cfg(const char *path, const char *secret,
                            int attempts) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", R.port, path);
    json_t *ep =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "hook", "url", url,
                  "attempts", "3", "backoff_initial", "0.01", "timeout", "5");
    json_object_set_new(ep, "attempts", json_integer(attempts));
    if (secret)
        json_object_set_new(ep, "secret", json_string(secret));
    return json_pack("{s:[o]}", "endpoints", ep);
}

static void stop_and_fini(void *state) {
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    if (d->stop(H, state) == 1)
        CU_ASSERT(loop_until(stop_done_called));
    d->fini(H, state);
}

static void test_http_delivered_and_signed(void) {
    mock_reset(NULL);
    static const step steps[] = {{.code = 204}};
    receiver_start(steps, 1);
    void *state = start_plugin(endpoint_cfg("/in", "s3cret", 1));
    M.run = sample_run();
    finish_run(PYOCO_STATUS_COMPLETED);
    const char *id = json_object_iter_key(json_object_iter(M.outbox));
    char idcopy[64];
    snprintf(idcopy, sizeof idcopy, "%s", id);
    CU_ASSERT_FATAL(loop_until(one_done));
    CU_ASSERT_EQUAL(json_object_size(M.outbox), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(M.done_ids, 0)),
                           idcopy);
    CU_ASSERT_EQUAL_FATAL(json_array_size(R.requests), 1);
    json_t *rq = json_array_get(R.requests, 0);
    json_t *h = json_object_get(rq, "headers");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(rq, "path")),
                           "/in");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(h, "content-type")),
        "application/json");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(h, "x-pyoco-token")), "s3cret");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(h, "webhook-id")),
                           idcopy);
    /* verify the signature with a one-shot HMAC over id.ts.body */
    const char *ts = json_string_value(json_object_get(h, "webhook-timestamp"));
    const char *body = json_string_value(json_object_get(rq, "body"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ts);
    CU_ASSERT_EQUAL(atoll(ts), 1700000000);
    size_t n = strlen(idcopy) + strlen(ts) + strlen(body) + 3;
    char *signed_text = malloc(n);
    snprintf(signed_text, n, "%s.%s.%s", idcopy, ts, body);
    unsigned char mac[32];
    unsigned int maclen;
    HMAC(EVP_sha256(), "s3cret", 6, (unsigned char *)signed_text,
         strlen(signed_text), mac, &maclen);
    char expect[64] = "v1,";
    EVP_EncodeBlock((unsigned char *)expect + 3, mac, (int)maclen);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(h, "webhook-signature")), expect);
    free(signed_text);
    json_t *p = json_loads(body, 0, NULL);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(p, "event")),
                           "run.completed");
    json_decref(p);
    CU_ASSERT_DOUBLE_EQUAL(
        mock_metric_sum("pyoco_webhook_deliveries_total", "hook", "success"), 1,
        1e-9);
    CU_ASSERT_DOUBLE_EQUAL(
        mock_metric_sum("pyoco_webhook_deliveries_total", "hook", "retry"), 0,
        1e-9);
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

static void test_http_500_then_200(void) {
    mock_reset(NULL);
    static const step steps[] = {{.code = 500, .retry_after = "0"},
                                 {.code = 200}};
    receiver_start(steps, 2);
    void *state = start_plugin(endpoint_cfg("/r", "whsec_YWI=", 3));
    finish_run(PYOCO_STATUS_FAILED); /* run_get fails: event fields used */
    CU_ASSERT_FATAL(loop_until(one_done));
    CU_ASSERT_EQUAL(json_array_size(R.requests), 2);
    json_t *h0 = json_object_get(json_array_get(R.requests, 0), "headers");
    json_t *h1 = json_object_get(json_array_get(R.requests, 1), "headers");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(h0, "webhook-id")),
        json_string_value(json_object_get(h1, "webhook-id")));
    CU_ASSERT_DOUBLE_EQUAL(
        mock_metric_sum("pyoco_webhook_deliveries_total", "hook", "retry"), 1,
        1e-9);
    CU_ASSERT_DOUBLE_EQUAL(
        mock_metric_sum("pyoco_webhook_deliveries_total", "hook", "success"), 1,
        1e-9);
    CU_ASSERT_EQUAL(mock_log_count("HTTP 500"), 1);
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

static void test_http_redirect_not_followed(void) {
    mock_reset(NULL);
    static const step steps[] = {{.code = 302, .location = "/elsewhere"}};
    receiver_start(steps, 1);
    void *state = start_plugin(endpoint_cfg("/r", NULL, 1));
    finish_run(PYOCO_STATUS_COMPLETED);
    CU_ASSERT_FATAL(loop_until(one_done));
    CU_ASSERT_EQUAL(json_array_size(R.requests), 1);
    CU_ASSERT_EQUAL(mock_log_count("giving up"), 1);
    CU_ASSERT_EQUAL(mock_log_count("HTTP 302"), 1);
    CU_ASSERT_DOUBLE_EQUAL(
        mock_metric_sum("pyoco_webhook_deliveries_total", "hook", "failed"), 1,
        1e-9);
    CU_ASSERT(mock_metric_sum("pyoco_webhook_last_failure_timestamp_seconds",
                              "hook", NULL) > 0);
    /* no secret: no signature headers */
    json_t *h = json_object_get(json_array_get(R.requests, 0), "headers");
    CU_ASSERT_PTR_NULL(json_object_get(h, "x-pyoco-token"));
    CU_ASSERT_PTR_NULL(json_object_get(h, "webhook-signature"));
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

static void test_http_refused_gives_up(void) {
    mock_reset(NULL);
    receiver_start(NULL, 0);
    int port = R.port;
    receiver_stop(); /* nothing listens there now */
    R.port = port;
    void *state = start_plugin(endpoint_cfg("/x", NULL, 2));
    finish_run(PYOCO_STATUS_COMPLETED);
    CU_ASSERT_FATAL(loop_until(one_done));
    CU_ASSERT_EQUAL(mock_log_count("giving up"), 1);
    CU_ASSERT_EQUAL(mock_log_count("attempt 1/2"), 1);
    CU_ASSERT_DOUBLE_EQUAL(
        mock_metric_sum("pyoco_webhook_deliveries_total", "hook", "retry"), 1,
        1e-9);
    CU_ASSERT_DOUBLE_EQUAL(
        mock_metric_sum("pyoco_webhook_deliveries_total", "hook", "failed"), 1,
        1e-9);
    stop_and_fini(state);
    mock_clear();
}

static void test_http_huge_response_capped(void) {
    mock_reset(NULL);
    static const step steps[] = {{.code = 200, .body_size = 4 << 20}};
    receiver_start(steps, 1);
    void *state = start_plugin(endpoint_cfg("/big", NULL, 3));
    finish_run(PYOCO_STATUS_COMPLETED);
    CU_ASSERT_FATAL(loop_until(one_done));
    CU_ASSERT_EQUAL(json_array_size(R.requests), 1);
    CU_ASSERT_DOUBLE_EQUAL(
        mock_metric_sum("pyoco_webhook_deliveries_total", "hook", "success"), 1,
        1e-9);
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

static void test_http_stop_drains_in_flight(void) {
    mock_reset(NULL);
    static const step steps[] = {{.code = 200, .delay = 0.3}};
    receiver_start(steps, 1);
    void *state = start_plugin(endpoint_cfg("/slow", NULL, 1));
    finish_run(PYOCO_STATUS_COMPLETED);
    /* let the request reach the receiver */
    CU_ASSERT_FATAL(loop_until(one_request));
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    CU_ASSERT_EQUAL(d->stop(H, state), 1);
    CU_ASSERT_EQUAL(M.stop_done_calls, 0);
    CU_ASSERT(loop_until(stop_done_called));
    CU_ASSERT_EQUAL(M.stop_done_calls, 1);
    CU_ASSERT_EQUAL(json_array_size(M.done_ids), 1); /* delivered */
    d->fini(H, state);
    receiver_stop();
    mock_clear();
}

static void test_max_in_flight_queues(void) {
    mock_reset(NULL);
    static const step steps[] = {{.code = 200, .delay = 0.1},
                                 {.code = 200, .delay = 0.1},
                                 {.code = 200, .delay = 0.1}};
    receiver_start(steps, 3);
    json_t *cfg = endpoint_cfg("/q", NULL, 1);
    json_object_set_new(json_array_get(json_object_get(cfg, "endpoints"), 0),
                        "max_in_flight", json_string("1"));
    void *state = start_plugin(cfg);
    finish_run(PYOCO_STATUS_COMPLETED);
    finish_run(PYOCO_STATUS_FAILED);
    finish_run(PYOCO_STATUS_CANCELLED);
    time_t deadline = time(NULL) + 20;
    double max_seen = 0;
    while (json_array_size(M.done_ids) < 3 && time(NULL) < deadline) {
        loop_once();
        /* the gauge is SET: look at the last sample */
        json_t *last = NULL;
        size_t i;
        json_t *m;
        json_array_foreach(M.metrics, i, m) {
            if (!strcmp(json_string_value(json_object_get(m, "name")),
                        "pyoco_webhook_in_flight"))
                last = m;
        }
        if (last &&
            json_number_value(json_object_get(last, "value")) > max_seen)
            max_seen = json_number_value(json_object_get(last, "value"));
    }
    CU_ASSERT_EQUAL(json_array_size(M.done_ids), 3);
    CU_ASSERT_EQUAL(json_array_size(R.requests), 3);
    CU_ASSERT_DOUBLE_EQUAL(max_seen, 1, 1e-9);
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

static void test_http_restored_entry_delivered(void) {
    mock_reset(NULL);
    static const step steps[] = {{.code = 200}};
    receiver_start(steps, 1);
    void *state = start_plugin(endpoint_cfg("/restored", "tok", 2));
    /* attempt 7 of an endpoint with 2 attempts: one attempt is still made */
    json_t *data = json_pack("{s:s, s:s, s:i, s:f}", "endpoint", "hook",
                             "payload", "{\"event\":\"run.failed\"}", "attempt",
                             7, "not_before", M.now - 5);
    pyoco_event ev = {.kind = PYOCO_EV_OUTBOX_RESTORED,
                      .outbox_owner = "webhook",
                      .outbox_id = "msg_restored-1",
                      .data = data};
    mock_publish(&ev);
    ev.outbox_id = "bad id\r\nX-Evil: 1"; /* not a header-safe id */
    mock_publish(&ev);
    json_decref(data);
    CU_ASSERT_EQUAL(mock_log_count("malformed"), 1);
    CU_ASSERT_FATAL(loop_until(two_done));
    CU_ASSERT_EQUAL_FATAL(json_array_size(R.requests), 1);
    json_t *rq = json_array_get(R.requests, 0);
    json_t *h = json_object_get(rq, "headers");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(h, "webhook-id")),
                           "msg_restored-1");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(rq, "body")),
                           "{\"event\":\"run.failed\"}");
    CU_ASSERT_EQUAL(mock_log_count("attempt 2)"), 1);
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("webhook_pure", NULL, NULL);
    CU_add_test(s, "event names", test_event_names);
    CU_add_test(s, "payload from run", test_payload_from_run);
    CU_add_test(s, "payload without run", test_payload_without_run);
    CU_add_test(s, "standard webhooks vector", test_sign_standard_vector);
    CU_add_test(s, "raw secret signature", test_sign_raw_secret);
    CU_add_test(s, "whsec base64", test_secret_bad_base64);
    CU_add_test(s, "ids", test_ids);
    CU_add_test(s, "backoff", test_backoff);
    CU_add_test(s, "retry-after", test_retry_after);
    s = CU_add_suite("webhook_config", NULL, NULL);
    CU_add_test(s, "none", test_config_none);
    CU_add_test(s, "endpoints", test_config_endpoints);
    CU_add_test(s, "default endpoint", test_config_default_endpoint);
    CU_add_test(s, "errors", test_config_errors);
    CU_add_test(s, "init error and inactive", test_init_error_and_inactive);
    s = CU_add_suite("webhook_events", NULL, NULL);
    CU_add_test(s, "finished -> outbox", test_finished_goes_to_outbox);
    CU_add_test(s, "restored entries", test_restored_entries);
    s = CU_add_suite("webhook_http", NULL, NULL);
    CU_add_test(s, "delivered and signed", test_http_delivered_and_signed);
    CU_add_test(s, "500 then 200", test_http_500_then_200);
    CU_add_test(s, "redirect not followed", test_http_redirect_not_followed);
    CU_add_test(s, "refused gives up", test_http_refused_gives_up);
    CU_add_test(s, "huge response capped", test_http_huge_response_capped);
    CU_add_test(s, "stop drains in flight", test_http_stop_drains_in_flight);
    CU_add_test(s, "max_in_flight queues", test_max_in_flight_queues);
    CU_add_test(s, "restored entry delivered",
                test_http_restored_entry_delivered);
}
