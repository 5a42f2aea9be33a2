/* Unit tests of the webhook plugin's deliveries: RUN_FINISHED to outbox
 * records, restored entries, and real deliveries through libcurl to an
 * evhttp receiver on the same libevent loop (127.0.0.1, port 0). */
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

static pyoco_host *H = (pyoco_host *)&M;

/* ------------------------------------------- events and outbox (no I/O) */

static void test_finished_goes_to_outbox(void) {
    mock_reset(NULL);
    void *state = mock_start_plugin(
        json_pack("{s:[{s:s, s:s}, {s:s, s:s, s:[s]}]}", "endpoints", "name",
                  "all", "url", "http://127.0.0.1:9/a", "name", "failures",
                  "url", "http://127.0.0.1:9/b", "events", "run.failed"));
    M.run = mock_sample_run();
    CU_ASSERT_PTR_NOT_NULL_FATAL(M.subs[PYOCO_EV_RUN_FINISHED]);
    /* zero-valued series exist from start */
    CU_ASSERT_EQUAL(json_array_size(M.metrics), 7);
    mock_finish_run(PYOCO_STATUS_COMPLETED);
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
    mock_finish_run(PYOCO_STATUS_FAILED);
    CU_ASSERT_EQUAL(json_object_size(M.outbox), 3);
    mock_finish_run(PYOCO_STATUS_CANCELLING);
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
        mock_start_plugin(json_pack("{s:[{s:s, s:s}]}", "endpoints", "name",
                                    "a", "url", "http://127.0.0.1:9/a"));
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

static bool four_requests(void) {
    return json_array_size(R.requests) >= 4;
}

/* A loopback port nothing listens on (bound, then closed). */
static int free_port_number(void) {
    evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    evutil_closesocket(fd);
    return ntohs(sa.sin_port);
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
    void *state = mock_start_plugin(endpoint_cfg("/in", "s3cret", 1));
    M.run = mock_sample_run();
    mock_finish_run(PYOCO_STATUS_COMPLETED);
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
    void *state = mock_start_plugin(endpoint_cfg("/r", "whsec_YWI=", 3));
    mock_finish_run(PYOCO_STATUS_FAILED); /* run_get fails: event fields used */
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
    void *state = mock_start_plugin(endpoint_cfg("/r", NULL, 1));
    mock_finish_run(PYOCO_STATUS_COMPLETED);
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
    void *state = mock_start_plugin(endpoint_cfg("/x", NULL, 2));
    mock_finish_run(PYOCO_STATUS_COMPLETED);
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
    void *state = mock_start_plugin(endpoint_cfg("/big", NULL, 3));
    mock_finish_run(PYOCO_STATUS_COMPLETED);
    CU_ASSERT_FATAL(loop_until(one_done));
    CU_ASSERT_EQUAL(json_array_size(R.requests), 1);
    CU_ASSERT_DOUBLE_EQUAL(
        mock_metric_sum("pyoco_webhook_deliveries_total", "hook", "success"), 1,
        1e-9);
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

static void test_http_error_with_huge_body(void) {
    mock_reset(NULL);
    static const step steps[] = {{.code = 500, .body_size = 1 << 20}};
    receiver_start(steps, 1);
    void *state = mock_start_plugin(endpoint_cfg("/big500", NULL, 1));
    mock_finish_run(PYOCO_STATUS_COMPLETED);
    CU_ASSERT_FATAL(loop_until(one_done));
    /* the receiver's status is reported, not the cut-off body */
    CU_ASSERT_EQUAL(mock_log_count("after 1 attempt: HTTP 500"), 1);
    CU_ASSERT_DOUBLE_EQUAL(
        mock_metric_sum("pyoco_webhook_deliveries_total", "hook", "failed"), 1,
        1e-9);
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

static void test_http_stop_drains_in_flight(void) {
    mock_reset(NULL);
    static const step steps[] = {{.code = 200, .delay = 0.3}};
    receiver_start(steps, 1);
    void *state = mock_start_plugin(endpoint_cfg("/slow", NULL, 1));
    mock_finish_run(PYOCO_STATUS_COMPLETED);
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
    void *state = mock_start_plugin(cfg);
    mock_finish_run(PYOCO_STATUS_COMPLETED);
    mock_finish_run(PYOCO_STATUS_FAILED);
    mock_finish_run(PYOCO_STATUS_CANCELLED);
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
    void *state = mock_start_plugin(endpoint_cfg("/restored", "tok", 2));
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

static bool two_logged_failures(void) {
    return mock_log_count("attempt 1/3") == 1 &&
           mock_log_count("attempt 1/5") == 1;
}

static json_t *ep_json(const char *name, const char *path, int port,
                       int attempts) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    return json_pack("{s:s, s:s, s:i, s:s, s:s}", "name", name, "url", url,
                     "attempts", attempts, "backoff_initial", "0.3",
                     "backoff_max", "0.3");
}

static void test_reload_moves_deliveries(void) {
    mock_reset(NULL);
    static const step steps[] = {{.code = 500}, {.code = 200}};
    receiver_start(steps, 2);
    int closed = free_port_number();
    void *state = mock_start_plugin(
        json_pack("{s:[o, o]}", "endpoints", ep_json("hook", "/old", R.port, 3),
                  ep_json("gone", "/x", closed, 5)));
    mock_finish_run(PYOCO_STATUS_COMPLETED);
    CU_ASSERT_FATAL(loop_until(two_logged_failures));
    /* both wait for their 2nd attempt: change the config under them */
    json_decref(M.config);
    M.config =
        json_pack("{s:[o, o]}", "endpoints", ep_json("hook", "/new", R.port, 3),
                  ep_json("added", "/added", R.port, 1));
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(d->reload(H, state, err, sizeof err), 0);
    CU_ASSERT_EQUAL(mock_log_count("reloaded: 2 endpoint(s)"), 1);
    CU_ASSERT_EQUAL(mock_log_count("endpoint gone was removed"), 1);
    CU_ASSERT_EQUAL(json_array_size(M.done_ids), 1); /* gone's, acknowledged */
    CU_ASSERT_FATAL(loop_until(two_done));
    CU_ASSERT_EQUAL_FATAL(json_array_size(R.requests), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                               json_array_get(R.requests, 0), "path")),
                           "/old");
    /* the retry went to the endpoint's new URL */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                               json_array_get(R.requests, 1), "path")),
                           "/new");
    /* and new notifications reach the added endpoint */
    mock_finish_run(PYOCO_STATUS_FAILED);
    CU_ASSERT(loop_until(four_requests));
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

static void test_reload_bad_config_keeps_the_old_one(void) {
    mock_reset(NULL);
    receiver_start(NULL, 0);
    void *state = mock_start_plugin(endpoint_cfg("/keep", NULL, 1));
    json_t *good = M.config;
    M.config = json_pack("{s:[{s:s, s:s}]}", "endpoints", "name", "hook", "url",
                         "gopher://x/");
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    char err[256] = "";
    CU_ASSERT_EQUAL(d->reload(H, state, err, sizeof err), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "plugins.webhook.endpoints[0].url"));
    json_decref(M.config);
    M.config = good; /* what the host does: the old block is current again */
    mock_finish_run(PYOCO_STATUS_COMPLETED);
    CU_ASSERT_FATAL(loop_until(one_done));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                               json_array_get(R.requests, 0), "path")),
                           "/keep");
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

static void test_reload_activates_an_inactive_plugin(void) {
    mock_reset(NULL);
    receiver_start(NULL, 0);
    void *state = mock_start_plugin(json_object());
    mock_finish_run(PYOCO_STATUS_COMPLETED);
    CU_ASSERT_EQUAL(json_object_size(M.outbox), 0);
    json_decref(M.config);
    M.config = endpoint_cfg("/late", NULL, 1);
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(d->reload(H, state, err, sizeof err), 0);
    mock_finish_run(PYOCO_STATUS_COMPLETED);
    CU_ASSERT_FATAL(loop_until(one_done));
    CU_ASSERT_EQUAL(json_array_size(R.requests), 1);
    stop_and_fini(state);
    receiver_stop();
    mock_clear();
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("webhook_events", NULL, NULL);
    CU_add_test(s, "finished -> outbox", test_finished_goes_to_outbox);
    CU_add_test(s, "restored entries", test_restored_entries);
    s = CU_add_suite("webhook_http", NULL, NULL);
    CU_add_test(s, "delivered and signed", test_http_delivered_and_signed);
    CU_add_test(s, "500 then 200", test_http_500_then_200);
    CU_add_test(s, "redirect not followed", test_http_redirect_not_followed);
    CU_add_test(s, "refused gives up", test_http_refused_gives_up);
    CU_add_test(s, "huge response capped", test_http_huge_response_capped);
    CU_add_test(s, "error with huge body", test_http_error_with_huge_body);
    CU_add_test(s, "stop drains in flight", test_http_stop_drains_in_flight);
    CU_add_test(s, "max_in_flight queues", test_max_in_flight_queues);
    CU_add_test(s, "reload moves deliveries", test_reload_moves_deliveries);
    CU_add_test(s, "reload bad config",
                test_reload_bad_config_keeps_the_old_one);
    CU_add_test(s, "reload activates",
                test_reload_activates_an_inactive_plugin);
    CU_add_test(s, "restored entry delivered",
                test_http_restored_entry_delivered);
}
