/* prom_plugin.h - the prometheus plugin's state, shared by its event
 * folding (prom_events.c) and its descriptor/scrape handler
 * (prometheus.c). */
#ifndef PROM_PLUGIN_H
#define PROM_PLUGIN_H

#include <stdbool.h>

#include <pyoco/plugin.h>

#include "prom_family.h"
#include "prom_process.h"

/* Family tags: who created a family. */
enum { PROM_TAG_BUILTIN = 0, PROM_TAG_PUBLISHED = 1 };

/* Why a PYOCO_EV_METRIC sample was dropped (label of
 * pyoco_metrics_rejected_samples_total). */
typedef enum prom_reject {
    PROM_REJECT_INVALID = 0,       /* bad name, type, op, value or labels */
    PROM_REJECT_NAME_CLASH,        /* a built-in family's name, or samples
                                      that would collide with another's */
    PROM_REJECT_TYPE_MISMATCH,     /* differs from the family's first sample */
    PROM_REJECT_LABEL_MISMATCH,    /* label names differ from the first */
    PROM_REJECT_TOO_MANY_FAMILIES, /* PROM_MAX_PUBLISHED_FAMILIES reached */
    PROM_REJECT_COUNT
} prom_reject;

#define PROM_MAX_PUBLISHED_FAMILIES 1000
#define PROM_MAX_SAMPLE_LABELS PROM_MAX_LABELS
#define PROM_MAX_NAME_LEN 200

typedef struct prom_state {
    pyoco_host *host;
    const pyoco_api *api;
    prom_set *set;
    char *path;
    double *buckets; /* configured compat/default buckets */
    size_t nbuckets;
    size_t published; /* families created from PYOCO_EV_METRIC */

    prom_family *runs_total, *in_progress, *task_duration, *run_duration;
    prom_family *queued, *in_memory, *evicted, *bus_events, *http_requests;
    prom_family *finished; /* runs finished by flow and terminal status */
    prom_family *build_info, *plugin_info, *overflow, *rejected;
    prom_family *proc_rss, *proc_vms, *proc_cpu, *proc_start, *proc_fds,
        *proc_max_fds;

    /* Hot series, looked up once. */
    prom_series *in_progress_s;
    prom_series *by_status[PYOCO_STATUS_COUNT];
    prom_series *by_kind[PYOCO_EV_KIND_COUNT + 1]; /* last: unknown kinds */
    prom_series *by_reject[PROM_REJECT_COUNT];
    bool reject_logged[PROM_REJECT_COUNT];

    bool plugins_listed;
    double start_time;   /* process_start_time_seconds, read once */
    double proc_read_at; /* when process_* were last read (api->now) */
    prom_buf out;        /* the scrape body, reused */
} prom_state;

/* Creates every built-in family in exposition order. 0 or -ENOMEM. */
int prom_state_families(prom_state *st);

/* The bus subscriber (PYOCO_EV_ANY). */
void prom_on_event(const pyoco_event *ev, void *user_data);

/* Folds one plugin measurement; returns 0 or the reason it was dropped
 * (already counted) as 1 + prom_reject. */
int prom_fold_metric(prom_state *st, const pyoco_metric_sample *m);

/* Values read at scrape time: registry stats, plugins, process_*. */
void prom_update_scrape(prom_state *st);

#endif
