/* libFuzzer target: the rest plugin's route handlers over the REAL core
 * registry. A mock pyoco_api (like tests/plugins/rest/test_rest_host.c)
 * routes registry calls to pyoco_registry_* and records the reply.
 *
 * Input: up to MAX_REQS requests separated by "\n@@\n". Each request is
 *   byte 0: route index (mod the routes the plugin added)
 *   byte 1: bit0 {run_id} = a real id (picked by bits 4..7) instead of the
 *           fuzzed text; bits 2..3 durability mode (0 sync, 1 deferred ok,
 *           2 deferred -EIO, 3 immediate -EIO)
 *   then "<run_id text>\n<query k=v&k=v>\n<body...>".
 * Invariants (abort otherwise): exactly one reply, Content-Type JSON, the
 * body parses as JSON, status 2xx/4xx (503 only when durability failed);
 * afterwards every known run still dumps as valid JSON. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pyoco/plugin.h>

#include "bus.h"
#include "registry.h"

const pyoco_plugin_desc *pyoco_plugin_entry(void);

#define MAX_ROUTES 16
#define MAX_QUERY 8
#define MAX_IDS 16
#define MAX_REQS 8

struct pyoco_request {
    char *param;
    char *query[MAX_QUERY][2];
    int nquery;
    char *body;
    size_t len;
    int replies;
    int status;
};

static struct {
    struct {
        unsigned methods;
        pyoco_route_fn fn;
        void *ud;
    } routes[MAX_ROUTES];
    int nroutes;
    void *state;
    pyoco_bus *bus;
    pyoco_registry *reg;
    int durable_mode;
    pyoco_durable_fn pending_fn;
    void *pending_ud;
    char ids[MAX_IDS][37];
    int nids;
} host;

static void fail(const char *what, const pyoco_request *r) {
    fprintf(stderr, "fuzz_rest invariant: %s (status %d, replies %d)\n", what,
            r ? r->status : 0, r ? r->replies : 0);
    abort();
}

static void m_log(pyoco_host *h, pyoco_log_level l, const char *fmt, ...) {}

static int m_route_add(pyoco_host *h, unsigned methods, const char *pattern,
                       pyoco_route_fn fn, void *ud, pyoco_free_fn free_fn) {
    if (host.nroutes == MAX_ROUTES)
        return -ENOSPC;
    host.routes[host.nroutes].methods = methods;
    host.routes[host.nroutes].fn = fn;
    host.routes[host.nroutes].ud = ud;
    host.nroutes++;
    return 0;
}

static const char *m_req_param(pyoco_request *r, const char *name) {
    return strcmp(name, "run_id") == 0 ? r->param : NULL;
}

static const char *m_req_query(pyoco_request *r, const char *name) {
    for (int i = 0; i < r->nquery; i++)
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
    r->replies++;
    r->status = status;
    if (!ct || strcmp(ct, "application/json") != 0)
        fail("content type", r);
    json_error_t err;
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, &err);
    if (!j) {
        fprintf(stderr, "reply: %.*s\n", (int)len, body);
        fail("reply is not JSON", r);
    }
    /* Remember ids the plugin handed out so later requests can use them. */
    const char *id = json_string_value(json_object_get(j, "run_id"));
    if (id && strlen(id) == 36 && host.nids < MAX_IDS)
        memcpy(host.ids[host.nids++], id, 37);
    json_decref(j);
    return 0;
}

static int m_reply_json(pyoco_request *r, int status, const json_t *body) {
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        fail("reply_json: cannot dump", r);
    int rc = m_reply(r, status, "application/json", s, strlen(s));
    free(s);
    return rc;
}

static int m_reply_error(pyoco_request *r, int status, const char *detail) {
    /* Like core/http.c: a detail that is not UTF-8 cannot be encoded and
     * degrades to {"detail":"error"} (found by this target: the rest plugin
     * echoes query bytes into details; see README.md). */
    json_t *o = json_pack("{s:s}", "detail", detail);
    if (!o)
        return m_reply(r, status, "application/json", "{\"detail\":\"error\"}",
                       18);
    int rc = m_reply_json(r, status, o);
    json_decref(o);
    return rc;
}

static int m_when_durable(pyoco_host *h, pyoco_durable_fn fn, void *ud) {
    switch (host.durable_mode) {
    case 0:
        fn(0, ud);
        return 0;
    case 1:
    case 2:
        if (host.pending_fn)
            fail("two barriers for one request", NULL);
        host.pending_fn = fn;
        host.pending_ud = ud;
        return 0;
    default:
        return -EIO;
    }
}

static int m_run_submit(pyoco_host *h, const char *flow, const json_t *params,
                        const json_t *tags, char id[37]) {
    return pyoco_registry_submit(host.reg, flow, params, tags, id);
}
static int m_run_get(pyoco_host *h, const char *id, json_t **out) {
    return pyoco_registry_get(host.reg, id, out);
}
static int m_run_list(pyoco_host *h, const char *status, const char *flow,
                      size_t limit, json_t **out) {
    return pyoco_registry_list(host.reg, status, flow, limit, out);
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
    return pyoco_registry_cancel(host.reg, id);
}
static int m_worker_poll(pyoco_host *h, const char *worker, const json_t *tags,
                         json_t **out) {
    return pyoco_registry_poll(host.reg, worker, tags, out);
}
static int m_run_heartbeat(pyoco_host *h, const char *id, const json_t *body,
                           bool *cancel) {
    return pyoco_registry_heartbeat(host.reg, id, body, cancel);
}
static int m_run_logs(pyoco_host *h, const char *id, const char *task,
                      long tail, json_t **out) {
    return pyoco_registry_logs(host.reg, id, task, tail, out);
}
static const char *m_server_version(pyoco_host *h) {
    return "0.0.0-fuzz";
}
static int m_plugin_info(pyoco_host *h, size_t i, pyoco_plugin_info *out) {
    if (i >= 1)
        return -ENOENT;
    out->name = "rest";
    return 0;
}

static const pyoco_api api = {
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

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    char err[128] = "";
    if (d->init((pyoco_host *)&host, &api, &host.state, err, sizeof err) ||
        d->start((pyoco_host *)&host, host.state)) {
        fprintf(stderr, "rest init: %s\n", err);
        abort();
    }
    return 0;
}

/* A fresh registry per input, with two runs (one RUNNING with logs) so
 * short inputs reach the interesting states. Small limits so eviction and
 * log truncation are reachable. */
static void registry_setup(void) {
    pyoco_registry_config cfg = {.max_run_history = 3, .max_log_bytes = 64};
    host.bus = pyoco_bus_new();
    host.reg = pyoco_registry_new(&cfg, host.bus);
    if (!host.bus || !host.reg)
        abort();
    host.nids = 0;
    json_t *params = json_pack("{s:i}", "x", 1);
    json_t *tags = json_pack("[s]", "gpu");
    if (pyoco_registry_submit(host.reg, "demo", params, NULL, host.ids[0]) ||
        pyoco_registry_submit(host.reg, "tagged", NULL, tags, host.ids[1]))
        abort();
    host.nids = 2;
    json_t *got = NULL;
    if (pyoco_registry_poll(host.reg, "w0", NULL, &got))
        abort();
    json_decref(got);
    json_t *hb = json_pack("{s:{s:s},s:s,s:[{s:i,s:s,s:s,s:s,s:f}]}",
                           "task_states", "t1", "RUNNING", "run_status",
                           "RUNNING", "logs", "seq", 0, "task", "t1", "stream",
                           "stdout", "text", "hello", "timestamp", 1.0);
    bool cancel;
    if (pyoco_registry_heartbeat(host.reg, host.ids[0], hb, &cancel))
        abort();
    json_decref(hb);
    json_decref(params);
    json_decref(tags);
}

static void registry_check_and_free(void) {
    for (int i = 0; i < host.nids; i++) {
        json_t *j = NULL;
        int rc = pyoco_registry_get(host.reg, host.ids[i], &j);
        if (rc == -ENOENT)
            continue; /* evicted */
        if (rc)
            fail("GET of a known run failed", NULL);
        char *s = json_dumps(j, JSON_COMPACT);
        json_t *back = s ? json_loads(s, 0, NULL) : NULL;
        if (!back)
            fail("GET of a known run is not valid JSON", NULL);
        json_decref(back);
        free(s);
        json_decref(j);
    }
    json_t *all = NULL;
    if (pyoco_registry_list(host.reg, NULL, NULL, 0, &all) ||
        !json_is_array(all))
        fail("list failed", NULL);
    json_decref(all);
    pyoco_registry_free(host.reg);
    pyoco_bus_free(host.bus);
}

static char *dup_n(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static const uint8_t *find_nl(const uint8_t *p, const uint8_t *end) {
    const uint8_t *q = memchr(p, '\n', (size_t)(end - p));
    return q ? q : end;
}

static void one_request(const uint8_t *data, size_t size) {
    if (size < 2 || host.nroutes == 0)
        return;
    int route = data[0] % host.nroutes;
    uint8_t flags = data[1];
    const uint8_t *p = data + 2, *end = data + size;

    pyoco_request r = {0};
    const uint8_t *e = find_nl(p, end);
    if ((flags & 1) && host.nids > 0)
        r.param = strdup(host.ids[(flags >> 4) % host.nids]);
    else
        r.param = dup_n(p, (size_t)(e - p));
    p = e < end ? e + 1 : end;

    e = find_nl(p, end);
    /* k=v&k=v; the host would percent-decode, so values are raw bytes. */
    const uint8_t *q = p;
    while (q < e && r.nquery < MAX_QUERY) {
        const uint8_t *amp = memchr(q, '&', (size_t)(e - q));
        if (!amp)
            amp = e;
        const uint8_t *eq = memchr(q, '=', (size_t)(amp - q));
        if (!eq)
            eq = amp;
        r.query[r.nquery][0] = dup_n(q, (size_t)(eq - q));
        r.query[r.nquery][1] =
            eq < amp ? dup_n(eq + 1, (size_t)(amp - eq - 1)) : strdup("");
        r.nquery++;
        q = amp < e ? amp + 1 : e;
    }
    p = e < end ? e + 1 : end;

    r.len = (size_t)(end - p);
    r.body = dup_n(p, r.len);

    host.durable_mode = (flags >> 2) & 3;
    host.pending_fn = NULL;
    host.routes[route].fn(&r, host.routes[route].ud);
    if (host.pending_fn) {
        if (r.replies)
            fail("replied before the barrier", &r);
        pyoco_durable_fn fn = host.pending_fn;
        host.pending_fn = NULL;
        fn(host.durable_mode == 2 ? -EIO : 0, host.pending_ud);
    }
    if (r.replies != 1)
        fail("not exactly one reply", &r);
    bool ok = (r.status >= 200 && r.status < 300) ||
              (r.status >= 400 && r.status < 500) ||
              (r.status == 503 && host.durable_mode >= 2);
    if (!ok)
        fail("status", &r);

    free(r.param);
    for (int i = 0; i < r.nquery; i++) {
        free(r.query[i][0]);
        free(r.query[i][1]);
    }
    free(r.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char SEP[] = "\n@@\n";
    registry_setup();
    const uint8_t *p = data, *end = data + size;
    for (int n = 0; n < MAX_REQS && p <= end; n++) {
        const uint8_t *s = memmem(p, (size_t)(end - p), SEP, sizeof SEP - 1);
        if (!s)
            s = end;
        one_request(p, (size_t)(s - p));
        p = s + sizeof SEP - 1;
    }
    registry_check_and_free();
    return 0;
}
