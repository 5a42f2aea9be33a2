/* sse_stream.c - GET /runs/{run_id}/events: open streams, fan bus events
 * out to them, replay from the ring on resume, drop slow clients. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "sse_plugin.h"

static const char *const k_keepalive = ": keepalive\n\n";

/* ---- measurements ---------------------------------------------------------
 */

static void metric_streams(sse_state *st) {
    pyoco_metric_sample m = {
        .size = sizeof(m),
        .name = "pyoco_sse_streams",
        .help = "Open Server-Sent Events streams (GET /runs/{id}/events).",
        .type = PYOCO_METRIC_GAUGE,
        .op = PYOCO_METRIC_SET,
        .value = (double)st->nstreams,
    };
    st->api->metric(st->host, &m);
}

static void metric_dropped(sse_state *st, double n) {
    pyoco_metric_sample m = {
        .size = sizeof(m),
        .name = "pyoco_sse_dropped_total",
        .help = "Event streams closed because the client read too slowly.",
        .type = PYOCO_METRIC_COUNTER,
        .op = PYOCO_METRIC_ADD,
        .value = n,
    };
    st->api->metric(st->host, &m);
}

/* ---- streams --------------------------------------------------------------
 */

/* Unlink and free s, end its reply. The slot may be freed here too (the
 * LRU cap), so callers do not touch it afterwards. */
static void stream_close(sse_stream *s) {
    sse_state *st = s->st;
    sse_slot *slot = s->slot;
    if (s->prev)
        s->prev->next = s->next;
    else
        slot->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->all_prev)
        s->all_prev->all_next = s->all_next;
    else
        st->streams = s->all_next;
    if (s->all_next)
        s->all_next->all_prev = s->all_prev;
    st->nstreams--;
    st->api->req_on_close(s->req, NULL, NULL);
    st->api->reply_end(s->req);
    free(s);
    sse_table_unpin(&st->table, slot);
    metric_streams(st);
}

/* The client went away: reply_end only releases the handle now. */
static void on_client_close(pyoco_request *req, void *user_data) {
    stream_close(user_data);
}

/* Send, then drop the client if its unsent output is over the bound (plus
 * what remains of its opening burst); the loop never waits for a reader.
 * Returns false when s was closed. */
static bool stream_send(sse_stream *s, const char *data, size_t len) {
    sse_state *st = s->st;
    if (st->api->reply_chunk(s->req, data, len) < 0) {
        stream_close(s);
        return false;
    }
    size_t pending = st->api->req_output_pending(s->req);
    if (pending <= st->max_buffer_bytes)
        s->burst = 0; /* the client read its way down: the plain bound */
    else if (pending - st->max_buffer_bytes > s->burst) {
        st->dropped++;
        st->api->log(st->host, PYOCO_LOG_WARN,
                     "dropping slow event stream of run %s (%zu bytes unsent)",
                     s->slot->run_id, pending);
        stream_close(s);
        metric_dropped(st, 1);
        return false;
    }
    return true;
}

/* The run is done (or left memory): a final `end` event, then close. */
static void stream_end(sse_stream *s, const char *status) {
    sse_state *st = s->st;
    json_t *d = json_pack("{s:s?}", "status", status);
    char *data = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    sse_buf_reset(&st->scratch);
    sse_format_event(&st->scratch, NULL, "end", data ? data : "{}");
    free(data);
    if (!st->scratch.failed &&
        !stream_send(s, st->scratch.data, st->scratch.len))
        return;
    stream_close(s);
}

void sse_close_all(sse_state *st) {
    while (st->streams)
        stream_close(st->streams);
}

void sse_on_keepalive(evutil_socket_t fd, short what, void *arg) {
    sse_state *st = arg;
    sse_stream *s = st->streams;
    while (s) {
        sse_stream *next = s->all_next;
        stream_send(s, k_keepalive, strlen(k_keepalive));
        s = next;
    }
}

/* ---- opening a stream -----------------------------------------------------
 */

/* Sends the snapshot (the GET /runs/{id} object); false when s closed. */
static bool send_snapshot(sse_stream *s, const json_t *run) {
    sse_state *st = s->st;
    char id[SSE_ID_MAX];
    sse_id_format((sse_id){st->last_seq, SSE_IDX_PLAIN}, id);
    char *data = json_dumps(run, JSON_COMPACT);
    if (!data) {
        stream_close(s);
        return false;
    }
    sse_buf_reset(&st->scratch);
    sse_format_event(&st->scratch, id, "snapshot", data);
    free(data);
    if (st->scratch.failed) {
        stream_close(s);
        return false;
    }
    return stream_send(s, st->scratch.data, st->scratch.len);
}

static bool send_reset(sse_stream *s, const char *last_id) {
    sse_state *st = s->st;
    json_t *d = json_pack("{s:s, s:s}", "last_event_id", last_id, "reason",
                          "history no longer available; a snapshot follows");
    char *data = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    sse_buf_reset(&st->scratch);
    sse_format_event(&st->scratch, NULL, "reset", data ? data : "{}");
    free(data);
    return stream_send(s, st->scratch.data, st->scratch.len);
}

/* Replays the ring from entry k on; false when s closed. */
static bool send_replay(sse_stream *s, size_t k) {
    const sse_ring *r = &s->slot->ring;
    for (; k < r->count; k++) {
        const sse_entry *e = sse_ring_at(r, k);
        if (!stream_send(s, e->text, e->len))
            return false;
    }
    return true;
}

static const char *resume_id(sse_state *st, pyoco_request *req) {
    const char *h = st->api->req_header(req, "Last-Event-ID");
    if (h && *h)
        return h;
    const char *q = st->api->req_query(req, "last_event_id");
    return q && *q ? q : NULL;
}

void sse_on_request(pyoco_request *req, void *user_data) {
    sse_state *st = user_data;
    const pyoco_api *api = st->api;
    const char *run_id = api->req_param(req, "run_id");
    if (st->stopping) {
        api->reply_error(req, 503, "server shutting down");
        return;
    }
    json_t *run = NULL;
    int rc = run_id ? api->run_get(st->host, run_id, &run) : -ENOENT;
    if (rc == -ENOENT) {
        api->reply_error(req, 404, "Run not found");
        return;
    }
    if (rc < 0) {
        api->reply_error(req, 500, "cannot read the run");
        return;
    }
    if (st->nstreams >= st->max_streams) {
        json_decref(run);
        api->reply_error(req, 503, "too many event streams");
        return;
    }
    bool created;
    sse_slot *slot = sse_table_pin(
        &st->table, run_id, (sse_id){st->last_seq, SSE_IDX_PLAIN}, &created);
    sse_stream *s = slot ? calloc(1, sizeof(*s)) : NULL;
    if (!s) {
        if (slot)
            sse_table_unpin(&st->table, slot);
        json_decref(run);
        api->reply_error(req, 500, "out of memory");
        return;
    }
    /* Where to resume: only a slot that existed before can cover ids. */
    const char *last = resume_id(st, req);
    sse_id after;
    long from = -1;
    if (last && !created && sse_id_parse(last, &after) == 0 &&
        after.seq <= st->last_seq)
        from = sse_ring_resume(&slot->ring, after);

    api->req_add_header(req, "Cache-Control", "no-cache");
    api->req_add_header(req, "X-Accel-Buffering", "no");
    /* The stream is the connection's last reply: once it ends (or a slow
     * client is dropped) the connection closes and its buffers go. */
    api->req_add_header(req, "Connection", "close");
    s->st = st;
    s->req = req;
    s->slot = slot;
    s->next = slot->streams;
    if (s->next)
        s->next->prev = s;
    slot->streams = s;
    s->all_next = st->streams;
    if (s->all_next)
        s->all_next->all_prev = s;
    st->streams = s;
    st->nstreams++;
    metric_streams(st);
    if (api->reply_start(req, 200, "text/event-stream") < 0) {
        json_decref(run); /* gone already */
        stream_close(s);
        return;
    }
    api->req_on_close(req, on_client_close, s);

    /* The opening burst (a snapshot of a run with megabytes of logs, a long
     * replay) is sent whole; only what follows counts against the bound. */
    s->burst = SIZE_MAX / 2;
    bool open;
    if (from >= 0)
        open = send_replay(s, (size_t)from);
    else
        open = (!last || send_reset(s, last)) && send_snapshot(s, run);
    if (open)
        s->burst = api->req_output_pending(req);
    /* A run already over gets its end now; others when RUN_FINISHED comes. */
    const char *status = json_string_value(json_object_get(run, "status"));
    if (open && status &&
        (!strcmp(status, "COMPLETED") || !strcmp(status, "FAILED") ||
         !strcmp(status, "CANCELLED")))
        stream_end(s, status);
    json_decref(run);
}

/* ---- bus fan-out ----------------------------------------------------------
 */

static json_t *status_or_null(pyoco_run_status s) {
    const char *n = pyoco_status_name(s);
    return n ? json_string(n) : json_null();
}

static json_t *time_or_null(double t) {
    return t > 0 ? json_real(t) : json_null();
}

/* The data of a non-log event; NULL for kinds that are not streamed. */
static json_t *event_data(const pyoco_event *ev, const char **type) {
    switch (ev->kind) {
    case PYOCO_EV_RUN_STATUS:
        *type = "status";
        return json_pack("{s:o, s:o, s:o}", "status",
                         status_or_null(ev->status), "prev_status",
                         status_or_null(ev->prev_status), "end_time",
                         time_or_null(ev->end_time));
    case PYOCO_EV_TASK_UPDATED:
        *type = "task";
        return json_pack("{s:s, s:s?, s:O?}", "task", ev->task, "state",
                         ev->task_state, "record", ev->task_record);
    case PYOCO_EV_RUN_ASSIGNED:
        *type = "assigned";
        return json_pack("{s:s?}", "worker_id", ev->worker_id);
    case PYOCO_EV_RUN_REQUEUED: /* the assignment lease expired */
        *type = "requeued";
        return json_pack(
            "{s:O?, s:O?}", "lease_expired_worker_id",
            json_object_get(ev->metadata, "lease_expired_worker_id"),
            "requeued", json_object_get(ev->metadata, "requeued"));
    case PYOCO_EV_RUN_FINISHED:
        *type = "finished";
        return json_pack(
            "{s:o, s:o}", "status", status_or_null(ev->status),
            "run_duration_ms",
            ev->end_time > 0 && ev->start_time > 0
                ? json_real((ev->end_time - ev->start_time) * 1000.0)
                : json_null());
    default:
        return NULL;
    }
}

/* Format one event, keep it in the slot's ring and send it to every stream
 * of the run. Streams that fall behind are dropped on the way. */
static void fan_out(sse_state *st, sse_slot *slot, sse_id id, const char *type,
                    const json_t *data) {
    char *text = json_dumps(data, JSON_COMPACT);
    if (!text)
        return;
    char ids[SSE_ID_MAX];
    sse_id_format(id, ids);
    sse_buf_reset(&st->scratch);
    sse_format_event(&st->scratch, ids, type, text);
    free(text);
    if (st->scratch.failed)
        return;
    if (sse_ring_push(&slot->ring, id, st->scratch.data, st->scratch.len) < 0)
        slot->ring.floor = id; /* not kept: no resume across it */
    sse_stream *s = slot->streams;
    while (s) {
        sse_stream *next = s->next;
        stream_send(s, st->scratch.data, st->scratch.len);
        s = next;
    }
}

static void on_server_stopping(sse_state *st) {
    st->stopping = true;
    /* no `end` event: the run goes on, an EventSource reconnects later */
    sse_close_all(st);
}

void sse_on_event(const pyoco_event *ev, void *user_data) {
    sse_state *st = user_data;
    if (ev->seq > st->last_seq)
        st->last_seq = ev->seq;
    if (ev->kind == PYOCO_EV_SERVER_STOPPING) {
        on_server_stopping(st);
        return;
    }
    if (!ev->run_id)
        return;
    sse_slot *slot = sse_table_get(&st->table, ev->run_id);
    if (!slot)
        return; /* nobody watches this run: no work */
    if (ev->kind == PYOCO_EV_RUN_EVICTED) {
        while (slot->streams) /* normally ended at RUN_FINISHED already */
            stream_end(slot->streams, pyoco_status_name(ev->status));
        sse_table_drop(&st->table, sse_table_get(&st->table, ev->run_id));
        return;
    }
    /* Pinned while we work: closing streams must not free the slot. */
    bool created;
    sse_table_pin(&st->table, ev->run_id, slot->ring.floor, &created);
    if (ev->kind == PYOCO_EV_LOGS_APPENDED) {
        for (size_t i = 0; i < json_array_size(ev->logs); i++)
            fan_out(st, slot, (sse_id){ev->seq, (uint32_t)i}, "log",
                    json_array_get(ev->logs, i));
    } else {
        const char *type = NULL;
        json_t *data = event_data(ev, &type);
        if (data)
            fan_out(st, slot, (sse_id){ev->seq, SSE_IDX_PLAIN}, type, data);
        json_decref(data);
        if (ev->kind == PYOCO_EV_RUN_FINISHED)
            while (slot->streams)
                stream_end(slot->streams, pyoco_status_name(ev->status));
    }
    sse_table_unpin(&st->table, slot);
}
