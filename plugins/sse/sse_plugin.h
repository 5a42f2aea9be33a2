/* sse_plugin.h - the sse plugin's shared state (sse.c: lifecycle and
 * config; sse_stream.c: the route, streams and bus fan-out). */
#ifndef PYOCO_SSE_PLUGIN_H
#define PYOCO_SSE_PLUGIN_H

#include <pyoco/plugin.h>

#include "sse_format.h"
#include "sse_ring.h"

#include <event2/util.h>

struct event;

typedef struct sse_state sse_state;

/* One open stream: in its run slot's list and in the plugin's list. */
typedef struct sse_stream {
    sse_state *st;
    pyoco_request *req;
    sse_slot *slot;
    struct sse_stream *prev, *next;         /* in slot->streams */
    struct sse_stream *all_prev, *all_next; /* in st->streams */
    /* What is left unsent of the opening burst (snapshot or replay): it
     * may sit in the output on top of max_buffer_bytes until the client
     * has read down to the bound once. */
    size_t burst;
} sse_stream;

struct sse_state {
    pyoco_host *host;
    const pyoco_api *api;
    /* configuration */
    double keepalive;
    size_t replay_events, replay_runs, max_buffer_bytes, max_streams;
    /* state */
    sse_table table;
    sse_stream *streams;
    size_t nstreams;
    uint64_t dropped;
    uint64_t last_seq; /* highest bus seq seen: what a snapshot reflects */
    bool stopping;
    struct event *keepalive_ev;
    sse_buf scratch;
};

/* GET /runs/{run_id}/events */
void sse_on_request(pyoco_request *req, void *user_data);
/* The bus subscription (PYOCO_EV_ANY). */
void sse_on_event(const pyoco_event *ev, void *user_data);
/* The keepalive timer. */
void sse_on_keepalive(evutil_socket_t fd, short what, void *arg);
/* End every open stream (stop, fini). */
void sse_close_all(sse_state *st);

#endif
