/* wh_curl.c - libcurl's multi-socket interface driven by the libevent loop
 * (the hiperfifo pattern): curl tells us which sockets to watch and when
 * its next timeout is; libevent tells curl when a socket is ready or the
 * timer fired. Nothing here blocks the loop thread. */
#include <errno.h>
#include <stdlib.h>

#include <event2/event.h>

#include "wh.h"

typedef struct sock_ctx {
    struct wh_curl *c;
    curl_socket_t fd;
    struct event *ev;
    struct sock_ctx *next, *prev; /* freed at the end if curl never did */
} sock_ctx;

struct wh_curl {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    sock_ctx *socks;
    wh_curl_done_fn done;
    void *ud;
    int running;
};

/* Hand every finished transfer to the owner. The owner may add or remove
 * handles from inside done (we are not inside a curl callback here). */
static void check_done(wh_curl *c) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        curl_multi_remove_handle(c->multi, easy);
        c->done(easy, result, c->ud);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    wh_curl *c = arg;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
    check_done(c);
}

static void on_socket(evutil_socket_t fd, short what, void *arg) {
    sock_ctx *s = arg;
    wh_curl *c = s->c;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) |
                (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(c->multi, fd, flags, &c->running);
    /* No evtimer_del when nothing runs (as hiperfifo does): done may have
     * added a transfer that needs the timer curl just armed. */
    check_done(c);
}

static void sock_free(wh_curl *c, sock_ctx *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    event_free(s->ev);
    free(s);
}

/* CURLMOPT_SOCKETFUNCTION */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp) {
    wh_curl *c = userp;
    sock_ctx *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_free(c, s);
        }
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
                         (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->c = c;
        s->fd = fd;
        s->ev = event_new(c->base, fd, kind, on_socket, s);
        if (!s->ev) {
            free(s);
            return -1;
        }
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    } else {
        event_del(s->ev);
        event_assign(s->ev, c->base, fd, kind, on_socket, s);
    }
    return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: never act from here, just arm the timer. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
    wh_curl *c = userp;
    if (timeout_ms < 0)
        return evtimer_del(c->timer) == 0 ? 0 : -1;
    struct timeval tv = {.tv_sec = timeout_ms / 1000,
                         .tv_usec = (timeout_ms % 1000) * 1000};
    return evtimer_add(c->timer, &tv) == 0 ? 0 : -1;
}

int wh_curl_new(struct event_base *base, wh_curl_done_fn done, void *ud,
                wh_curl **out) {
    wh_curl *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->base = base;
    c->done = done;
    c->ud = ud;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timer, c);
    if (!c->multi || !c->timer) {
        wh_curl_free(c);
        return -ENOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    *out = c;
    return 0;
}

int wh_curl_add(wh_curl *c, CURL *easy) {
    CURLMcode rc = curl_multi_add_handle(c->multi, easy);
    return rc == CURLM_OK ? 0 : rc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
}

void wh_curl_remove(wh_curl *c, CURL *easy) {
    curl_multi_remove_handle(c->multi, easy);
}

void wh_curl_free(wh_curl *c) {
    if (!c)
        return;
    if (c->multi)
        curl_multi_cleanup(c->multi); /* may still call socket_cb */
    while (c->socks)
        sock_free(c, c->socks);
    if (c->timer)
        event_free(c->timer);
    free(c);
}
