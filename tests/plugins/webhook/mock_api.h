/* mock_api.h - a tiny pyoco_api for the webhook plugin's unit tests: the
 * config comes from a JSON object, and the calls the plugin makes (log,
 * run_get, outbox, metric, subscribe, stop_done) are recorded. */
#ifndef WH_TEST_MOCK_API_H
#define WH_TEST_MOCK_API_H

#include <stdbool.h>

#include <event2/event.h>
#include <jansson.h>
#include <pyoco/plugin.h>

typedef struct mock {
    json_t *config;   /* key -> value (strings for scalars, as the core) */
    json_t *run;      /* what run_get returns (NULL: -ENOENT) */
    json_t *outbox;   /* id -> data of live entries */
    json_t *done_ids; /* ids passed to outbox_done, in order */
    json_t *metrics;  /* [{name, op, value, labels:{...}}] */
    json_t *logs;     /* ["LEVEL message"] */
    struct event_base *base;
    double now;
    int stop_done_calls;
    pyoco_event_fn subs[PYOCO_EV_KIND_COUNT];
    void *sub_ud[PYOCO_EV_KIND_COUNT];
} mock;

extern mock M;
extern const pyoco_api mock_api;

/* Fresh mock state; config is stolen. */
void mock_reset(json_t *config);
void mock_clear(void);
/* Deliver an event to the plugin's subscriber of ev->kind. */
void mock_publish(pyoco_event *ev);
/* How many logs contain `needle`. */
int mock_log_count(const char *needle);
/* Sum of the metric samples with this name and labels (NULL = any). */
double mock_metric_sum(const char *name, const char *endpoint,
                       const char *outcome);

/* The plugin's entry point (linked into the test). */
const pyoco_plugin_desc *pyoco_plugin_entry(void);
/* A GET /runs/{id} object of a COMPLETED run with one task. */
json_t *mock_sample_run(void);
/* Init and start the plugin on the current mock (its loop stays); the
 * config is stolen. */
void *mock_start_plugin(json_t *config);
/* Publish RUN_FINISHED for the sample run with this status. */
void mock_finish_run(pyoco_run_status status);

#endif
