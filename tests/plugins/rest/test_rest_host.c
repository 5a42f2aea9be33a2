/* Unit tests of the rest plugin's handlers against a mock host (the
 * collectd way): the plugin's descriptor is initialised with a pyoco_api
 * table whose registry calls only record what they were given. Covers what
 * the runtime tests cannot reach: the durability barrier (deferred reply,
 * storage failure -> 503), and that a rejected request never reaches the
 * registry. */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pyoco/plugin.h>

const pyoco_plugin_desc *pyoco_plugin_entry(void);

/* ---- a fake request ------------------------------------------------------ */

struct pyoco_request {
    unsigned method;
    const char *path;
    const char *run_id;      /* the {run_id} parameter */
    const char *query[4][2]; /* name, value */
    const char *body;
    size_t len;
    int replies; /* must end at exactly 1 */
    int status;
    char *reply; /* the body sent */
};

/* ---- the mock host ------------------------------------------------------- */

enum durable_mode { D_SYNC, D_DEFER, D_FAIL_LATER, D_FAIL_NOW };

#define MAX_ROUTES 16

static struct {
    struct {
        unsigned methods;
        const char *pattern;
        pyoco_route_fn fn;
        void *ud;
    } routes[MAX_ROUTES];
    int nroutes;
    enum durable_mode durable;
    pyoco_durable_fn pending_fn;
    void *pending_ud;
    int registry_calls;
    char last_flow[64];
    char last_status[32];
    size_t last_limit;
    long last_tail;
    char last_task[32];
    int poll_hands_out;
    bool cancel_requested;
    int heartbeat_rc;
} host;

static const char *KNOWN = "11111111-1111-4111-8111-111111111111";

static void m_log(pyoco_host *h, pyoco_log_level l, const char *fmt, ...) {}

static int m_route_add(pyoco_host *h, unsigned methods, const char *pattern,
                       pyoco_route_fn fn, void *ud, pyoco_free_fn free_fn) {
    for (int i = 0; i < host.nroutes; i++)
        if (strcmp(host.routes[i].pattern, pattern) == 0 &&
            (host.routes[i].methods & methods))
            return -EEXIST;
    if (host.nroutes == MAX_ROUTES)
        return -ENOSPC;
    host.routes[host.nroutes].methods = methods;
    host.routes[host.nroutes].pattern = pattern;
    host.routes[host.nroutes].fn = fn;
    host.routes[host.nroutes].ud = ud;
    host.nroutes++;
    return 0;
}

static const char *m_req_param(pyoco_request *r, const char *name) {
    return strcmp(name, "run_id") == 0 ? r->run_id : NULL;
}

static const char *m_req_query(pyoco_request *r, const char *name) {
    for (int i = 0; i < 4 && r->query[i][0]; i++)
        if (strcmp(r->query[i][0], name) == 0)
            return r->query[i][1];
    return NULL;
}

static const char *m_req_body(pyoco_request *r, size_t *len) {
    *len = r->len;
    return r->body;
}

static int m_reply(pyoco_request *r, int status, const char *ct,
                   const char *body, size_t len) {
    CU_ASSERT_STRING_EQUAL(ct, "application/json");
    r->replies++;
    r->status = status;
    free(r->reply);
    r->reply = strndup(body, len);
    return 0;
}

static int m_reply_json(pyoco_request *r, int status, const json_t *body) {
    char *s = json_dumps(body, JSON_COMPACT);
    int rc = m_reply(r, status, "application/json", s, strlen(s));
    free(s);
    return rc;
}

static int m_reply_error(pyoco_request *r, int status, const char *detail) {
    json_t *o = json_pack("{s:s}", "detail", detail);
    int rc = m_reply_json(r, status, o);
    json_decref(o);
    return rc;
}

static int m_when_durable(pyoco_host *h, pyoco_durable_fn fn, void *ud) {
    switch (host.durable) {
    case D_SYNC:
        fn(0, ud);
        return 0;
    case D_DEFER:
    case D_FAIL_LATER:
        CU_ASSERT_PTR_NULL(host.pending_fn);
        host.pending_fn = fn;
        host.pending_ud = ud;
        return 0;
    case D_FAIL_NOW:
        return -EIO;
    }
    return -EINVAL;
}

/* The storage plugin finishing its commit. */
static void finish_commit(void) {
    pyoco_durable_fn fn = host.pending_fn;
    CU_ASSERT_PTR_NOT_NULL_FATAL(fn);
    host.pending_fn = NULL;
    fn(host.durable == D_FAIL_LATER ? -EIO : 0, host.pending_ud);
}

static int m_run_submit(pyoco_host *h, const char *flow, const json_t *params,
                        const json_t *tags, char id[37]) {
    host.registry_calls++;
    snprintf(host.last_flow, sizeof host.last_flow, "%s", flow);
    strcpy(id, KNOWN);
    return 0;
}

static int m_run_get(pyoco_host *h, const char *id, json_t **out) {
    host.registry_calls++;
    if (strcmp(id, KNOWN) != 0)
        return -ENOENT;
    *out = json_pack("{s:s,s:f}", "run_id", id, "start_time", 1.0);
    return 0;
}

static int m_run_list(pyoco_host *h, const char *status, const char *flow,
                      size_t limit, json_t **out) {
    host.registry_calls++;
    snprintf(host.last_status, sizeof host.last_status, "%s",
             status ? status : "(null)");
    snprintf(host.last_flow, sizeof host.last_flow, "%s",
             flow ? flow : "(null)");
    host.last_limit = limit;
    *out = json_array();
    return 0;
}

/* The text forms rest uses for GETs: the json_t answer, dumped. */
static int dump_to(int rc, json_t *o, char **out, size_t *len) {
    if (rc < 0)
        return rc;
    *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!*out)
        return -ENOMEM;
    *len = strlen(*out);
    return 0;
}
static int m_run_get_text(pyoco_host *h, const char *id, char **out,
                          size_t *len) {
    json_t *o = NULL;
    int rc = m_run_get(h, id, &o);
    return dump_to(rc, o, out, len);
}
static int m_run_list_text(pyoco_host *h, const char *status, const char *flow,
                           size_t limit, char **out, size_t *len) {
    json_t *o = NULL;
    int rc = m_run_list(h, status, flow, limit, &o);
    return dump_to(rc, o, out, len);
}
static int m_reply_ref(pyoco_request *r, int status, const char *ct,
                       const char *body, size_t len, pyoco_free_fn done,
                       void *ud) {
    int rc = m_reply(r, status, ct, body, len);
    if (done)
        done(ud);
    return rc;
}

static int m_run_cancel(pyoco_host *h, const char *id) {
    host.registry_calls++;
    return strcmp(id, KNOWN) == 0 ? 0 : -ENOENT;
}

static int m_worker_poll(pyoco_host *h, const char *worker, const json_t *tags,
                         json_t **out) {
    host.registry_calls++;
    if (host.poll_hands_out)
        *out = json_pack("{s:s,s:s,s:{s:i}}", "run_id", KNOWN, "flow_name",
                         "demo", "params", "x", 1);
    else
        *out = json_pack("{s:n,s:n,s:n}", "run_id", "flow_name", "params");
    return 0;
}

static int m_run_heartbeat(pyoco_host *h, const char *id, const json_t *body,
                           bool *cancel) {
    host.registry_calls++;
    if (strcmp(id, KNOWN) != 0)
        return -ENOENT;
    if (host.heartbeat_rc)
        return host.heartbeat_rc;
    *cancel = host.cancel_requested;
    return 0;
}

static int m_run_logs(pyoco_host *h, const char *id, const char *task,
                      long tail, json_t **out) {
    host.registry_calls++;
    if (strcmp(id, KNOWN) != 0)
        return -ENOENT;
    snprintf(host.last_task, sizeof host.last_task, "%s",
             task ? task : "(null)");
    host.last_tail = tail;
    *out = json_pack("{s:s,s:[]}", "run_status", "RUNNING", "logs");
    return 0;
}

static const char *m_server_version(pyoco_host *h) {
    return "9.9.9";
}

static int m_plugin_info(pyoco_host *h, size_t i, pyoco_plugin_info *out) {
    static const char *names[] = {"storage", "rest"};
    if (i >= 2)
        return -ENOENT;
    out->name = names[i];
    return 0;
}

static pyoco_api api = {
    .size = sizeof(pyoco_api),
    .abi_major = PYOCO_ABI_MAJOR,
    .abi_minor = PYOCO_ABI_MINOR,
    .log = m_log,
    .route_add = m_route_add,
    .req_param = m_req_param,
    .req_query = m_req_query,
    .req_body = m_req_body,
    .reply = m_reply,
    .reply_json = m_reply_json,
    .reply_error = m_reply_error,
    .when_durable = m_when_durable,
    .run_submit = m_run_submit,
    .run_get = m_run_get,
    .run_list = m_run_list,
    .run_get_text = m_run_get_text,
    .run_list_text = m_run_list_text,
    .reply_ref = m_reply_ref,
    .run_cancel = m_run_cancel,
    .worker_poll = m_worker_poll,
    .run_heartbeat = m_run_heartbeat,
    .run_logs = m_run_logs,
    .server_version = m_server_version,
    .plugin_info = m_plugin_info,
};

static void *state;

static int setup(void) {
    memset(&host, 0, sizeof host);
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    char err[128] = "";
    if (d->abi_major != PYOCO_ABI_MAJOR || d->size != sizeof *d)
        return 1;
    if (d->init((pyoco_host *)&host, &api, &state, err, sizeof err) != 0)
        return 1;
    return d->start((pyoco_host *)&host, state);
}

static int teardown(void) {
    pyoco_plugin_entry()->fini((pyoco_host *)&host, state);
    return 0;
}

/* Dispatch like the core: exact method and segment-wise pattern match. */
static void call(pyoco_request *r) {
    for (int i = 0; i < host.nroutes; i++) {
        if (!(host.routes[i].methods & r->method))
            continue;
        const char *p = host.routes[i].pattern, *s = r->path;
        while (*p && *s) {
            if (*p == '{') {
                while (*p && *p != '/')
                    p++;
                while (*s && *s != '/')
                    s++;
            } else if (*p == *s) {
                p++;
                s++;
            } else {
                break;
            }
        }
        if (!*p && !*s) {
            host.routes[i].fn(r, host.routes[i].ud);
            return;
        }
    }
    CU_FAIL("no route");
}

static pyoco_request post(const char *path, const char *run_id,
                          const char *body) {
    pyoco_request r = {.method = PYOCO_HTTP_POST,
                       .path = path,
                       .run_id = run_id,
                       .body = body,
                       .len = body ? strlen(body) : 0};
    return r;
}

static void done(pyoco_request *r, int status, const char *reply) {
    CU_ASSERT_EQUAL(r->replies, 1);
    CU_ASSERT_EQUAL(r->status, status);
    if (reply && r->reply && strcmp(r->reply, reply) != 0)
        fprintf(stderr, "\nreply %s != %s\n", r->reply, reply);
    if (reply)
        CU_ASSERT_STRING_EQUAL(r->reply, reply);
    free(r->reply);
    r->reply = NULL;
}

static const char *HB = "{\"task_states\":{\"t1\":\"RUNNING\"},"
                        "\"run_status\":\"RUNNING\"}";

static void test_routes(void) {
    CU_ASSERT_EQUAL(host.nroutes, 8);
}

static void test_submit_sync(void) {
    host.durable = D_SYNC;
    pyoco_request r = post("/runs", NULL, "{\"flow_name\":\"demo\"}");
    call(&r);
    CU_ASSERT_STRING_EQUAL(host.last_flow, "demo");
    done(&r, 200,
         "{\"run_id\":\"11111111-1111-4111-8111-111111111111\","
         "\"status\":\"PENDING\"}");
}

static void test_reply_waits_for_durability(void) {
    host.durable = D_DEFER;
    pyoco_request r = post("/runs", NULL, "{\"flow_name\":\"demo\"}");
    call(&r);
    CU_ASSERT_EQUAL(r.replies, 0); /* not before the commit */
    finish_commit();
    done(&r, 200,
         "{\"run_id\":\"11111111-1111-4111-8111-111111111111\","
         "\"status\":\"PENDING\"}");

    pyoco_request h = post("/runs/x/heartbeat", KNOWN, HB);
    host.cancel_requested = true;
    call(&h);
    CU_ASSERT_EQUAL(h.replies, 0);
    finish_commit();
    done(&h, 200, "{\"cancel_requested\":true}");
    host.cancel_requested = false;

    host.poll_hands_out = 1;
    pyoco_request p = post("/workers/poll", NULL, "{\"worker_id\":\"w\"}");
    call(&p);
    CU_ASSERT_EQUAL(p.replies, 0);
    finish_commit();
    done(&p, 200,
         "{\"run_id\":\"11111111-1111-4111-8111-111111111111\","
         "\"flow_name\":\"demo\",\"params\":{\"x\":1}}");
    host.poll_hands_out = 0;

    pyoco_request c = post("/runs/x/cancel", KNOWN, NULL);
    call(&c);
    CU_ASSERT_EQUAL(c.replies, 0);
    finish_commit();
    done(&c, 200, "{\"status\":\"CANCELLING\"}");
    host.durable = D_SYNC;
}

static void test_empty_poll_is_immediate(void) {
    host.durable = D_DEFER; /* nothing changed: no barrier to wait for */
    pyoco_request p = post("/workers/poll", NULL, "{\"worker_id\":\"w\"}");
    call(&p);
    CU_ASSERT_PTR_NULL(host.pending_fn);
    done(&p, 200, "{\"run_id\":null,\"flow_name\":null,\"params\":null}");
    host.durable = D_SYNC;
}

static void test_storage_failure_is_503(void) {
    host.durable = D_FAIL_LATER;
    pyoco_request h = post("/runs/x/heartbeat", KNOWN, HB);
    call(&h);
    finish_commit();
    CU_ASSERT_PTR_NOT_NULL(strstr(h.reply, "storage unavailable"));
    done(&h, 503, NULL);

    host.durable = D_FAIL_NOW;
    pyoco_request s = post("/runs", NULL, "{\"flow_name\":\"demo\"}");
    call(&s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.reply, "storage unavailable"));
    done(&s, 503, NULL);
    host.durable = D_SYNC;
}

static void test_invalid_never_reaches_registry(void) {
    const char *bad[][2] = {
        {"/runs", "{\"flow_name\":\"\"}"},
        {"/runs", "not json"},
        {"/workers/poll", "{\"worker_id\":null}"},
        {"/runs/x/heartbeat",
         "{\"task_states\":{},\"run_status\":\"RUNNING\",\"logs\":[7]}"},
    };
    host.registry_calls = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pyoco_request r = post(bad[i][0], KNOWN, bad[i][1]);
        call(&r);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.reply, "\"detail\":[{\"loc\":"));
        done(&r, 422, NULL);
    }
    CU_ASSERT_EQUAL(host.registry_calls, 0);

    pyoco_request q = {
        .method = PYOCO_HTTP_GET, .path = "/runs", .query = {{"limit", "0"}}};
    call(&q);
    done(&q, 422, NULL);
    pyoco_request s = {.method = PYOCO_HTTP_GET,
                       .path = "/runs",
                       .query = {{"status", "DONE"}}};
    call(&s);
    done(&s, 400, "{\"detail\":\"Invalid status 'DONE'\"}");
    CU_ASSERT_EQUAL(host.registry_calls, 0);
}

static void test_registry_errors(void) {
    pyoco_request h = post("/runs/x/heartbeat", "nope", HB);
    call(&h);
    done(&h, 404, "{\"detail\":\"Run not found\"}");
    host.heartbeat_rc = -EINVAL;
    pyoco_request h2 = post("/runs/x/heartbeat", KNOWN, HB);
    call(&h2);
    done(&h2, 422, NULL);
    host.heartbeat_rc = -ENOMEM;
    pyoco_request h3 = post("/runs/x/heartbeat", KNOWN, HB);
    call(&h3);
    done(&h3, 500, NULL);
    host.heartbeat_rc = 0;
    pyoco_request c = post("/runs/x/cancel", "nope", NULL);
    call(&c);
    done(&c, 404, "{\"detail\":\"Run not found\"}");
}

static void test_queries(void) {
    pyoco_request l = {
        .method = PYOCO_HTTP_GET,
        .path = "/runs",
        .query = {{"status", "RUNNING"}, {"flow", "f"}, {"limit", "200"}}};
    call(&l);
    done(&l, 200, "[]");
    CU_ASSERT_STRING_EQUAL(host.last_status, "RUNNING");
    CU_ASSERT_STRING_EQUAL(host.last_flow, "f");
    CU_ASSERT_EQUAL(host.last_limit, 200);

    pyoco_request all = {.method = PYOCO_HTTP_GET, .path = "/runs"};
    call(&all);
    done(&all, 200, "[]");
    CU_ASSERT_STRING_EQUAL(host.last_status, "(null)");
    CU_ASSERT_EQUAL(host.last_limit, (size_t)-1); /* no limit */

    pyoco_request g = {.method = PYOCO_HTTP_GET,
                       .path = "/runs/x/logs",
                       .run_id = KNOWN,
                       .query = {{"task", "t1"}, {"tail", "3"}}};
    call(&g);
    done(&g, 200, "{\"run_status\":\"RUNNING\",\"logs\":[]}");
    CU_ASSERT_STRING_EQUAL(host.last_task, "t1");
    CU_ASSERT_EQUAL(host.last_tail, 3);
    pyoco_request g2 = {
        .method = PYOCO_HTTP_GET, .path = "/runs/x/logs", .run_id = KNOWN};
    call(&g2);
    done(&g2, 200, NULL);
    CU_ASSERT_STRING_EQUAL(host.last_task, "(null)");
    CU_ASSERT_EQUAL(host.last_tail, -1);
}

static void test_health(void) {
    pyoco_request r = {.method = PYOCO_HTTP_GET, .path = "/health"};
    call(&r);
    done(&r, 200,
         "{\"status\":\"ok\",\"version\":\"9.9.9\",\"plugins\":[\"storage\","
         "\"rest\"]}");
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("rest_host", setup, teardown);
    CU_add_test(s, "routes", test_routes);
    CU_add_test(s, "submit_sync", test_submit_sync);
    CU_add_test(s, "reply_waits_for_durability",
                test_reply_waits_for_durability);
    CU_add_test(s, "empty_poll_is_immediate", test_empty_poll_is_immediate);
    CU_add_test(s, "storage_failure_is_503", test_storage_failure_is_503);
    CU_add_test(s, "invalid_never_reaches_registry",
                test_invalid_never_reaches_registry);
    CU_add_test(s, "registry_errors", test_registry_errors);
    CU_add_test(s, "queries", test_queries);
    CU_add_test(s, "health", test_health);
}
