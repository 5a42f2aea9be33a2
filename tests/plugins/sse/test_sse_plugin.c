/* CUnit: the whole sse plugin against a mock host - paths the real server
 * reaches only by chance or timing: exact drop accounting and the opening
 * burst, eviction with open streams, close callbacks, the LRU of run
 * histories, stop, reload. The mock's "client" reads only when told. */
#include <CUnit/Basic.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pyoco/plugin.h>

PYOCO_PLUGIN_EXPORT const pyoco_plugin_desc *pyoco_plugin_entry(void);

/* ---- the mock host ------------------------------------------------------- */

struct pyoco_host {
    int unused;
};

struct pyoco_request {
    const char *run_id;
    const char *last_event_id; /* header */
    int status;                /* reply_error / reply_start */
    char detail[128];
    bool started, ended, connection_close;
    char *out;
    size_t len, consumed; /* consumed: what the client has read */
    pyoco_close_fn close_fn;
    void *close_ud;
};

static struct pyoco_host g_host;
static struct event_base *g_base;
static pyoco_event_fn g_sub;
static void *g_sub_ud;
static pyoco_route_fn g_route;
static void *g_route_ud;
static json_t *g_runs; /* run_id -> run object */
static json_t *g_config;
static double g_streams_gauge = -1, g_dropped_total;
static uint64_t g_seq;

static void m_log(pyoco_host *h, pyoco_log_level l, const char *fmt, ...) {}
static const json_t *m_config_json(pyoco_host *h, const char *key) {
    return json_object_get(g_config, key);
}
static int m_config_int(pyoco_host *h, const char *key, int64_t *out) {
    json_t *v = json_object_get(g_config, key);
    if (!v)
        return -ENOENT;
    *out = json_integer_value(v);
    return 0;
}
static int m_config_double(pyoco_host *h, const char *key, double *out) {
    json_t *v = json_object_get(g_config, key);
    if (!v)
        return -ENOENT;
    *out = json_number_value(v);
    return 0;
}
static const char *m_config_where(pyoco_host *h, const char *key) {
    return "pyoco.yaml:3";
}
static int m_subscribe(pyoco_host *h, uint32_t kind, pyoco_event_fn fn,
                       void *ud, pyoco_free_fn free_fn) {
    g_sub = fn;
    g_sub_ud = ud;
    return 1;
}
static int m_route_add(pyoco_host *h, unsigned methods, const char *pattern,
                       pyoco_route_fn fn, void *ud, pyoco_free_fn free_fn) {
    CU_ASSERT_STRING_EQUAL(pattern, "/runs/{run_id}/events");
    g_route = fn;
    g_route_ud = ud;
    return 0;
}
static const char *m_req_param(pyoco_request *r, const char *name) {
    return strcmp(name, "run_id") == 0 ? r->run_id : NULL;
}
static const char *m_req_query(pyoco_request *r, const char *name) {
    return NULL;
}
static const char *m_req_header(pyoco_request *r, const char *name) {
    return strcmp(name, "Last-Event-ID") == 0 ? r->last_event_id : NULL;
}
static int m_reply_error(pyoco_request *r, int status, const char *detail) {
    r->status = status;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
    r->ended = true;
    return 0;
}
static int m_add_header(pyoco_request *r, const char *n, const char *v) {
    if (!strcmp(n, "Connection") && !strcmp(v, "close"))
        r->connection_close = true;
    return 0;
}
static int m_run_get(pyoco_host *h, const char *id, json_t **out) {
    json_t *run = json_object_get(g_runs, id);
    if (!run)
        return -ENOENT;
    *out = json_deep_copy(run);
    return 0;
}
static struct event_base *m_event_base(pyoco_host *h) {
    return g_base;
}
static int m_metric(pyoco_host *h, const pyoco_metric_sample *m) {
    if (!strcmp(m->name, "pyoco_sse_streams"))
        g_streams_gauge = m->value;
    else if (!strcmp(m->name, "pyoco_sse_dropped_total"))
        g_dropped_total += m->value;
    return 0;
}
static int m_reply_start(pyoco_request *r, int status, const char *ct) {
    CU_ASSERT_FALSE(r->started);
    CU_ASSERT_STRING_EQUAL(ct, "text/event-stream");
    r->status = status;
    r->started = true;
    return 0;
}
static int m_reply_chunk(pyoco_request *r, const char *d, size_t n) {
    CU_ASSERT_TRUE(r->started && !r->ended);
    r->out = realloc(r->out, r->len + n + 1);
    memcpy(r->out + r->len, d, n);
    r->len += n;
    r->out[r->len] = '\0';
    return 0;
}
static int m_reply_end(pyoco_request *r) {
    CU_ASSERT_TRUE(r->started);
    CU_ASSERT_FALSE(r->ended); /* exactly once */
    r->ended = true;
    return 0;
}
static size_t m_pending(pyoco_request *r) {
    return r->len - r->consumed;
}
static int m_on_close(pyoco_request *r, pyoco_close_fn fn, void *ud) {
    r->close_fn = fn;
    r->close_ud = ud;
    return 0;
}

static const pyoco_api g_api = {
    .size = sizeof(pyoco_api),
    .abi_major = PYOCO_ABI_MAJOR,
    .abi_minor = PYOCO_ABI_MINOR,
    .log = m_log,
    .config_int = m_config_int,
    .config_double = m_config_double,
    .config_json = m_config_json,
    .config_where = m_config_where,
    .subscribe = m_subscribe,
    .route_add = m_route_add,
    .req_param = m_req_param,
    .req_query = m_req_query,
    .req_header = m_req_header,
    .reply_error = m_reply_error,
    .req_add_header = m_add_header,
    .run_get = m_run_get,
    .event_base = m_event_base,
    .metric = m_metric,
    .reply_start = m_reply_start,
    .reply_chunk = m_reply_chunk,
    .reply_end = m_reply_end,
    .req_output_pending = m_pending,
    .req_on_close = m_on_close,
};

/* ---- helpers --------------------------------------------------------------
 */

static const pyoco_plugin_desc *g_desc;
static void *g_state;

static void plugin_up(const char *config_json) {
    g_base = event_base_new();
    g_runs = json_object();
    g_config = json_loads(config_json, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g_config);
    g_streams_gauge = -1;
    g_dropped_total = 0;
    g_seq = 0;
    g_desc = pyoco_plugin_entry();
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(
        g_desc->init(&g_host, &g_api, &g_state, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(g_desc->start(&g_host, g_state), 0);
    CU_ASSERT_EQUAL(g_streams_gauge, 0);
}

static void plugin_down(void) {
    g_desc->stop(&g_host, g_state);
    g_desc->fini(&g_host, g_state);
    json_decref(g_runs);
    json_decref(g_config);
    event_base_free(g_base);
}

static void add_run(const char *id, const char *status) {
    json_object_set_new(
        g_runs, id,
        json_pack("{s:s, s:s, s:[]}", "run_id", id, "status", status, "logs"));
}

static void publish(uint32_t kind, const char *run_id, pyoco_run_status st,
                    const json_t *logs) {
    pyoco_event ev = {.size = sizeof(ev), .kind = kind, .seq = ++g_seq};
    ev.run_id = run_id;
    ev.status = st;
    ev.logs = logs;
    ev.task_duration_ms = -1;
    ev.run_duration_s = -1;
    g_sub(&ev, g_sub_ud);
}

static void publish_log(const char *run_id, size_t bytes) {
    char *text = malloc(bytes + 1);
    memset(text, 'q', bytes);
    text[bytes] = '\0';
    json_t *logs = json_pack("[{s:i, s:s, s:s, s:s}]", "seq", 0, "task", "t",
                             "stream", "stdout", "text", text);
    free(text);
    publish(PYOCO_EV_LOGS_APPENDED, run_id, PYOCO_STATUS_RUNNING, logs);
    json_decref(logs);
}

static pyoco_request *open_req(const char *run_id, const char *last_id) {
    pyoco_request *r = calloc(1, sizeof(*r));
    r->run_id = run_id;
    r->last_event_id = last_id;
    g_route(r, g_route_ud);
    return r;
}

static void req_free(pyoco_request *r) {
    free(r->out);
    free(r);
}

static size_t count(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* ---- tests ----------------------------------------------------------------
 */

static void test_404_503_and_headers(void) {
    plugin_up("{\"max_streams\": 1, \"keepalive\": 0}");
    add_run("r1", "PENDING");
    pyoco_request *a = open_req("nope", NULL);
    CU_ASSERT_EQUAL(a->status, 404);
    CU_ASSERT_STRING_EQUAL(a->detail, "Run not found");
    pyoco_request *b = open_req("r1", NULL);
    CU_ASSERT_EQUAL(b->status, 200);
    CU_ASSERT_TRUE(b->connection_close);
    CU_ASSERT_FALSE(b->ended);
    CU_ASSERT_EQUAL(g_streams_gauge, 1);
    CU_ASSERT_EQUAL(count(b->out, "event: snapshot\n"), 1);
    pyoco_request *c = open_req("r1", NULL);
    CU_ASSERT_EQUAL(c->status, 503);
    plugin_down(); /* stop ends b */
    CU_ASSERT_TRUE(b->ended);
    req_free(a);
    req_free(b);
    req_free(c);
}

/* The opening burst is not held against the client; after it, the bound
 * is exact and the drop counted once. */
static void test_burst_then_drop(void) {
    plugin_up("{\"max_buffer_bytes\": 4096, \"keepalive\": 0}");
    add_run("r1", "RUNNING");
    json_t *logs = json_object_get(json_object_get(g_runs, "r1"), "logs");
    char big[20000];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_array_append_new(logs, json_pack("{s:s}", "text", big));
    pyoco_request *r = open_req("r1", NULL);
    CU_ASSERT_TRUE(r->len > 20000);
    CU_ASSERT_FALSE(r->ended);
    /* a small event on top of the unread snapshot: still fine */
    publish_log("r1", 100);
    CU_ASSERT_FALSE(r->ended);
    /* the client reads everything: now the plain bound applies */
    r->consumed = r->len;
    publish_log("r1", 3000); /* 3000 + framing < 4096 */
    CU_ASSERT_FALSE(r->ended);
    publish_log("r1", 3000); /* ~6100 unread > 4096 */
    CU_ASSERT_TRUE(r->ended);
    CU_ASSERT_EQUAL(g_dropped_total, 1);
    CU_ASSERT_EQUAL(g_streams_gauge, 0);
    size_t len = r->len;
    publish_log("r1", 10); /* nothing more goes to a dropped stream */
    CU_ASSERT_EQUAL(r->len, len);
    plugin_down();
    req_free(r);
}

static void test_client_close_and_finish(void) {
    plugin_up("{\"keepalive\": 0}");
    add_run("r1", "RUNNING");
    pyoco_request *a = open_req("r1", NULL);
    pyoco_request *b = open_req("r1", NULL);
    CU_ASSERT_EQUAL(g_streams_gauge, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a->close_fn);
    a->close_fn(a, a->close_ud); /* the client went away */
    CU_ASSERT_TRUE(a->ended);
    CU_ASSERT_EQUAL(g_streams_gauge, 1);
    CU_ASSERT_EQUAL(g_dropped_total, 0);
    publish(PYOCO_EV_RUN_FINISHED, "r1", PYOCO_STATUS_FAILED, NULL);
    CU_ASSERT_TRUE(b->ended);
    CU_ASSERT_EQUAL(count(b->out, "event: finished\n"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(b->out, "event: end\ndata: "
                                          "{\"status\":\"FAILED\"}\n\n"));
    CU_ASSERT_EQUAL(g_streams_gauge, 0);
    plugin_down();
    req_free(a);
    req_free(b);
}

/* Retention evicts a run whose stream is still open (not reachable over
 * HTTP: terminal runs' streams end first): the stream ends, the history
 * goes, a resume then resets. */
static void test_evicted_with_open_stream(void) {
    plugin_up("{\"keepalive\": 0}");
    add_run("r1", "RUNNING");
    pyoco_request *a = open_req("r1", NULL);
    publish_log("r1", 10);
    publish(PYOCO_EV_RUN_EVICTED, "r1", PYOCO_STATUS_COMPLETED, NULL);
    CU_ASSERT_TRUE(a->ended);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->out, "event: end\n"));
    pyoco_request *b = open_req("r1", "2.0");
    CU_ASSERT_EQUAL(count(b->out, "event: reset\n"), 1);
    CU_ASSERT_EQUAL(count(b->out, "event: snapshot\n"), 1);
    plugin_down();
    req_free(a);
    req_free(b);
}

/* replay_runs 2: the least recently used history without a stream goes. */
static void test_lru_of_histories(void) {
    plugin_up("{\"keepalive\": 0, \"replay_runs\": 2}");
    const char *ids[] = {"r1", "r2", "r3"};
    char last[3][32];
    for (int i = 0; i < 3; i++) {
        add_run(ids[i], "RUNNING");
        pyoco_request *r = open_req(ids[i], NULL);
        publish_log(ids[i], 10);
        snprintf(last[i], sizeof(last[i]), "%llu.0", (unsigned long long)g_seq);
        r->close_fn(r, r->close_ud);
        req_free(r);
    }
    for (int i = 0; i < 3; i++)
        publish_log(ids[i], 20); /* unwatched runs with history: kept */
    /* r1's history was dropped when r3's stream closed */
    pyoco_request *a = open_req("r1", last[0]);
    CU_ASSERT_EQUAL(count(a->out, "event: reset\n"), 1);
    pyoco_request *b = open_req("r3", last[2]);
    CU_ASSERT_EQUAL(count(b->out, "event: reset\n"), 0);
    CU_ASSERT_EQUAL(count(b->out, "event: snapshot\n"), 0);
    CU_ASSERT_EQUAL(count(b->out, "event: log\n"), 1); /* the 20-byte one */
    plugin_down();
    req_free(a);
    req_free(b);
}

static void test_stopping(void) {
    plugin_up("{\"keepalive\": 0}");
    add_run("r1", "RUNNING");
    pyoco_request *a = open_req("r1", NULL);
    publish(PYOCO_EV_SERVER_STOPPING, NULL, PYOCO_STATUS_NONE, NULL);
    CU_ASSERT_TRUE(a->ended);
    CU_ASSERT_PTR_NULL(strstr(a->out, "event: end\n")); /* the run goes on */
    pyoco_request *b = open_req("r1", NULL);
    CU_ASSERT_EQUAL(b->status, 503);
    plugin_down();
    req_free(a);
    req_free(b);
}

static void test_reload(void) {
    plugin_up("{\"keepalive\": 0, \"max_streams\": 1}");
    add_run("r1", "RUNNING");
    pyoco_request *a = open_req("r1", NULL);
    json_object_set_new(g_config, "max_streams", json_integer(2));
    json_object_set_new(g_config, "keepalive", json_real(0.5));
    char err[256] = "";
    CU_ASSERT_EQUAL(g_desc->reload(&g_host, g_state, err, sizeof(err)), 0);
    pyoco_request *b = open_req("r1", NULL);
    CU_ASSERT_EQUAL(b->status, 200);
    json_object_set_new(g_config, "max_streams", json_integer(0));
    CU_ASSERT_EQUAL(g_desc->reload(&g_host, g_state, err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(err, "pyoco.yaml:3: plugins.sse.max_streams"));
    pyoco_request *c = open_req("r1", NULL); /* 2 still applies */
    CU_ASSERT_EQUAL(c->status, 503);
    plugin_down();
    req_free(a);
    req_free(b);
    req_free(c);
}

static void test_bad_config(void) {
    const char *bad[] = {"{\"keepalive\": -1}", "{\"replay_events\": 0}",
                         "{\"max_buffer_bytes\": 10}"};
    for (size_t i = 0; i < 3; i++) {
        g_config = json_loads(bad[i], 0, NULL);
        const pyoco_plugin_desc *d = pyoco_plugin_entry();
        void *state = NULL;
        char err[256] = "";
        CU_ASSERT_EQUAL(d->init(&g_host, &g_api, &state, err, sizeof(err)),
                        -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "plugins.sse."));
        CU_ASSERT_PTR_NULL(state);
        json_decref(g_config);
    }
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("sse plugin on a mock host", NULL, NULL);
    CU_add_test(s, "404, 503 and headers", test_404_503_and_headers);
    CU_add_test(s, "opening burst, then drop", test_burst_then_drop);
    CU_add_test(s, "client close and finish", test_client_close_and_finish);
    CU_add_test(s, "evicted with an open stream",
                test_evicted_with_open_stream);
    CU_add_test(s, "LRU of histories", test_lru_of_histories);
    CU_add_test(s, "server stopping", test_stopping);
    CU_add_test(s, "reload", test_reload);
    CU_add_test(s, "bad config", test_bad_config);
}
