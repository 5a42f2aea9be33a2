/* mock_api.c - see mock_api.h. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_api.h"

mock M;

static void m_logv(pyoco_host *h, pyoco_log_level lvl, const char *fmt,
                   va_list ap) {
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char msg[2048];
    int n = snprintf(msg, sizeof msg, "%s ", names[lvl & 3]);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    if (getenv("WH_TEST_VERBOSE"))
        fprintf(stderr, "  log| %s\n", msg);
    json_array_append_new(M.logs, json_string(msg));
}

__attribute__((format(printf, 3, 4))) static void
m_log(pyoco_host *h, pyoco_log_level lvl, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    m_logv(h, lvl, fmt, ap);
    va_end(ap);
}

static const char *m_config_string(pyoco_host *h, const char *key) {
    return json_string_value(json_object_get(M.config, key));
}

static int m_config_int(pyoco_host *h, const char *key, int64_t *out) {
    const char *s = m_config_string(h, key);
    if (!s)
        return -ENOENT;
    *out = strtoll(s, NULL, 10);
    return 0;
}

static int m_config_double(pyoco_host *h, const char *key, double *out) {
    const char *s = m_config_string(h, key);
    if (!s)
        return -ENOENT;
    *out = strtod(s, NULL);
    return 0;
}

static const json_t *m_config_json(pyoco_host *h, const char *key) {
    return json_object_get(M.config, key);
}

static const char *m_config_where(pyoco_host *h, const char *key) {
    return key && json_object_get(M.config, key) ? "test.yaml:7" : "";
}

static int m_subscribe(pyoco_host *h, uint32_t kind, pyoco_event_fn fn,
                       void *ud, pyoco_free_fn free_fn) {
    if (kind >= PYOCO_EV_KIND_COUNT)
        return -EINVAL;
    M.subs[kind] = fn;
    M.sub_ud[kind] = ud;
    return (int)kind + 1;
}

static int m_run_get(pyoco_host *h, const char *run_id, json_t **out) {
    if (!M.run)
        return -ENOENT;
    *out = json_deep_copy(M.run);
    return 0;
}

static int m_outbox_put(pyoco_host *h, const char *id, const json_t *data) {
    return json_object_set_new(M.outbox, id, json_deep_copy(data)) ? -ENOMEM
                                                                   : 0;
}

static int m_outbox_done(pyoco_host *h, const char *id) {
    json_object_del(M.outbox, id);
    json_array_append_new(M.done_ids, json_string(id));
    return 0;
}

static struct event_base *m_event_base(pyoco_host *h) {
    return M.base;
}

static double m_now(pyoco_host *h) {
    return M.now;
}

static const char *m_server_version(pyoco_host *h) {
    return "0.1.0-test";
}

static void m_stop_done(pyoco_host *h) {
    M.stop_done_calls++;
}

static const char *m_plugin_name(pyoco_host *h) {
    return "webhook";
}

static int m_metric(pyoco_host *h, const pyoco_metric_sample *s) {
    json_t *labels = json_object();
    for (size_t i = 0; i < s->nlabels; i++)
        json_object_set_new(labels, s->label_names[i],
                            json_string(s->label_values[i]));
    json_array_append_new(
        M.metrics, json_pack("{s:s, s:i, s:f, s:o}", "name", s->name, "op",
                             (int)s->op, "value", s->value, "labels", labels));
    return 0;
}

const pyoco_api mock_api = {
    .size = sizeof(pyoco_api),
    .abi_major = PYOCO_ABI_MAJOR,
    .abi_minor = PYOCO_ABI_MINOR,
    .log = m_log,
    .logv = m_logv,
    .config_string = m_config_string,
    .config_int = m_config_int,
    .config_double = m_config_double,
    .config_json = m_config_json,
    .config_where = m_config_where,
    .subscribe = m_subscribe,
    .run_get = m_run_get,
    .outbox_put = m_outbox_put,
    .outbox_done = m_outbox_done,
    .event_base = m_event_base,
    .now = m_now,
    .server_version = m_server_version,
    .stop_done = m_stop_done,
    .plugin_name = m_plugin_name,
    .metric = m_metric,
};

void mock_clear(void) {
    json_decref(M.config);
    json_decref(M.run);
    json_decref(M.outbox);
    json_decref(M.done_ids);
    json_decref(M.metrics);
    json_decref(M.logs);
    if (M.base)
        event_base_free(M.base);
    memset(&M, 0, sizeof M);
}

void mock_reset(json_t *config) {
    mock_clear();
    M.config = config ? config : json_object();
    M.outbox = json_object();
    M.done_ids = json_array();
    M.metrics = json_array();
    M.logs = json_array();
    M.base = event_base_new();
    M.now = 1700000000.25;
}

void mock_publish(pyoco_event *ev) {
    ev->size = sizeof *ev;
    if (M.subs[ev->kind])
        M.subs[ev->kind](ev, M.sub_ud[ev->kind]);
}

int mock_log_count(const char *needle) {
    int n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(M.logs, i, v) {
        if (strstr(json_string_value(v), needle))
            n++;
    }
    return n;
}

double mock_metric_sum(const char *name, const char *endpoint,
                       const char *outcome) {
    double sum = 0;
    size_t i;
    json_t *v;
    json_array_foreach(M.metrics, i, v) {
        json_t *labels = json_object_get(v, "labels");
        const char *ep = json_string_value(json_object_get(labels, "endpoint"));
        const char *oc = json_string_value(json_object_get(labels, "outcome"));
        if (strcmp(json_string_value(json_object_get(v, "name")), name))
            continue;
        if (endpoint && (!ep || strcmp(ep, endpoint)))
            continue;
        if (outcome && (!oc || strcmp(oc, outcome)))
            continue;
        sum += json_number_value(json_object_get(v, "value"));
    }
    return sum;
}

json_t *mock_sample_run(void) {
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

/* Init and start the plugin on the current mock (its loop stays). */
void *mock_start_plugin(json_t *config) {
    json_decref(M.config);
    M.config = config;
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    void *state = NULL;
    char err[512] = "";
    int r = d->init((pyoco_host *)&M, &mock_api, &state, err, sizeof err);
    if (r)
        fprintf(stderr, "\ninit: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    CU_ASSERT_EQUAL(d->start((pyoco_host *)&M, state), 0);
    return state;
}

void mock_finish_run(pyoco_run_status status) {
    pyoco_event ev = {.kind = PYOCO_EV_RUN_FINISHED,
                      .run_id = "9811b55d-b60b-49e8-b8e0-384f4d7dc86a",
                      .flow_name = "demo",
                      .status = status,
                      .start_time = 1000.5,
                      .end_time = 1001.75,
                      .run_duration_s = 1.25};
    mock_publish(&ev);
}
