/* core/registry_json.c - rendering a run as the GET /runs/{id} object and
 * task-record helpers. Key order follows the reference server exactly
 * (tests/plugins/rest/reference_run.json, a copy of the golden output). */
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"

static const char *const record_keys[] = {
    "state",     "started_at", "ended_at", "duration_ms", "error",
    "traceback", "inputs",     "output",   "artifacts"};
#define NRECORD_KEYS (sizeof record_keys / sizeof record_keys[0])

json_t *pyoco_record_new(void) {
    return json_pack("{s:s, s:n, s:n, s:n, s:n, s:n, s:{}, s:n, s:{}}", "state",
                     "PENDING", "started_at", "ended_at", "duration_ms",
                     "error", "traceback", "inputs", "output", "artifacts");
}

void pyoco_record_merge(json_t *dst, const json_t *src) {
    for (size_t i = 0; i < NRECORD_KEYS; i++) {
        json_t *v = json_object_get(src, record_keys[i]);
        if (!v)
            continue;
        if (i == 0 && (!json_is_string(v) || json_string_length(v) == 0))
            continue; /* state: only a non-empty string applies */
        /* values are replaced, never changed in place, so rendered copies
         * may share them */
        json_object_set_new(dst, record_keys[i], json_deep_copy(v));
    }
}

/* Values that are never changed in place (params, stored log entries,
 * record field values) are shared; containers that change are copied. */
json_t *pyoco_run_render(const pyoco_run *run) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "run_id", json_string(run->id));
    json_object_set_new(o, "flow_name", json_string(run->flow_name));
    json_object_set(o, "params", run->params);
    json_object_set_new(o, "status",
                        json_string(pyoco_status_name(run->status)));
    json_object_set_new(o, "start_time", json_real(run->start_time));
    json_object_set_new(o, "end_time",
                        run->has_end ? json_real(run->end_time) : json_null());

    json_t *tasks = json_object();
    for (uint32_t i = 0; i < run->nstate; i++) {
        const pyoco_task *t = &run->tasks[run->state_order[i]];
        json_object_set(tasks, t->name, t->state);
    }
    json_object_set_new(o, "tasks", tasks);

    json_t *records = json_object(), *summary = json_object();
    for (uint32_t i = 0; i < run->nrecord; i++) {
        const pyoco_task *t = &run->tasks[run->record_order[i]];
        json_object_set_new(records, t->name, json_copy(t->record));
        json_t *s = json_object();
        json_object_set(s, "state", json_object_get(t->record, "state"));
        json_object_set(s, "duration_ms",
                        json_object_get(t->record, "duration_ms"));
        json_object_set(s, "ended_at", json_object_get(t->record, "ended_at"));
        json_object_set_new(summary, t->name, s);
    }
    json_object_set_new(o, "task_records", records);

    json_t *logs = json_array();
    size_t nlogs = run->logs ? json_array_size(run->logs) : 0;
    for (size_t i = 0; i < nlogs; i++)
        json_array_append(logs, json_array_get(run->logs, i));
    json_object_set_new(o, "logs", logs);
    json_object_set_new(o, "metadata",
                        run->metadata ? json_copy(run->metadata)
                                      : json_object());
    json_object_set_new(
        o, "run_duration_ms",
        run->has_end ? json_real((run->end_time - run->start_time) * 1000.0)
                     : json_null());
    json_object_set_new(o, "task_summary", summary);
    return o;
}

int pyoco_run_text(pyoco_run *run, const char **text, size_t *len) {
    if (!run->text) {
        json_t *o = pyoco_run_render(run);
        char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!t)
            return -ENOMEM;
        run->text = t;
        run->text_len = strlen(t);
    }
    *text = run->text;
    *len = run->text_len;
    return 0;
}

void pyoco_run_text_drop(pyoco_run *run) {
    free(run->text);
    run->text = NULL;
    run->text_len = 0;
}
