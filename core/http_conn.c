/* core/http_conn.c - connection-level limits over evhttp; see http_conn.h.
 * PYOCO_HTTP_CONN_LIMITS */
#include "http_conn.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define NBUCKETS 1024 /* power of two; chains stay short at 4096 conns */

typedef enum conn_phase {
    PHASE_ATTACH,  /* accepted; evhttp has not made its connection yet */
    PHASE_IDLE,    /* waiting for a request's first byte */
    PHASE_READING, /* a request is arriving: the read deadline runs */
    PHASE_BUSY,    /* a handler has the request; no deadline of ours */
} conn_phase;

typedef struct conn {
    struct conn *next; /* hash chain, keyed by bev */
    pyoco_http_conns *owner;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until attached */
    struct event *timer;             /* attach, then the current deadline */
    struct evbuffer_cb_entry *input_cb;
    conn_phase phase;
    bool served; /* a request was answered: later waits are idle_timeout */
    bool over;   /* accepted beyond max_connections */
    void (*close_fn)(void *arg);
    void *close_arg;
} conn;

struct pyoco_http_conns {
    struct event_base *base;
    const pyoco_http_limits *limits;
    conn *buckets[NBUCKETS];
    size_t open;
};

static size_t bucket_of(const struct bufferevent *bev) {
    uintptr_t p = (uintptr_t)bev;
    return (size_t)((p >> 4) ^ (p >> 14)) & (NBUCKETS - 1);
}

static conn *find(pyoco_http_conns *cs, const struct bufferevent *bev) {
    for (conn *c = cs->buckets[bucket_of(bev)]; c; c = c->next)
        if (c->bev == bev)
            return c;
    return NULL;
}

static void unlink_conn(pyoco_http_conns *cs, conn *c) {
    conn **pp = &cs->buckets[bucket_of(c->bev)];
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
}

static void arm(conn *c, double seconds) {
    if (seconds <= 0) {
        evtimer_del(c->timer);
        return;
    }
    struct timeval tv = {
        (time_t)seconds,
        (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    evtimer_add(c->timer, &tv);
}

/* Waiting for a request: the first one gets read_timeout, later ones
 * (keep-alive) idle_timeout; bytes already buffered (pipelining) start
 * the read deadline at once. */
static void wait_for_request(conn *c) {
    const pyoco_http_limits *l = c->owner->limits;
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        c->phase = PHASE_READING;
        arm(c, l->read_timeout);
    } else {
        c->phase = PHASE_IDLE;
        arm(c, c->served ? l->idle_timeout : l->read_timeout);
    }
}

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                     void *arg) {
    conn *c = arg;
    /* Only the first byte matters: later ones must not extend anything. */
    if (info->n_added > 0 && c->phase == PHASE_IDLE) {
        c->phase = PHASE_READING;
        arm(c, c->owner->limits->read_timeout);
    }
}

static void on_close(struct evhttp_connection *evcon, void *arg) {
    conn *c = arg;
    pyoco_http_conns *cs = c->owner;
    if (c->close_fn)
        c->close_fn(c->close_arg);
    /* The bufferevent is freed right after this callback. */
    evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
    unlink_conn(cs, c);
    cs->open--;
    event_free(c->timer);
    free(c);
}

static void attach(conn *c, struct evhttp_connection *evcon) {
    c->evcon = evcon;
    bufferevent_decref(c->bev);
    evhttp_connection_set_closecb(evcon, on_close, c);
    c->phase = PHASE_IDLE;
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    conn *c = arg;
    if (c->phase != PHASE_ATTACH) {
        /* A deadline passed (PHASE_BUSY never has one armed). Closing
         * frees c through on_close; freeing the running timer is allowed. */
        evhttp_connection_free(c->evcon);
        return;
    }
    void (*eventcb)(struct bufferevent *, short, void *) = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, &eventcb, &cbarg);
    if (!eventcb) {
        /* evhttp failed the connection before we saw it: it called
         * bufferevent_free, our reference kept the struct alive. */
        bufferevent_decref(c->bev);
        unlink_conn(c->owner, c);
        c->owner->open--;
        event_free(c->timer);
        free(c);
        return;
    }
    attach(c, cbarg); /* evhttp's callback argument is its connection */
    if (c->over) {
        evhttp_connection_free(c->evcon);
        return;
    }
    wait_for_request(c);
}

/* evhttp_set_bevcb: called once per accepted connection, before evhttp
 * makes its connection object around the bufferevent returned. */
static struct bufferevent *on_accept(struct event_base *base, void *arg) {
    pyoco_http_conns *cs = arg;
    conn *c = calloc(1, sizeof(*c));
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    struct event *timer = c ? evtimer_new(base, on_timer, c) : NULL;
    if (!c || !bev || !timer) {
        /* evhttp then makes its own bufferevent: the connection is served
         * without our limits rather than dropped. */
        if (bev)
            bufferevent_free(bev);
        if (timer)
            event_free(timer);
        free(c);
        return NULL;
    }
    c->owner = cs;
    c->bev = bev;
    c->timer = timer;
    c->phase = PHASE_ATTACH;
    c->input_cb = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
    cs->open++;
    c->over = cs->limits->max_connections > 0 &&
              cs->open > (size_t)cs->limits->max_connections;
    size_t b = bucket_of(bev);
    c->next = cs->buckets[b];
    cs->buckets[b] = c;
    /* Kept alive until on_timer looks at it, whatever evhttp does. */
    bufferevent_incref(bev);
    struct timeval zero = {0, 0};
    evtimer_add(timer, &zero);
    return bev;
}

pyoco_http_conns *pyoco_http_conns_new(struct event_base *base,
                                       struct evhttp *evh,
                                       const pyoco_http_limits *limits) {
    pyoco_http_conns *cs = calloc(1, sizeof(*cs));
    if (!cs)
        return NULL;
    cs->base = base;
    cs->limits = limits;
    evhttp_set_bevcb(evh, on_accept, cs);
    return cs;
}

void pyoco_http_conns_free(pyoco_http_conns *cs) {
    if (!cs)
        return;
    /* evhttp_free closed every attached connection (on_close ran); what
     * is left was accepted in the last loop turn and never attached. */
    for (size_t i = 0; i < NBUCKETS; i++) {
        while (cs->buckets[i]) {
            conn *c = cs->buckets[i];
            cs->buckets[i] = c->next;
            if (c->phase == PHASE_ATTACH)
                bufferevent_decref(c->bev);
            event_free(c->timer);
            free(c);
        }
    }
    free(cs);
}

static void on_complete(struct evhttp_request *ev, void *arg) {
    conn *c = arg;
    c->served = true;
    wait_for_request(c);
}

int pyoco_http_conns_request(pyoco_http_conns *cs, struct evhttp_request *ev) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    conn *c = evcon ? find(cs, evhttp_connection_get_bufferevent(evcon)) : NULL;
    if (!c)
        return 0;
    if (c->phase == PHASE_ATTACH) {
        /* The whole request arrived in the loop turn of the accept, before
         * the zero timer: attach now (the request names the connection). */
        attach(c, evcon);
        if (c->over) {
            c->phase = PHASE_BUSY;
            evtimer_del(c->timer);
            return -EBUSY;
        }
    }
    c->phase = PHASE_BUSY;
    evtimer_del(c->timer);
    evhttp_request_set_on_complete_cb(ev, on_complete, c);
    return 0;
}

bool pyoco_http_conns_on_close(pyoco_http_conns *cs,
                               struct evhttp_connection *evcon,
                               void (*fn)(void *arg), void *arg) {
    conn *c =
        cs && evcon ? find(cs, evhttp_connection_get_bufferevent(evcon)) : NULL;
    if (!c || c->phase == PHASE_ATTACH)
        return false;
    c->close_fn = fn;
    c->close_arg = arg;
    return true;
}

size_t pyoco_http_conns_open(const pyoco_http_conns *cs) {
    return cs ? cs->open : 0;
}
