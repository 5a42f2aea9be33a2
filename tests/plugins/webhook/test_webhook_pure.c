/* Unit tests of the webhook plugin's pure parts: payload, signature,
 * ids, backoff and Retry-After, and config validation against a mock api. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mock_api.h"
#include "wh.h"

static pyoco_host *H = (pyoco_host *)&M;

/* ---------------------------------------------------------------- payload */

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
    json_t *run = mock_sample_run();
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
    CU_ASSERT_EQUAL(mock_log_count("inactive"), 1);
    mock_finish_run(PYOCO_STATUS_COMPLETED); /* nothing to send */
    CU_ASSERT_EQUAL(json_object_size(M.outbox), 0);
    /* an entry left by an earlier configuration is acknowledged */
    json_t *data = json_pack("{s:s, s:s}", "endpoint", "old", "payload", "{}");
    pyoco_event ev = {.kind = PYOCO_EV_OUTBOX_RESTORED,
                      .outbox_owner = "webhook",
                      .outbox_id = "msg_old",
                      .data = data};
    mock_publish(&ev);
    json_decref(data);
    CU_ASSERT_EQUAL(json_array_size(M.done_ids), 1);
    CU_ASSERT_EQUAL(mock_log_count("no longer configured"), 1);
    CU_ASSERT_EQUAL(d->start(H, state), 0);
    CU_ASSERT_EQUAL(d->stop(H, state), 0);
    d->fini(H, state);
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
}
