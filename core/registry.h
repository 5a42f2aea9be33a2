/* core/registry.h - the run registry: runs, tasks, records, logs, the queue
 * (internal). The only writer of run state; every change is published on
 * the bus. All functions run on the loop thread.
 *
 * JSON conventions: inputs are borrowed (the registry copies what it
 * keeps); outputs are new references. */
#ifndef PYOCO_CORE_REGISTRY_H
#define PYOCO_CORE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <pyoco/plugin.h>

#include "bus.h"

typedef struct pyoco_registry pyoco_registry;

typedef struct pyoco_registry_config {
    size_t max_run_history;   /* PYOCO_MAX_RUN_HISTORY, default 50 */
    const char *archive_dir;  /* PYOCO_RUN_ARCHIVE_DIR, default artifacts/runs;
                                 NULL or "" = do not write archive files */
    size_t max_log_bytes;     /* PYOCO_MAX_LOG_BYTES, default 1048576 */
    double (*now)(void);      /* clock (Unix seconds); NULL = wall clock */
    double assignment_lease;  /* seconds; 0 = off (see pyoco_registry_sweep) */
    double heartbeat_timeout; /* seconds; 0 = off */
} pyoco_registry_config;

pyoco_registry *pyoco_registry_new(const pyoco_registry_config *cfg,
                                   pyoco_bus *bus);
/* Waits for pending archive writes, then frees everything. */
void pyoco_registry_free(pyoco_registry *reg);

int pyoco_registry_submit(pyoco_registry *reg, const char *flow_name,
                          const json_t *params, const json_t *tags,
                          char run_id_out[37]);
int pyoco_registry_get(pyoco_registry *reg, const char *run_id, json_t **out);
int pyoco_registry_list(pyoco_registry *reg, const char *status,
                        const char *flow, size_t limit, json_t **out);
/* The same as get/list, as compact JSON text in a malloc'd buffer. Each
 * run's text is cached until the run changes, so repeated reads of
 * finished runs cost a copy. */
int pyoco_registry_get_text(pyoco_registry *reg, const char *run_id, char **out,
                            size_t *len);
int pyoco_registry_list_text(pyoco_registry *reg, const char *status,
                             const char *flow, size_t limit, char **out,
                             size_t *len);
int pyoco_registry_cancel(pyoco_registry *reg, const char *run_id);
int pyoco_registry_poll(pyoco_registry *reg, const char *worker_id,
                        const json_t *tags, json_t **out);
int pyoco_registry_heartbeat(pyoco_registry *reg, const char *run_id,
                             const json_t *body, bool *cancel_requested);
int pyoco_registry_logs(pyoco_registry *reg, const char *run_id,
                        const char *task, long tail, json_t **out);
void pyoco_registry_get_stats(const pyoco_registry *reg,
                              pyoco_registry_stats *out);
int pyoco_registry_restore(pyoco_registry *reg, const json_t *run);

/* Added by the registry (the declarations above are the lead's).
 * Notes on the ones above: max_run_history 0 and max_log_bytes 0 mean
 * the defaults (50, 1048576); list's limit 0 means no limit. Subscribers
 * may call back into the registry from an event (runs in use are pinned).
 *
 * Block until every archive file queued so far is written (tests and
 * shutdown only; never on the loop thread), and count failed writes. */
void pyoco_registry_archive_flush(pyoco_registry *reg);
uint64_t pyoco_registry_archive_errors(const pyoco_registry *reg);

/* Stuck runs: a run handed to a worker that sends no heartbeat within
 * assignment_lease goes back to the queue (RUN_REQUEUED; a CANCELLING one
 * becomes CANCELLED); a RUNNING run silent for heartbeat_timeout becomes
 * FAILED (a CANCELLING one CANCELLED) with the reason in
 * metadata.failure_reason. Call with the current time; returns the next
 * deadline (0 when nothing is watched). O(expired runs). */
double pyoco_registry_sweep(pyoco_registry *reg, double now);
/* Change limits at run time (SIGHUP): 0 keeps max_run_history or
 * max_log_bytes; the two delays are taken as given (0 = off). */
void pyoco_registry_set_limits(pyoco_registry *reg, size_t max_run_history,
                               size_t max_log_bytes, double assignment_lease,
                               double heartbeat_timeout);

/* Wire status name -> enum; PYOCO_STATUS_NONE when not a status. */
pyoco_run_status pyoco_registry_status_parse(const char *name);

#endif
