/* core/registry_watch.c - stuck runs: assignment leases and heartbeat
 * timeouts.
 *
 * Each kind has one list ordered by deadline. Every deadline of a kind is
 * "now + the same delay", so appending at the tail keeps the order and a
 * sweep only looks at expired heads: O(1) per heartbeat, O(expired) per
 * sweep, whatever the number of runs. */
#include <stdio.h>
#include <string.h>

#include "registry_internal.h"

static void unlink_run(pyoco_registry *reg, pyoco_run *run) {
    int k = run->w_kind;
    if (k == WATCH_NONE)
        return;
    if (run->w_prev)
        run->w_prev->w_next = run->w_next;
    else
        reg->w_head[k] = run->w_next;
    if (run->w_next)
        run->w_next->w_prev = run->w_prev;
    else
        reg->w_tail[k] = run->w_prev;
    run->w_prev = run->w_next = NULL;
    run->w_kind = WATCH_NONE;
}

void pyoco_watch_clear(pyoco_registry *reg, pyoco_run *run) {
    unlink_run(reg, run);
}

void pyoco_watch_set(pyoco_registry *reg, pyoco_run *run, int kind) {
    unlink_run(reg, run);
    double delay = kind == WATCH_LEASE ? reg->cfg.assignment_lease
                                       : reg->cfg.heartbeat_timeout;
    if (delay <= 0 || pyoco_status_is_terminal(run->status))
        return;
    run->w_kind = (uint8_t)kind;
    run->w_deadline = pyoco_registry_now(reg) + delay;
    run->w_prev = reg->w_tail[kind];
    run->w_next = NULL;
    if (reg->w_tail[kind])
        reg->w_tail[kind]->w_next = run;
    else
        reg->w_head[kind] = run;
    reg->w_tail[kind] = run;
}

/* Record why the server changed the run's fate in its metadata. */
static void note(pyoco_run *run, const char *key, json_t *value) {
    json_t *md = run->metadata ? json_copy(run->metadata) : json_object();
    if (!md) {
        json_decref(value);
        return;
    }
    json_object_set_new(md, key, value);
    json_decref(run->metadata);
    run->metadata = md;
}

static void finish(pyoco_registry *reg, pyoco_run *run, pyoco_run_status st,
                   const char *reason) {
    pyoco_run_status prev = run->status;
    note(run, "failure_reason", json_string(reason));
    pyoco_registry_set_status(reg, run, st);
    run->pin++;
    pyoco_event ev;
    pyoco_registry_event(reg, run, &ev, PYOCO_EV_RUN_STATUS);
    ev.prev_status = prev;
    pyoco_bus_publish(reg->bus, &ev);
    pyoco_registry_notify_finished(reg, run);
    run->pin--;
}

static void lease_expired(pyoco_registry *reg, pyoco_run *run) {
    if (run->status == PYOCO_STATUS_CANCELLING) {
        /* Cancelled before any worker started it: nobody will finish it. */
        finish(reg, run, PYOCO_STATUS_CANCELLED,
               "cancelled before a worker started it (assignment lease "
               "expired)");
        return;
    }
    if (run->status != PYOCO_STATUS_PENDING)
        return;
    json_t *worker =
        run->metadata ? json_object_get(run->metadata, "worker_id") : NULL;
    note(run, "lease_expired_worker_id",
         worker ? json_incref(worker) : json_null());
    json_t *n =
        run->metadata ? json_object_get(run->metadata, "requeued") : NULL;
    note(run, "requeued",
         json_integer(json_is_integer(n) ? json_integer_value(n) + 1 : 1));
    if (run->metadata) {
        json_object_del(run->metadata, "worker_id");
        json_object_del(run->metadata, "assigned_at");
    }
    if (pyoco_run_queue_push(&reg->queue, run, run->tags) != 0)
        return;
    run->pin++;
    pyoco_event ev;
    pyoco_registry_event(reg, run, &ev, PYOCO_EV_RUN_REQUEUED);
    pyoco_bus_publish(reg->bus, &ev);
    run->pin--;
}

static void heartbeat_expired(pyoco_registry *reg, pyoco_run *run) {
    char reason[128];
    snprintf(reason, sizeof(reason),
             "heartbeat timeout: no heartbeat for %.0f s",
             reg->cfg.heartbeat_timeout);
    if (run->status == PYOCO_STATUS_RUNNING)
        finish(reg, run, PYOCO_STATUS_FAILED, reason);
    else if (run->status == PYOCO_STATUS_CANCELLING)
        finish(reg, run, PYOCO_STATUS_CANCELLED, reason);
}

double pyoco_registry_sweep(pyoco_registry *reg, double now) {
    for (int k = WATCH_LEASE; k <= WATCH_HEARTBEAT; k++) {
        pyoco_run *run;
        while ((run = reg->w_head[k]) && run->w_deadline <= now) {
            unlink_run(reg, run);
            if (k == WATCH_LEASE)
                lease_expired(reg, run);
            else
                heartbeat_expired(reg, run);
        }
    }
    pyoco_registry_enforce_retention(reg);
    double next = 0;
    for (int k = WATCH_LEASE; k <= WATCH_HEARTBEAT; k++)
        if (reg->w_head[k] && (next == 0 || reg->w_head[k]->w_deadline < next))
            next = reg->w_head[k]->w_deadline;
    return next;
}

void pyoco_registry_set_limits(pyoco_registry *reg, size_t max_run_history,
                               size_t max_log_bytes, double assignment_lease,
                               double heartbeat_timeout) {
    if (max_run_history)
        reg->cfg.max_run_history = max_run_history;
    if (max_log_bytes)
        reg->cfg.max_log_bytes = max_log_bytes;
    /* New delays apply to the next deadline set; 0 turns a watch off. */
    reg->cfg.assignment_lease = assignment_lease;
    reg->cfg.heartbeat_timeout = heartbeat_timeout;
    for (int k = WATCH_LEASE; k <= WATCH_HEARTBEAT; k++)
        if ((k == WATCH_LEASE ? assignment_lease : heartbeat_timeout) <= 0)
            while (reg->w_head[k])
                unlink_run(reg, reg->w_head[k]);
    pyoco_registry_enforce_retention(reg);
}
