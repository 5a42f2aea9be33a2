/* plugins/rest/durable.c - replies held until the durability barrier.
 *
 * Each waiting reply needs a small context that outlives the handler (the
 * storage plugin calls back after its group commit). Contexts are recycled
 * through a free list, so the steady state allocates nothing. */
#include "durable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX 256
/* Contexts kept for reuse; more than this many in flight at once are
 * allocated and freed (a burst, not the steady state). */
#define POOL_KEEP 4096

typedef struct waiter {
    struct waiter *next;
    pyoco_rest_durable *owner;
    pyoco_request *req;
    json_t *json; /* owned, or NULL when text is used */
    size_t len;
    char text[TEXT_MAX];
} waiter;

struct pyoco_rest_durable {
    pyoco_host *host;
    const pyoco_api *api;
    waiter *free_list;
    size_t nfree;
};

pyoco_rest_durable *pyoco_rest_durable_new(pyoco_host *host,
                                           const pyoco_api *api) {
    pyoco_rest_durable *d = calloc(1, sizeof *d);
    if (d) {
        d->host = host;
        d->api = api;
    }
    return d;
}

void pyoco_rest_durable_free(pyoco_rest_durable *d) {
    if (!d)
        return;
    while (d->free_list) {
        waiter *w = d->free_list;
        d->free_list = w->next;
        free(w);
    }
    free(d);
}

static waiter *get(pyoco_rest_durable *d) {
    waiter *w = d->free_list;
    if (w) {
        d->free_list = w->next;
        d->nfree--;
    } else {
        w = malloc(sizeof *w);
        if (!w)
            return NULL;
    }
    w->owner = d;
    w->json = NULL;
    w->len = 0;
    return w;
}

static void put(pyoco_rest_durable *d, waiter *w) {
    json_decref(w->json);
    w->json = NULL;
    if (d->nfree >= POOL_KEEP) {
        free(w);
        return;
    }
    w->next = d->free_list;
    d->free_list = w;
    d->nfree++;
}

static void reply_failed(pyoco_rest_durable *d, pyoco_request *req,
                         int status) {
    char msg[128];
    snprintf(msg, sizeof msg, "storage unavailable: %s", strerror(-status));
    d->api->reply_error(req, 503, msg);
}

static void on_durable(int status, void *ud) {
    waiter *w = ud;
    pyoco_rest_durable *d = w->owner;
    if (status < 0)
        reply_failed(d, w->req, status);
    else if (w->json)
        d->api->reply_json(w->req, 200, w->json);
    else
        d->api->reply(w->req, 200, "application/json", w->text, w->len);
    put(d, w);
}

static void wait_durable(pyoco_rest_durable *d, waiter *w) {
    /* With no provider the callback runs (and recycles w) right here. */
    int rc = d->api->when_durable(d->host, on_durable, w);
    if (rc < 0) {
        reply_failed(d, w->req, rc);
        put(d, w);
    }
}

void pyoco_rest_durable_reply_text(pyoco_rest_durable *d, pyoco_request *req,
                                   const char *body, size_t len) {
    waiter *w = len < TEXT_MAX ? get(d) : NULL;
    if (!w) {
        d->api->reply_error(req, 500, "out of memory");
        return;
    }
    w->req = req;
    memcpy(w->text, body, len);
    w->len = len;
    wait_durable(d, w);
}

void pyoco_rest_durable_reply_json(pyoco_rest_durable *d, pyoco_request *req,
                                   json_t *body) {
    waiter *w = get(d);
    if (!w) {
        json_decref(body);
        d->api->reply_error(req, 500, "out of memory");
        return;
    }
    w->req = req;
    w->json = body;
    wait_durable(d, w);
}
