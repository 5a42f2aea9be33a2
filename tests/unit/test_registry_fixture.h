/* Shared by the test_registry*.c executables: a fake clock, a bus with an
 * event recorder, and small JSON helpers. Header-only (each test file is
 * its own executable). */
#ifndef TEST_REGISTRY_FIXTURE_H
#define TEST_REGISTRY_FIXTURE_H

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "registry.h"

static double fake_now = 1000.0;
static inline double fake_clock(void) {
    return fake_now;
}

#define MAX_EVENTS 256

typedef struct rec_event {
    uint32_t kind;
    uint64_t seq;
    char run_id[37];
    char flow_name[64];
    pyoco_run_status status, prev_status;
    double start_time, end_time;
    char task[64];
    char task_state[32];
    char worker_id[64];
    double task_duration_ms, run_duration_s;
    json_t *record, *logs, *metadata, *params, *tags, *data;
} rec_event;

typedef struct fixture {
    pyoco_bus *bus;
    pyoco_registry *reg;
    rec_event ev[MAX_EVENTS];
    size_t nev;
    size_t dropped; /* beyond MAX_EVENTS (scale tests) */
    int record;     /* 0: count only */
} fixture;

static inline json_t *copy_or_null(const json_t *j) {
    return j ? json_deep_copy(j) : NULL;
}

static inline void on_event(const pyoco_event *ev, void *ud) {
    fixture *f = ud;
    if (!f->record || f->nev == MAX_EVENTS) {
        f->dropped++;
        return;
    }
    rec_event *r = &f->ev[f->nev++];
    memset(r, 0, sizeof *r);
    r->kind = ev->kind;
    r->seq = ev->seq;
    if (ev->run_id)
        snprintf(r->run_id, sizeof r->run_id, "%s", ev->run_id);
    if (ev->flow_name)
        snprintf(r->flow_name, sizeof r->flow_name, "%s", ev->flow_name);
    r->status = ev->status;
    r->prev_status = ev->prev_status;
    r->start_time = ev->start_time;
    r->end_time = ev->end_time;
    if (ev->task)
        snprintf(r->task, sizeof r->task, "%s", ev->task);
    if (ev->task_state)
        snprintf(r->task_state, sizeof r->task_state, "%s", ev->task_state);
    if (ev->worker_id)
        snprintf(r->worker_id, sizeof r->worker_id, "%s", ev->worker_id);
    r->task_duration_ms = ev->task_duration_ms;
    r->run_duration_s = ev->run_duration_s;
    r->record = copy_or_null(ev->task_record);
    r->logs = copy_or_null(ev->logs);
    r->metadata = copy_or_null(ev->metadata);
    r->params = copy_or_null(ev->params);
    r->tags = copy_or_null(ev->tags);
    r->data = copy_or_null(ev->data);
}

static inline void fx_clear(fixture *f) {
    for (size_t i = 0; i < f->nev; i++) {
        rec_event *r = &f->ev[i];
        json_decref(r->record);
        json_decref(r->logs);
        json_decref(r->metadata);
        json_decref(r->params);
        json_decref(r->tags);
        json_decref(r->data);
    }
    f->nev = 0;
}

static inline fixture *fx_new_cfg(size_t max_hist, size_t max_log,
                                  const char *dir) {
    fixture *f = calloc(1, sizeof *f);
    f->record = 1;
    fake_now = 1000.0;
    f->bus = pyoco_bus_new();
    pyoco_bus_subscribe(f->bus, PYOCO_EV_ANY, on_event, f, NULL, NULL);
    pyoco_registry_config cfg = {.max_run_history = max_hist,
                                 .archive_dir = dir,
                                 .max_log_bytes = max_log,
                                 .now = fake_clock};
    f->reg = pyoco_registry_new(&cfg, f->bus);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->reg);
    return f;
}

static inline fixture *fx_new(void) {
    return fx_new_cfg(1000, 1048576, NULL);
}

static inline void fx_free(fixture *f) {
    pyoco_registry_free(f->reg);
    pyoco_bus_free(f->bus);
    fx_clear(f);
    free(f);
}

/* Index of the n-th (0-based) recorded event of kind, or -1. */
static inline int fx_find(const fixture *f, uint32_t kind, int n) {
    for (size_t i = 0; i < f->nev; i++)
        if (f->ev[i].kind == kind && n-- == 0)
            return (int)i;
    return -1;
}

static inline int fx_count(const fixture *f, uint32_t kind) {
    int c = 0;
    for (size_t i = 0; i < f->nev; i++)
        c += f->ev[i].kind == kind;
    return c;
}

static inline json_t *J(const char *text) {
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fprintf(stderr, "bad test JSON: %s: %s\n", text, err.text);
    return j;
}

static inline void fx_submit(fixture *f, const char *flow, const char *params,
                             const char *tags, char id[37]) {
    json_t *p = params ? J(params) : NULL, *t = tags ? J(tags) : NULL;
    CU_ASSERT_EQUAL_FATAL(pyoco_registry_submit(f->reg, flow, p, t, id), 0);
    json_decref(p);
    json_decref(t);
}

/* Heartbeat from JSON text; returns the rc, cancel flag in *cancel. */
static inline int fx_hb(fixture *f, const char *id, const char *body,
                        bool *cancel) {
    json_t *b = J(body);
    bool c = false;
    int rc = pyoco_registry_heartbeat(f->reg, id, b, &c);
    json_decref(b);
    if (cancel)
        *cancel = c;
    return rc;
}

static inline json_t *fx_get(fixture *f, const char *id) {
    json_t *o = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_get(f->reg, id, &o), 0);
    return o;
}

static inline const char *fx_status(fixture *f, const char *id) {
    static char buf[32];
    json_t *o = fx_get(f, id);
    snprintf(buf, sizeof buf, "%s",
             o ? json_string_value(json_object_get(o, "status")) : "?");
    json_decref(o);
    return buf;
}

/* Polls and returns the run id handed out ("" when none). */
static inline const char *fx_poll(fixture *f, const char *worker,
                                  const char *tags) {
    static char buf[37];
    json_t *t = tags ? J(tags) : NULL, *out = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_poll(f->reg, worker, t, &out), 0);
    json_decref(t);
    const char *id = json_string_value(json_object_get(out, "run_id"));
    snprintf(buf, sizeof buf, "%s", id ? id : "");
    json_decref(out);
    return buf;
}

#endif
