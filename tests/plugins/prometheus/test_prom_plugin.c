/* CUnit tests of the whole prometheus plugin driven through a mock host:
 * descriptor, config errors, events in, /metrics (text and OpenMetrics)
 * out, measurements published by other plugins. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_host.h"
#include "prom_test_util.h"

const pyoco_plugin_desc *pyoco_plugin_entry(void);

/* ---- the plugin through the mock host ------------------------------------ */

static pyoco_host host;
static void *state;

static int plugin_up(const char *config_json) {
    mock_host_init(&host);
    if (config_json) {
        json_decref(host.config);
        host.config = json_loads(config_json, 0, NULL);
    }
    char err[256] = "";
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    state = NULL;
    int rc = d->init(&host, &mock_api, &state, err, sizeof(err));
    if (rc == 0)
        rc = d->start(&host, state);
    else if (getenv("MOCK_VERBOSE"))
        fprintf(stderr, "init: %s\n", err);
    return rc;
}

static void plugin_down(void) {
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    if (state) {
        CU_ASSERT_EQUAL(d->stop(&host, state), 0);
        d->fini(&host, state);
    }
    state = NULL;
    mock_host_free(&host);
}

static void publish_status(const char *flow, pyoco_run_status prev,
                           pyoco_run_status now) {
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_RUN_STATUS;
    ev.run_id = "r1";
    ev.flow_name = flow;
    ev.prev_status = prev;
    ev.status = now;
    ev.task_duration_ms = -1;
    ev.run_duration_s = -1;
    mock_publish(&host, &ev);
}

static void publish_task(const char *task, double ms) {
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_TASK_UPDATED;
    ev.task = task;
    ev.task_state = "SUCCEEDED";
    ev.task_duration_ms = ms;
    ev.run_duration_s = -1;
    mock_publish(&host, &ev);
}

static void publish_finished(const char *flow, double s) {
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_RUN_FINISHED;
    ev.flow_name = flow;
    ev.status = PYOCO_STATUS_COMPLETED;
    ev.task_duration_ms = -1;
    ev.run_duration_s = s;
    mock_publish(&host, &ev);
}

static char *scrape(const char *accept, char *ctype, size_t ctlen) {
    pyoco_request req;
    mock_get(&host, accept, &req);
    CU_ASSERT_EQUAL(req.status, 200);
    if (ctype)
        snprintf(ctype, ctlen, "%s", req.content_type);
    return req.body;
}

static void test_plugin_lifecycle(void) {
    CU_ASSERT_EQUAL_FATAL(plugin_up(NULL), 0);
    CU_ASSERT_EQUAL(host.nsubs, 1);
    CU_ASSERT_EQUAL(host.sub_kind[0], PYOCO_EV_ANY);
    CU_ASSERT_STRING_EQUAL(host.route_pattern, "/metrics");
    CU_ASSERT_TRUE(host.route_methods & PYOCO_HTTP_GET);

    /* Empty server: HELP/TYPE of every compat family, in_progress 0. */
    char ct[128];
    char *t = scrape(NULL, ct, sizeof(ct));
    CU_ASSERT_STRING_EQUAL(ct, "text/plain; version=0.0.4; charset=utf-8");
    ASSERT_LINE(t, "# TYPE pyoco_runs_total counter");
    ASSERT_LINE(t, "# TYPE pyoco_task_duration_seconds histogram");
    ASSERT_LINE(t, "pyoco_runs_in_progress 0.0");
    free(t);

    /* The golden lifecycle. */
    publish_status("demo", PYOCO_STATUS_NONE, PYOCO_STATUS_PENDING);
    publish_status("demo", PYOCO_STATUS_PENDING, PYOCO_STATUS_RUNNING);
    t = scrape(NULL, NULL, 0);
    ASSERT_LINE(t, "pyoco_runs_in_progress 1.0");
    free(t);
    publish_task("t1", 200);
    publish_task("t1", -1); /* a later update without a new duration */
    publish_status("demo", PYOCO_STATUS_RUNNING, PYOCO_STATUS_COMPLETED);
    publish_finished("demo", 0.2085275650024414);
    publish_finished("demo", -1); /* a second terminal status: no observe */

    host.stats.runs_queued = 7;
    host.stats.runs_in_memory = 12;
    t = scrape(NULL, NULL, 0);
    /* The compat part is exactly the golden text, first in the output. */
    CU_ASSERT_EQUAL(strncmp(t, prom_golden, strlen(prom_golden)), 0);
    ASSERT_LINE(t, "pyoco_runs_queued 7.0");
    ASSERT_LINE(t, "pyoco_runs_in_memory 12.0");
    ASSERT_LINE(t, "pyoco_bus_events_total{kind=\"run_status\"} 3.0");
    ASSERT_LINE(t, "pyoco_bus_events_total{kind=\"task_updated\"} 2.0");
    ASSERT_LINE(t, "pyoco_bus_events_total{kind=\"run_finished\"} 2.0");
    ASSERT_LINE(t, "pyoco_build_info{version=\"0.1.0\"} 1.0");
    ASSERT_LINE(t, "pyoco_plugin_info{name=\"prometheus\",version=\"1.0.0\"} "
                   "1.0");
    ASSERT_LINE(t, "# TYPE process_cpu_seconds_total counter");
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nprocess_resident_memory_bytes "));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nprocess_open_fds "));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nprocess_start_time_seconds 1"));
    free(t);

    /* OpenMetrics on request. */
    t = scrape("application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
               ct, sizeof(ct));
    CU_ASSERT_STRING_EQUAL(
        ct, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    ASSERT_LINE(t, "# TYPE pyoco_runs counter");
    ASSERT_LINE(t, "# TYPE process_cpu_seconds counter");
    ASSERT_LINE(t, "pyoco_runs_total{status=\"COMPLETED\"} 1.0");
    size_t n = strlen(t);
    CU_ASSERT_TRUE(n > 6 && strcmp(t + n - 6, "# EOF\n") == 0);
    free(t);
    plugin_down();
}

static void test_plugin_events(void) {
    CU_ASSERT_EQUAL_FATAL(plugin_up(NULL), 0);
    /* Restored RUNNING counts; leaving RUNNING for CANCELLING uncounts. */
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_RUN_RESTORED;
    ev.status = PYOCO_STATUS_RUNNING;
    ev.task_duration_ms = -1;
    ev.run_duration_s = -1;
    mock_publish(&host, &ev);
    ev.status = PYOCO_STATUS_PENDING;
    mock_publish(&host, &ev);
    publish_status("f", PYOCO_STATUS_NONE, PYOCO_STATUS_PENDING);
    publish_status("f", PYOCO_STATUS_PENDING, PYOCO_STATUS_RUNNING);
    publish_status("f", PYOCO_STATUS_RUNNING, PYOCO_STATUS_CANCELLING);
    char *t = scrape(NULL, NULL, 0);
    ASSERT_LINE(t, "pyoco_runs_in_progress 1.0");
    ASSERT_LINE(t, "pyoco_runs_total{status=\"CANCELLING\"} 1.0");
    free(t);

    /* HTTP requests by route pattern and status class. */
    pyoco_event h = {0};
    h.kind = PYOCO_EV_HTTP_REQUEST;
    h.http_method = "POST";
    h.http_route = "/runs/{run_id}/heartbeat";
    h.http_status = 200;
    mock_publish(&host, &h);
    h.http_status = 201;
    mock_publish(&host, &h);
    h.http_route = NULL;
    h.http_status = 404;
    mock_publish(&host, &h);
    h.http_route = "/runs";
    h.http_status = 503;
    mock_publish(&host, &h);

    /* Hostile task and flow names come out escaped. */
    publish_task("q\"b\\n\nx", 50);
    publish_task("\xff\xfe", 10);
    publish_finished("\xe3\x83\x95\xe3\x83\xad\xe3\x83\xbc", 3);
    t = scrape(NULL, NULL, 0);
    ASSERT_LINE(t, "pyoco_http_requests_total{code=\"2xx\",route=\"/runs/"
                   "{run_id}/heartbeat\"} 2.0");
    ASSERT_LINE(t, "pyoco_http_requests_total{code=\"4xx\",route=\"unmatched\"}"
                   " 1.0");
    ASSERT_LINE(t, "pyoco_http_requests_total{code=\"5xx\",route=\"/runs\"} "
                   "1.0");
    ASSERT_LINE(t, "pyoco_task_duration_seconds_bucket{le=\"0.05\",task=\"q\\\""
                   "b\\\\n\\nx\"} 1.0");
    ASSERT_LINE(t, "pyoco_task_duration_seconds_count{task=\"\xef\xbf\xbd\xef"
                   "\xbf\xbd\"} 1.0");
    ASSERT_LINE(t, "pyoco_run_duration_seconds_sum{flow=\"\xe3\x83\x95\xe3\x83"
                   "\xad\xe3\x83\xbc\"} 3.0");
    CU_ASSERT_TRUE(prom_valid_utf8((const unsigned char *)t, strlen(t)));
    free(t);
    plugin_down();
}

static void metric(const char *name, pyoco_metric_type type, pyoco_metric_op op,
                   double v, size_t nl, const char *const *ln,
                   const char *const *lv, const double *b, size_t nb) {
    pyoco_metric_sample m = {0};
    m.size = sizeof(m);
    m.name = name;
    m.help = "help of "
             "x";
    m.type = type;
    m.op = op;
    m.value = v;
    m.nlabels = nl;
    m.label_names = ln;
    m.label_values = lv;
    m.buckets = b;
    m.nbuckets = nb;
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_METRIC;
    ev.metric = &m;
    ev.task_duration_ms = -1;
    ev.run_duration_s = -1;
    mock_publish(&host, &ev);
}

static void test_plugin_metrics(void) {
    CU_ASSERT_EQUAL_FATAL(plugin_up(NULL), 0);
    const char *ln[] = {"outcome", "code"};
    const char *ok[] = {"delivered", "200"};
    const char *ln2[] = {"code", "outcome"};
    const char *ok2[] = {"200", "delivered"};
    metric("pyoco_webhook_deliveries_total", PYOCO_METRIC_COUNTER,
           PYOCO_METRIC_ADD, 1, 2, ln, ok, NULL, 0);
    /* Same label set in another order is the same series. */
    metric("pyoco_webhook_deliveries_total", PYOCO_METRIC_COUNTER,
           PYOCO_METRIC_ADD, 2, 2, ln2, ok2, NULL, 0);
    /* A counter without _total is exposed with it. */
    metric("pyoco_storage_commits", PYOCO_METRIC_COUNTER, PYOCO_METRIC_ADD, 4,
           0, NULL, NULL, NULL, 0);
    metric("pyoco_webhook_pending", PYOCO_METRIC_GAUGE, PYOCO_METRIC_SET, 5, 0,
           NULL, NULL, NULL, 0);
    metric("pyoco_webhook_pending", PYOCO_METRIC_GAUGE, PYOCO_METRIC_ADD, -2, 0,
           NULL, NULL, NULL, 0);
    const double b[] = {0.001, 0.01};
    metric("pyoco_storage_commit_seconds", PYOCO_METRIC_HISTOGRAM,
           PYOCO_METRIC_OBSERVE, 0.005, 0, NULL, NULL, b, 2);
    metric("pyoco_storage_batch_seconds", PYOCO_METRIC_HISTOGRAM,
           PYOCO_METRIC_OBSERVE, 0.3, 0, NULL, NULL, NULL, 0);

    /* Rejected: type change, label change, our own names, bad input. */
    metric("pyoco_webhook_pending", PYOCO_METRIC_COUNTER, PYOCO_METRIC_ADD, 1,
           0, NULL, NULL, NULL, 0);
    metric("pyoco_webhook_deliveries_total", PYOCO_METRIC_COUNTER,
           PYOCO_METRIC_ADD, 1, 1, ln, ok, NULL, 0);
    const char *st[] = {"status"}, *sv[] = {"COMPLETED"};
    metric("pyoco_runs_total", PYOCO_METRIC_COUNTER, PYOCO_METRIC_ADD, 1, 1, st,
           sv, NULL, 0);
    metric("pyoco_runs", PYOCO_METRIC_GAUGE, PYOCO_METRIC_SET, 1, 0, NULL, NULL,
           NULL, 0);
    metric("pyoco_task_duration_seconds_sum", PYOCO_METRIC_GAUGE,
           PYOCO_METRIC_SET, 1, 0, NULL, NULL, NULL, 0);
    metric("bad-name", PYOCO_METRIC_GAUGE, PYOCO_METRIC_SET, 1, 0, NULL, NULL,
           NULL, 0);
    metric("neg_total", PYOCO_METRIC_COUNTER, PYOCO_METRIC_ADD, -1, 0, NULL,
           NULL, NULL, 0);
    metric("wrong_op", PYOCO_METRIC_HISTOGRAM, PYOCO_METRIC_SET, 1, 0, NULL,
           NULL, NULL, 0);
    /* a counter named just _total would have no OpenMetrics name (fuzz) */
    metric("_total", PYOCO_METRIC_COUNTER, PYOCO_METRIC_ADD, 1, 0, NULL, NULL,
           NULL, 0);

    /* No help text: promtool wants one, so a stand-in is printed. */
    pyoco_metric_sample nohelp = {0};
    nohelp.size = sizeof(nohelp);
    nohelp.name = "pyoco_x_inflight";
    nohelp.type = PYOCO_METRIC_GAUGE;
    nohelp.op = PYOCO_METRIC_SET;
    nohelp.value = 2;
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_METRIC;
    ev.metric = &nohelp;
    mock_publish(&host, &ev);

    char *t = scrape(NULL, NULL, 0);
    ASSERT_LINE(t, "# TYPE pyoco_webhook_deliveries_total counter");
    ASSERT_LINE(t, "# HELP pyoco_webhook_deliveries_total help of x");
    ASSERT_LINE(t, "pyoco_webhook_deliveries_total{code=\"200\",outcome="
                   "\"delivered\"} 3.0");
    ASSERT_LINE(t, "pyoco_storage_commits_total 4.0");
    ASSERT_LINE(t, "# HELP pyoco_x_inflight Published by a plugin without a "
                   "help text.");
    ASSERT_LINE(t, "pyoco_x_inflight 2.0");
    ASSERT_LINE(t, "pyoco_webhook_pending 3.0");
    ASSERT_LINE(t, "pyoco_storage_commit_seconds_bucket{le=\"0.001\"} 0.0");
    ASSERT_LINE(t, "pyoco_storage_commit_seconds_bucket{le=\"0.01\"} 1.0");
    ASSERT_LINE(t, "pyoco_storage_batch_seconds_bucket{le=\"0.25\"} 0.0");
    ASSERT_LINE(t, "pyoco_storage_batch_seconds_bucket{le=\"0.5\"} 1.0");
    ASSERT_LINE(t, "pyoco_metrics_rejected_samples_total{reason="
                   "\"type_mismatch\"} 1.0");
    ASSERT_LINE(t, "pyoco_metrics_rejected_samples_total{reason="
                   "\"label_mismatch\"} 1.0");
    ASSERT_LINE(t, "pyoco_metrics_rejected_samples_total{reason="
                   "\"name_clash\"} 3.0");
    ASSERT_LINE(t, "pyoco_metrics_rejected_samples_total{reason=\"invalid\"} "
                   "4.0");
    /* The compat family was not touched. */
    CU_ASSERT_PTR_NULL(strstr(t, "pyoco_runs_total{status=\"COMPLETED\"}"));
    CU_ASSERT_PTR_NULL(strstr(t, "\npyoco_runs "));
    free(t);
    plugin_down();
}

static void test_plugin_cap_and_config(void) {
    CU_ASSERT_EQUAL_FATAL(
        plugin_up("{\"max_series_per_family\": \"2\", \"path\": \"/m\","
                  " \"buckets\": [\"0.5\", 1, \"+Inf\"]}"),
        0);
    CU_ASSERT_STRING_EQUAL(host.route_pattern, "/m");
    publish_task("a", 100);
    publish_task("b", 100);
    publish_task("c", 100);
    publish_task("d", 2000);
    publish_task("a", 700);
    char *t = scrape(NULL, NULL, 0);
    ASSERT_LINE(t, "pyoco_task_duration_seconds_bucket{le=\"0.5\",task=\"a\"}"
                   " 1.0");
    ASSERT_LINE(t, "pyoco_task_duration_seconds_bucket{le=\"1.0\",task=\"a\"}"
                   " 2.0");
    ASSERT_LINE(t, "pyoco_task_duration_seconds_bucket{le=\"+Inf\",task=\"__"
                   "overflow__\"} 2.0");
    ASSERT_LINE(t, "pyoco_task_duration_seconds_sum{task=\"__overflow__\"} "
                   "2.1");
    ASSERT_LINE(t, "pyoco_metrics_label_overflow_total{family=\"pyoco_task_"
                   "duration_seconds\"} 2.0");
    CU_ASSERT_PTR_NULL(strstr(t, "task=\"c\""));
    CU_ASSERT_PTR_NULL(strstr(t, "le=\"60.0\""));
    free(t);
    plugin_down();

    /* Bad settings fail init with a message naming the key. */
    const char *bad[] = {
        "{\"max_series_per_family\": \"0\"}",
        "{\"buckets\": [1, 0.5]}",
        "{\"buckets\": [\"x\"]}",
        "{\"buckets\": []}",
        "{\"path\": \"metrics\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mock_host_init(&host);
        json_decref(host.config);
        host.config = json_loads(bad[i], 0, NULL);
        char err[256] = "";
        void *s = NULL;
        int rc =
            pyoco_plugin_entry()->init(&host, &mock_api, &s, err, sizeof(err));
        CU_ASSERT_EQUAL(rc, -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(
            strstr(err, "pyoco.yaml:7: plugins.prometheus."));
        CU_ASSERT_EQUAL(host.nsubs, 0);
        mock_host_free(&host);
    }
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("prometheus plugin (mock host)", NULL, NULL);
    CU_add_test(s, "plugin lifecycle", test_plugin_lifecycle);
    CU_add_test(s, "plugin events", test_plugin_events);
    CU_add_test(s, "plugin metrics", test_plugin_metrics);
    CU_add_test(s, "plugin cap and config", test_plugin_cap_and_config);
}
