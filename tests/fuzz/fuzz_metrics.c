/* libFuzzer target: the prometheus plugin (its real descriptor, over the
 * prometheus tests' mock host) fed events whose task/flow/route names and
 * published metric names, labels and values come from the input; then
 * /metrics is scraped as text and as OpenMetrics and each exposition must
 * pass prom_check (every line parses, valid UTF-8, no duplicate series,
 * cumulative histograms). A small series cap makes the overflow fold
 * reachable.
 *
 * Input: a sequence of operations, each one byte of kind followed by its
 * fields; strings end at a NUL byte (or the input's end), doubles are 8
 * raw bytes, small integers one byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_host.h"
#include "prom_check.h"

const pyoco_plugin_desc *pyoco_plugin_entry(void);

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static const char *rd_str(reader *r, char *buf, size_t cap) {
    size_t n = 0;
    while (r->p < r->end && *r->p && n + 1 < cap)
        buf[n++] = (char)*r->p++;
    if (r->p < r->end)
        r->p++; /* the NUL */
    buf[n] = '\0';
    return buf;
}

static uint8_t rd_u8(reader *r) {
    return r->p < r->end ? *r->p++ : 0;
}

static double rd_double(reader *r) {
    double d = 0;
    if (r->end - r->p >= 8) {
        memcpy(&d, r->p, 8);
        r->p += 8;
    } else {
        d = rd_u8(r); /* short input: a small number */
    }
    return d;
}

static void fail(const char *what, const char *detail, const char *text) {
    fprintf(stderr, "fuzz_metrics invariant: %s: %s\n", what, detail);
    if (text)
        fprintf(stderr, "---\n%s---\n", text);
    abort();
}

static void scrape_and_check(pyoco_host *h, const char *accept, bool om) {
    pyoco_request req;
    mock_get(h, accept, &req);
    if (req.status != 200)
        fail("scrape status", req.body ? req.body : "", NULL);
    char err[512];
    if (!prom_check(req.body, req.len, om, err, sizeof err))
        fail(om ? "OpenMetrics exposition" : "text exposition", err, req.body);
    free(req.body);
}

static void one_op(pyoco_host *h, reader *r) {
    char a[256], b[256];
    pyoco_event ev;
    memset(&ev, 0, sizeof ev);
    ev.time = 1.0;
    uint8_t kind = rd_u8(r) % 5;
    switch (kind) {
    case 0:
        ev.kind = PYOCO_EV_TASK_UPDATED;
        ev.run_id = "r";
        ev.flow_name = "f";
        ev.task = rd_str(r, a, sizeof a);
        ev.task_state = "SUCCEEDED";
        ev.task_duration_ms = rd_double(r);
        break;
    case 1:
        ev.kind = PYOCO_EV_RUN_FINISHED;
        ev.run_id = "r";
        ev.flow_name = rd_str(r, a, sizeof a);
        ev.status = PYOCO_STATUS_COMPLETED;
        ev.run_duration_s = rd_double(r);
        ev.task_duration_ms = -1;
        break;
    case 2:
        ev.kind = PYOCO_EV_RUN_STATUS;
        ev.run_id = "r";
        ev.flow_name = rd_str(r, a, sizeof a);
        ev.status = (pyoco_run_status)(rd_u8(r) % (PYOCO_STATUS_COUNT + 1));
        ev.prev_status =
            (pyoco_run_status)(rd_u8(r) % (PYOCO_STATUS_COUNT + 1));
        ev.task_duration_ms = -1;
        ev.run_duration_s = -1;
        break;
    case 3:
        ev.kind = PYOCO_EV_HTTP_REQUEST;
        ev.http_method = "GET";
        ev.http_route = rd_u8(r) & 1 ? rd_str(r, a, sizeof a) : NULL;
        ev.http_status = rd_u8(r) * 3;
        ev.http_duration_s = rd_double(r);
        ev.task_duration_ms = -1;
        ev.run_duration_s = -1;
        break;
    default: {
        /* A measurement published by another plugin (api->metric). */
        char names[4][64], values[4][64];
        const char *np[4], *vp[4];
        double buckets[4];
        pyoco_metric_sample m = {.size = sizeof m};
        m.name = rd_str(r, a, sizeof a);
        m.help = rd_str(r, b, sizeof b);
        m.type = (pyoco_metric_type)(rd_u8(r) % 4);
        m.op = (pyoco_metric_op)(rd_u8(r) % 4);
        m.value = rd_double(r);
        m.nlabels = rd_u8(r) % 4;
        for (size_t i = 0; i < m.nlabels; i++) {
            np[i] = rd_str(r, names[i], sizeof names[i]);
            vp[i] = rd_str(r, values[i], sizeof values[i]);
        }
        m.label_names = np;
        m.label_values = vp;
        m.nbuckets = rd_u8(r) % 4;
        for (size_t i = 0; i < m.nbuckets; i++)
            buckets[i] = rd_double(r);
        m.buckets = m.nbuckets ? buckets : NULL;
        ev.kind = PYOCO_EV_METRIC;
        ev.metric = &m;
        ev.task_duration_ms = -1;
        ev.run_duration_s = -1;
        mock_publish(h, &ev);
        return;
    }
    }
    mock_publish(h, &ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pyoco_host h;
    mock_host_init(&h);
    json_object_set_new(h.config, "max_series_per_family", json_string("4"));
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    void *state = NULL;
    char err[256] = "";
    if (d->init(&h, &mock_api, &state, err, sizeof err) || d->start(&h, state))
        fail("plugin init", err, NULL);
    reader r = {data, data + size};
    for (int n = 0; n < 64 && r.p < r.end; n++)
        one_op(&h, &r);
    scrape_and_check(&h, NULL, false);
    scrape_and_check(&h, "application/openmetrics-text; version=1.0.0", true);
    if (d->stop)
        d->stop(&h, state);
    d->fini(&h, state);
    mock_host_free(&h);
    return 0;
}
