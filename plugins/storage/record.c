/* record.c - events -> write records (loop thread).
 *
 * Only deltas are persisted: each event kind maps to one statement whose
 * values are laid out as documented in sql.c. JSON is dumped compactly here
 * so the writer thread never touches a jansson value the loop owns. */
#include "record.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int put_text(pyoco_storage_rec *r, const char *s) {
    pyoco_storage_val *v = &r->v[r->nvals++];
    if (!s) {
        v->type = PYOCO_STORAGE_V_NULL;
        return 0;
    }
    v->type = PYOCO_STORAGE_V_TEXT;
    v->s = strdup(s);
    return v->s ? 0 : -ENOMEM;
}

/* NULL json -> `dflt` text (or SQL NULL when dflt is NULL). */
static int put_json(pyoco_storage_rec *r, const json_t *j, const char *dflt) {
    if (!j)
        return put_text(r, dflt);
    pyoco_storage_val *v = &r->v[r->nvals++];
    v->type = PYOCO_STORAGE_V_TEXT;
    v->s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    return v->s ? 0 : -ENOMEM;
}

static void put_real(pyoco_storage_rec *r, double d) {
    pyoco_storage_val *v = &r->v[r->nvals++];
    v->type = PYOCO_STORAGE_V_REAL;
    v->d = d;
}

/* end_time 0 means "not set" on the bus. */
static void put_time_or_null(pyoco_storage_rec *r, double d) {
    if (d > 0)
        put_real(r, d);
    else
        r->v[r->nvals++].type = PYOCO_STORAGE_V_NULL;
}

static void put_int(pyoco_storage_rec *r, int64_t i) {
    pyoco_storage_val *v = &r->v[r->nvals++];
    v->type = PYOCO_STORAGE_V_INT;
    v->i = i;
}

static bool is_run_event(uint32_t kind) {
    switch (kind) {
    case PYOCO_EV_RUN_SUBMITTED:
    case PYOCO_EV_RUN_ASSIGNED:
    case PYOCO_EV_RUN_STATUS:
    case PYOCO_EV_TASK_UPDATED:
    case PYOCO_EV_LOGS_APPENDED:
    case PYOCO_EV_RUN_EVICTED:
    case PYOCO_EV_RUN_REQUEUED:
        return true;
    default:
        return false;
    }
}

static int fill(const pyoco_event *ev, uint64_t queue_seq_base,
                pyoco_storage_rec *r) {
    const char *status = pyoco_status_name(ev->status);
    int rc = 0;
    switch (ev->kind) {
    case PYOCO_EV_RUN_SUBMITTED:
        if (!ev->flow_name || !status)
            return -EINVAL;
        r->op = PYOCO_STORAGE_OP_RUN_INSERT;
        rc |= put_text(r, ev->run_id);
        rc |= put_text(r, ev->flow_name);
        rc |= put_json(r, ev->params, "{}");
        rc |= put_json(r, ev->tags, "[]");
        rc |= put_text(r, status);
        put_real(r, ev->start_time);
        put_time_or_null(r, ev->end_time);
        rc |= put_json(r, ev->metadata, "{}");
        put_int(r, (int64_t)(queue_seq_base + ev->seq));
        break;
    case PYOCO_EV_RUN_ASSIGNED:
        if (!status)
            return -EINVAL;
        r->op = PYOCO_STORAGE_OP_RUN_ASSIGNED;
        rc |= put_text(r, ev->run_id);
        rc |= put_text(r, status);
        rc |= put_json(r, ev->metadata, "{}");
        break;
    case PYOCO_EV_RUN_STATUS:
        if (!status)
            return -EINVAL;
        r->op = PYOCO_STORAGE_OP_RUN_STATUS;
        rc |= put_text(r, ev->run_id);
        rc |= put_text(r, status);
        put_time_or_null(r, ev->end_time);
        rc |= put_json(r, ev->metadata, "{}");
        break;
    case PYOCO_EV_TASK_UPDATED:
        if (!ev->task)
            return -EINVAL;
        r->op = PYOCO_STORAGE_OP_TASK;
        rc |= put_text(r, ev->run_id);
        rc |= put_text(r, ev->task);
        /* task_state is the task's own "tasks" entry, NULL for a record-only
         * update: NULL keeps the stored tasks map as it is. */
        rc |= put_text(r, ev->task_state);
        rc |= put_json(r, ev->task_record, NULL);
        break;
    case PYOCO_EV_LOGS_APPENDED:
        if (!ev->logs || !json_is_array(ev->logs))
            return -EINVAL;
        if (json_array_size(ev->logs) == 0)
            return 1; /* nothing stored, nothing to write */
        r->op = PYOCO_STORAGE_OP_LOGS;
        rc |= put_text(r, ev->run_id);
        rc |= put_json(r, ev->logs, NULL);
        break;
    case PYOCO_EV_RUN_EVICTED:
        r->op = PYOCO_STORAGE_OP_EVICTED;
        rc |= put_text(r, ev->run_id);
        break;
    case PYOCO_EV_RUN_REQUEUED:
        /* back in the queue, at its submission-order place */
        if (!status)
            return -EINVAL;
        r->op = PYOCO_STORAGE_OP_RUN_REQUEUED;
        rc |= put_text(r, ev->run_id);
        rc |= put_text(r, status);
        rc |= put_json(r, ev->metadata, "{}");
        break;
    case PYOCO_EV_OUTBOX_PUT:
        if (!ev->outbox_owner || !ev->outbox_id || !ev->data)
            return -EINVAL;
        r->op = PYOCO_STORAGE_OP_OUTBOX_PUT;
        rc |= put_text(r, ev->outbox_owner);
        rc |= put_text(r, ev->outbox_id);
        rc |= put_json(r, ev->data, NULL);
        break;
    case PYOCO_EV_OUTBOX_DONE:
        if (!ev->outbox_owner || !ev->outbox_id)
            return -EINVAL;
        r->op = PYOCO_STORAGE_OP_OUTBOX_DONE;
        rc |= put_text(r, ev->outbox_owner);
        rc |= put_text(r, ev->outbox_id);
        break;
    default:
        /* RUN_FINISHED is implied by RUN_STATUS; restores, HTTP, metrics and
         * server events change nothing that is persisted. */
        return 1;
    }
    return rc ? -ENOMEM : 0;
}

int pyoco_storage_rec_from_event(const pyoco_event *ev, uint64_t queue_seq_base,
                                 pyoco_storage_rec **out) {
    *out = NULL;
    if (!ev)
        return -EINVAL;
    if (is_run_event(ev->kind) && !ev->run_id)
        return -EINVAL;
    pyoco_storage_rec *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->seq = ev->seq;
    int rc = fill(ev, queue_seq_base, r);
    if (rc != 0) {
        pyoco_storage_rec_free(r);
        return rc > 0 ? 0 : rc;
    }
    *out = r;
    return 0;
}

void pyoco_storage_rec_free(pyoco_storage_rec *r) {
    if (!r)
        return;
    for (int i = 0; i < r->nvals; i++)
        free(r->v[i].s);
    free(r);
}

void pyoco_storage_rec_free_list(pyoco_storage_rec *r) {
    while (r) {
        pyoco_storage_rec *next = r->next;
        pyoco_storage_rec_free(r);
        r = next;
    }
}
