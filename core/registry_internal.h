/* core/registry_internal.h - the registry's data structures, shared by its
 * files (registry.c, registry_heartbeat.c, registry_json.c, run_queue.c,
 * run_table.c). Not for other core parts or plugins. */
#ifndef PYOCO_CORE_REGISTRY_INTERNAL_H
#define PYOCO_CORE_REGISTRY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"
#include "registry.h"
#include "run_queue.h"
#include "run_table.h"

/* One task of a run. A task appears through task_states, task_records or
 * a log entry; `state_pos` / `record_pos` keep the order in which "tasks"
 * and "task_records" first got the name (the wire objects' key order). */
typedef struct pyoco_task {
    char *name;
    json_t *state;  /* string, or NULL when never given */
    json_t *record; /* the merged nine-field record, or NULL */
    size_t log_bytes;
    bool log_capped;
    bool duration_observed;
} pyoco_task;

struct pyoco_run {
    char id[37];
    bool has_end;
    bool duration_observed; /* RUN_FINISHED carried the run's duration */
    uint8_t finished_mask;  /* 1 << status for each terminal status notified */
    pyoco_run_status status;
    /* > 0 while a command still uses the run across its publishes: a
     * subscriber may call back into the registry, and retention must not
     * free the run under the command's feet */
    uint32_t pin;
    size_t hash;  /* run_table */
    uint64_t seq; /* submission order (restores count as submissions) */
    double start_time, end_time;
    char *flow_name;
    json_t *params;   /* object, never changed after submit */
    json_t *tags;     /* array of strings, as submitted */
    json_t *metadata; /* object or NULL (= {}) */
    json_t *logs;     /* array or NULL (= []) */
    /* The GET object serialized, cached until the run changes: the next
     * pyoco_registry_event for it drops the cache (every change of a run is
     * followed by an event, so that is the one place to do it). */
    char *text;
    size_t text_len;

    pyoco_task *tasks;
    uint32_t ntasks, cap_tasks;
    json_t *task_index; /* name -> integer index into tasks, or NULL */
    uint32_t *state_order, nstate, cap_state;
    uint32_t *record_order, nrecord, cap_record;

    /* every run: by start_time, then registration order (list) */
    pyoco_run *all_prev, *all_next;
    /* terminal runs only: by seq (retention) */
    pyoco_run *term_prev, *term_next;
    bool in_term;
    /* stuck-run watch (registry_watch.c): one deadline-ordered list per
     * kind, since every deadline of a kind is now + the same delay */
    pyoco_run *w_prev, *w_next;
    double w_deadline;
    uint8_t w_kind; /* 0 none, WATCH_LEASE, WATCH_HEARTBEAT */
    /* queued runs: their tag set's FIFO */
    pyoco_run *q_prev, *q_next;
    pyoco_tagq *queue; /* NULL when not queued */
};

struct pyoco_registry {
    pyoco_registry_config cfg;
    pyoco_bus *bus;
    pyoco_archive *archive;
    pyoco_run_table table;
    pyoco_run_queue queue;
    pyoco_run *all_head, *all_tail;
    pyoco_run *term_head, *term_tail;
    uint64_t next_seq;
    uint64_t by_status[PYOCO_STATUS_COUNT];
    uint64_t evicted;
    bool in_retention; /* evicting: nested calls leave it to the outer loop */
    pyoco_run *w_head[3], *w_tail[3];   /* by watch kind */
    json_t *empty_object, *empty_array; /* shared, never changed */
};

double pyoco_registry_now(const pyoco_registry *reg);

/* Run helpers (registry.c). register: into the table (0/-EEXIST), a new
 * seq, the time list, the terminal list when terminal, the counters;
 * unregister undoes it and takes the run off the queue. */
int pyoco_registry_register(pyoco_registry *reg, pyoco_run *run);
void pyoco_registry_unregister(pyoco_registry *reg, pyoco_run *run);
void pyoco_registry_run_free(pyoco_run *run);
pyoco_task *pyoco_run_task(pyoco_run *run, const char *name, bool create);
int pyoco_run_order_add(uint32_t **order, uint32_t *n, uint32_t *cap,
                        uint32_t idx);
void pyoco_registry_set_status(pyoco_registry *reg, pyoco_run *run,
                               pyoco_run_status st);
void pyoco_registry_event(pyoco_registry *reg, const pyoco_run *run,
                          pyoco_event *ev, uint32_t kind);
/* Evicts the oldest unpinned terminal runs while over the limit. Cheap
 * when nothing is over, so commands call it once more after unpinning. */
void pyoco_registry_enforce_retention(pyoco_registry *reg);
bool pyoco_registry_notify_finished(pyoco_registry *reg, pyoco_run *run);

/* Stuck-run watch (registry_watch.c). */
enum { WATCH_NONE = 0, WATCH_LEASE = 1, WATCH_HEARTBEAT = 2 };
void pyoco_watch_set(pyoco_registry *reg, pyoco_run *run, int kind);
void pyoco_watch_clear(pyoco_registry *reg, pyoco_run *run);

/* Log cap (registry_heartbeat.c): stores entry (borrowed) on run and
 * returns the stored entry (borrowed) or NULL when dropped. */
json_t *pyoco_run_append_log(pyoco_registry *reg, pyoco_run *run,
                             const json_t *entry);

/* Rendering (registry_json.c): the GET /runs/{id} object. */
json_t *pyoco_run_render(const pyoco_run *run);
/* The run's GET object as compact JSON text, from the cache or rendered
 * now; borrowed until the run changes. */
int pyoco_run_text(pyoco_run *run, const char **text, size_t *len);
void pyoco_run_text_drop(pyoco_run *run);
/* A fresh record with the nine fields at their defaults. */
json_t *pyoco_record_new(void);
/* Merge the nine known fields of src into dst (others ignored). */
void pyoco_record_merge(json_t *dst, const json_t *src);

#endif
