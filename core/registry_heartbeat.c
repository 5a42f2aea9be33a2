/* core/registry_heartbeat.c - applying a worker's heartbeat (the five
 * ordered rules of the wire contract), the per-task log cap, and putting
 * runs back at start-up (restore). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"

#define TRUNC_MARK "\n[log truncated]"
#define TRUNC_MARK_LEN (sizeof TRUNC_MARK - 1)

static bool object_of(const json_t *o, json_type type) {
    if (!json_is_object(o))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (json_typeof(v) != type)
            return false;
    }
    return true;
}

static bool array_of_objects(const json_t *a) {
    if (!json_is_array(a))
        return false;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_object(json_array_get(a, i)))
            return false;
    return true;
}

/* Everything is checked before anything is applied: a bad heartbeat
 * changes nothing. */
static int validate(const json_t *body, pyoco_run_status *st) {
    if (!json_is_object(body))
        return -EINVAL;
    if (!object_of(json_object_get(body, "task_states"), JSON_STRING))
        return -EINVAL;
    *st = pyoco_registry_status_parse(
        json_string_value(json_object_get(body, "run_status")));
    if (*st == PYOCO_STATUS_NONE)
        return -EINVAL;
    json_t *recs = json_object_get(body, "task_records");
    if (recs && !object_of(recs, JSON_OBJECT))
        return -EINVAL;
    json_t *logs = json_object_get(body, "logs");
    if (logs && !array_of_objects(logs))
        return -EINVAL;
    return 0;
}

static const char *log_task(const json_t *entry) {
    const char *t = json_string_value(json_object_get(entry, "task"));
    return t ? t : "unknown";
}

json_t *pyoco_run_append_log(pyoco_registry *reg, pyoco_run *run,
                             const json_t *entry) {
    pyoco_task *t = pyoco_run_task(run, log_task(entry), true);
    if (!t || t->log_capped)
        return NULL;
    if (!run->logs && !(run->logs = json_array()))
        return NULL;
    json_t *text = json_object_get(entry, "text");
    size_t len = json_is_string(text) ? json_string_length(text) : 0;
    size_t remaining = reg->cfg.max_log_bytes - t->log_bytes;
    json_t *stored = json_deep_copy(entry);
    if (!stored)
        return NULL;
    if (len <= remaining) {
        t->log_bytes += len;
    } else {
        /* cut at a character boundary: never keep a lone lead byte */
        const char *s = json_string_value(text);
        size_t cut = remaining;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
        char *buf = malloc(cut + TRUNC_MARK_LEN);
        if (!buf) {
            json_decref(stored);
            return NULL;
        }
        memcpy(buf, s, cut);
        memcpy(buf + cut, TRUNC_MARK, TRUNC_MARK_LEN);
        json_object_set_new(stored, "text",
                            json_stringn(buf, cut + TRUNC_MARK_LEN));
        free(buf);
        t->log_bytes = reg->cfg.max_log_bytes;
        t->log_capped = true;
    }
    if (json_array_append_new(run->logs, stored) != 0)
        return NULL;
    return stored;
}

static void task_event(pyoco_registry *reg, pyoco_run *run, const char *name,
                       const char *state, const json_t *record, double dur) {
    pyoco_event ev;
    pyoco_registry_event(reg, run, &ev, PYOCO_EV_TASK_UPDATED);
    ev.task = name;
    ev.task_state = state;
    ev.task_record = record;
    ev.task_duration_ms = dur;
    pyoco_bus_publish(reg->bus, &ev);
}

/* The task's duration is reported once: the first time its record has a
 * numeric duration_ms and a non-null ended_at. */
static double observe_task_duration(pyoco_task *t) {
    if (t->duration_observed)
        return -1;
    json_t *dm = json_object_get(t->record, "duration_ms");
    json_t *ea = json_object_get(t->record, "ended_at");
    if (!json_is_number(dm) || !ea || json_is_null(ea))
        return -1;
    t->duration_observed = true;
    double v = json_number_value(dm);
    return v >= 0 ? v : -1;
}

static int apply(pyoco_registry *reg, pyoco_run *run, const json_t *body,
                 pyoco_run_status st);

int pyoco_registry_heartbeat(pyoco_registry *reg, const char *run_id,
                             const json_t *body, bool *cancel_requested) {
    pyoco_run_status st;
    int rc = validate(body, &st);
    if (rc < 0)
        return rc;
    pyoco_run *run = run_id ? pyoco_run_table_get(&reg->table, run_id) : NULL;
    if (!run)
        return -ENOENT;

    /* A heartbeat proves a worker holds the run: the lease is over and the
     * heartbeat timeout starts again (terminal runs leave the watch). */
    pyoco_watch_set(reg, run, WATCH_HEARTBEAT);
    run->pin++; /* subscribers may call back in (see registry_internal.h) */
    rc = apply(reg, run, body, st);
    if (pyoco_status_is_terminal(run->status))
        pyoco_watch_clear(reg, run);
    if (rc == 0 && cancel_requested)
        *cancel_requested = run->status == PYOCO_STATUS_CANCELLING;
    run->pin--;
    pyoco_registry_enforce_retention(reg); /* may free run */
    return rc;
}

/* The five rules, in order. */
static int apply(pyoco_registry *reg, pyoco_run *run, const json_t *body,
                 pyoco_run_status st) {
    /* 1. the run's status; RUNNING never undoes a cancel request */
    pyoco_run_status prev = run->status;
    if (st != prev &&
        !(st == PYOCO_STATUS_RUNNING && prev == PYOCO_STATUS_CANCELLING)) {
        pyoco_registry_set_status(reg, run, st);
        pyoco_event ev;
        pyoco_registry_event(reg, run, &ev, PYOCO_EV_RUN_STATUS);
        ev.prev_status = prev;
        pyoco_bus_publish(reg->bus, &ev);
    }

    /* 2. task states */
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(body, "task_states"), name, v) {
        pyoco_task *t = pyoco_run_task(run, name, true);
        if (!t)
            return -ENOMEM;
        uint32_t idx = (uint32_t)(t - run->tasks);
        if (!t->state && pyoco_run_order_add(&run->state_order, &run->nstate,
                                             &run->cap_state, idx) < 0)
            return -ENOMEM;
        json_t *s = json_string(json_string_value(v));
        if (!s)
            return -ENOMEM;
        json_decref(t->state);
        t->state = s;
        task_event(reg, run, t->name, json_string_value(s), t->record, -1);
    }

    /* 3. task records, merged field by field */
    json_object_foreach(json_object_get(body, "task_records"), name, v) {
        pyoco_task *t = pyoco_run_task(run, name, true);
        if (!t)
            return -ENOMEM;
        uint32_t idx = (uint32_t)(t - run->tasks);
        if (!t->record) {
            if (!(t->record = pyoco_record_new()) ||
                pyoco_run_order_add(&run->record_order, &run->nrecord,
                                    &run->cap_record, idx) < 0)
                return -ENOMEM;
        }
        pyoco_record_merge(t->record, v);
        double dur = observe_task_duration(t);
        /* task_state is the "tasks" entry (NULL when the task has none):
         * storage rebuilds "tasks" from it, not from the record */
        task_event(reg, run, t->name, json_string_value(t->state), t->record,
                   dur);
    }

    /* 4. logs, capped per task */
    json_t *logs = json_object_get(body, "logs");
    if (json_array_size(logs)) {
        json_t *stored = json_array();
        if (!stored)
            return -ENOMEM;
        for (size_t i = 0; i < json_array_size(logs); i++) {
            json_t *e = pyoco_run_append_log(reg, run, json_array_get(logs, i));
            if (e)
                json_array_append(stored, e);
        }
        if (json_array_size(stored)) {
            pyoco_event ev;
            pyoco_registry_event(reg, run, &ev, PYOCO_EV_LOGS_APPENDED);
            ev.logs = stored;
            pyoco_bus_publish(reg->bus, &ev);
        }
        json_decref(stored);
    }

    /* 5. terminal: RUN_FINISHED once per distinct terminal status;
     * retention follows in the caller, once the run is unpinned */
    pyoco_registry_notify_finished(reg, run);
    return 0;
}

/* ---- restore -------------------------------------------------------- */

static bool opt(const json_t *v) {
    return !v || json_is_null(v);
}

static int restore_validate(const json_t *o) {
    if (!json_is_object(o))
        return -EINVAL;
    const char *id = json_string_value(json_object_get(o, "run_id"));
    const char *flow = json_string_value(json_object_get(o, "flow_name"));
    json_t *params = json_object_get(o, "params");
    json_t *end = json_object_get(o, "end_time");
    json_t *md = json_object_get(o, "metadata");
    json_t *tags = json_object_get(o, "tags");
    json_t *queued = json_object_get(o, "queued");
    json_t *tasks = json_object_get(o, "tasks");
    json_t *recs = json_object_get(o, "task_records");
    json_t *logs = json_object_get(o, "logs");
    if (!id || !*id || strlen(id) > 36 || strchr(id, '/') || !flow || !*flow)
        return -EINVAL;
    if (pyoco_registry_status_parse(json_string_value(
            json_object_get(o, "status"))) == PYOCO_STATUS_NONE)
        return -EINVAL;
    if (!json_is_number(json_object_get(o, "start_time")) ||
        !(opt(end) || json_is_number(end)))
        return -EINVAL;
    if (!(opt(params) || json_is_object(params)) ||
        !(opt(md) || json_is_object(md)))
        return -EINVAL;
    if (!opt(tags)) {
        if (!json_is_array(tags))
            return -EINVAL;
        for (size_t i = 0; i < json_array_size(tags); i++)
            if (!json_is_string(json_array_get(tags, i)))
                return -EINVAL;
    }
    if (!(opt(queued) || json_is_boolean(queued)))
        return -EINVAL;
    if (!(opt(tasks) || object_of(tasks, JSON_STRING)) ||
        !(opt(recs) || object_of(recs, JSON_OBJECT)) ||
        !(opt(logs) || array_of_objects(logs)))
        return -EINVAL;
    return 0;
}

/* Per-task log bytes as the cap counted them: a truncated entry counts
 * its kept text (the marker is ours) and closes the task. */
static int restore_logs(pyoco_run *run, const json_t *logs) {
    if (!(run->logs = json_deep_copy(logs)))
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(run->logs); i++) {
        json_t *e = json_array_get(run->logs, i);
        pyoco_task *t = pyoco_run_task(run, log_task(e), true);
        if (!t)
            return -ENOMEM;
        json_t *text = json_object_get(e, "text");
        size_t len = json_is_string(text) ? json_string_length(text) : 0;
        const char *s = json_string_value(text);
        if (len >= TRUNC_MARK_LEN &&
            memcmp(s + len - TRUNC_MARK_LEN, TRUNC_MARK, TRUNC_MARK_LEN) == 0) {
            len -= TRUNC_MARK_LEN;
            t->log_capped = true;
        }
        t->log_bytes += len;
    }
    return 0;
}

static int restore_fill(pyoco_registry *reg, pyoco_run *run, const json_t *o) {
    json_t *v;
    const char *name;
    memcpy(run->id, json_string_value(json_object_get(o, "run_id")),
           json_string_length(json_object_get(o, "run_id")) + 1);
    run->status = pyoco_registry_status_parse(
        json_string_value(json_object_get(o, "status")));
    run->start_time = json_number_value(json_object_get(o, "start_time"));
    if (json_is_number(v = json_object_get(o, "end_time"))) {
        run->has_end = true;
        run->end_time = json_number_value(v);
    }
    if (!(run->flow_name =
              strdup(json_string_value(json_object_get(o, "flow_name")))))
        return -ENOMEM;
    v = json_object_get(o, "params");
    run->params = json_object_size(v) ? json_deep_copy(v)
                                      : json_incref(reg->empty_object);
    v = json_object_get(o, "tags");
    run->tags =
        json_array_size(v) ? json_deep_copy(v) : json_incref(reg->empty_array);
    if (!run->params || !run->tags)
        return -ENOMEM;
    v = json_object_get(o, "metadata");
    if (json_object_size(v) && !(run->metadata = json_deep_copy(v)))
        return -ENOMEM;

    json_object_foreach(json_object_get(o, "tasks"), name, v) {
        pyoco_task *t = pyoco_run_task(run, name, true);
        if (!t || !(t->state = json_deep_copy(v)) ||
            pyoco_run_order_add(&run->state_order, &run->nstate,
                                &run->cap_state,
                                (uint32_t)(t - run->tasks)) < 0)
            return -ENOMEM;
    }
    json_object_foreach(json_object_get(o, "task_records"), name, v) {
        pyoco_task *t = pyoco_run_task(run, name, true);
        if (!t || !(t->record = pyoco_record_new()) ||
            pyoco_run_order_add(&run->record_order, &run->nrecord,
                                &run->cap_record,
                                (uint32_t)(t - run->tasks)) < 0)
            return -ENOMEM;
        pyoco_record_merge(t->record, v);
        json_t *dm = json_object_get(t->record, "duration_ms");
        json_t *ea = json_object_get(t->record, "ended_at");
        t->duration_observed = json_is_number(dm) && !json_is_null(ea);
    }
    if (json_array_size(v = json_object_get(o, "logs")) &&
        restore_logs(run, v) < 0)
        return -ENOMEM;
    if (pyoco_status_is_terminal(run->status)) {
        /* what a live run would already have reported */
        run->duration_observed = true;
        run->finished_mask = (uint8_t)(1u << run->status);
    }
    return 0;
}

int pyoco_registry_restore(pyoco_registry *reg, const json_t *o) {
    int rc = restore_validate(o);
    if (rc < 0)
        return rc;
    if (pyoco_run_table_get(&reg->table,
                            json_string_value(json_object_get(o, "run_id"))))
        return -EEXIST;
    pyoco_run *run = calloc(1, sizeof *run);
    if (!run)
        return -ENOMEM;
    if ((rc = restore_fill(reg, run, o)) < 0 ||
        (rc = pyoco_registry_register(reg, run)) < 0) {
        pyoco_registry_run_free(run);
        return rc;
    }
    if (json_is_true(json_object_get(o, "queued")) &&
        run->status == PYOCO_STATUS_PENDING &&
        (rc = pyoco_run_queue_push(&reg->queue, run, run->tags)) < 0) {
        pyoco_registry_unregister(reg, run);
        pyoco_registry_run_free(run);
        return rc;
    }
    /* A restarted server gives restored runs a fresh deadline: a worker
     * that died meanwhile is found out like any other. */
    if (run->status == PYOCO_STATUS_RUNNING ||
        run->status == PYOCO_STATUS_CANCELLING)
        pyoco_watch_set(reg, run, WATCH_HEARTBEAT);
    else if (run->status == PYOCO_STATUS_PENDING && !run->queue)
        pyoco_watch_set(reg, run, WATCH_LEASE);
    run->pin++;
    pyoco_event ev;
    pyoco_registry_event(reg, run, &ev, PYOCO_EV_RUN_RESTORED);
    ev.data = o;
    pyoco_bus_publish(reg->bus, &ev);
    run->pin--;
    return 0;
}
