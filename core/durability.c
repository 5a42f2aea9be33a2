/* core/durability.c - waiters are kept in a FIFO; their targets (the bus
 * sequence at the time they asked) only grow, so releasing is popping the
 * head while its target is covered. */
#include "durability.h"

#include <stdlib.h>

typedef struct waiter {
    struct waiter *next;
    uint64_t target;
    pyoco_durable_fn fn;
    void *ud;
} waiter;

typedef struct provider {
    void *owner;
    uint64_t upto;
} provider;

struct pyoco_durability {
    pyoco_bus *bus;
    provider *prov;
    size_t nprov;
    waiter *head, *tail;
    size_t nwait;
};

pyoco_durability *pyoco_durability_new(pyoco_bus *bus) {
    pyoco_durability *d = calloc(1, sizeof(*d));
    if (d)
        d->bus = bus;
    return d;
}

static uint64_t durable_floor(const pyoco_durability *d) {
    uint64_t m = UINT64_MAX;
    for (size_t i = 0; i < d->nprov; i++)
        if (d->prov[i].upto < m)
            m = d->prov[i].upto;
    return m;
}

/* Call (and drop) every waiter whose target <= upto with status. */
static void release(pyoco_durability *d, uint64_t upto, int status) {
    while (d->head && d->head->target <= upto) {
        waiter *w = d->head;
        d->head = w->next;
        if (!d->head)
            d->tail = NULL;
        d->nwait--;
        w->fn(status, w->ud); /* may add new waiters at the tail */
        free(w);
    }
}

void pyoco_durability_free(pyoco_durability *d) {
    if (!d)
        return;
    release(d, UINT64_MAX, -ECANCELED);
    free(d->prov);
    free(d);
}

int pyoco_durability_provide(pyoco_durability *d, void *owner) {
    for (size_t i = 0; i < d->nprov; i++)
        if (d->prov[i].owner == owner)
            return -EEXIST;
    provider *p = realloc(d->prov, (d->nprov + 1) * sizeof(*p));
    if (!p)
        return -ENOMEM;
    d->prov = p;
    /* A new provider holds only what is published from now on. */
    d->prov[d->nprov++] = (provider){owner, pyoco_bus_last_seq(d->bus)};
    return 0;
}

void pyoco_durability_remove(pyoco_durability *d, void *owner) {
    for (size_t i = 0; i < d->nprov; i++) {
        if (d->prov[i].owner == owner) {
            d->prov[i] = d->prov[--d->nprov];
            release(d, durable_floor(d), 0);
            return;
        }
    }
}

int pyoco_durability_advance(pyoco_durability *d, void *owner, uint64_t upto,
                             int status) {
    provider *p = NULL;
    for (size_t i = 0; i < d->nprov; i++)
        if (d->prov[i].owner == owner)
            p = &d->prov[i];
    if (!p)
        return -ENOENT;
    if (status < 0) {
        /* Those writes failed: their waiters hear it now; durable_upto
         * stays where it was, and the provider retries. */
        release(d, upto, -EIO);
        return 0;
    }
    if (upto > p->upto)
        p->upto = upto;
    release(d, durable_floor(d), 0);
    return 0;
}

int pyoco_durability_wait(pyoco_durability *d, pyoco_durable_fn fn, void *ud) {
    if (!fn)
        return -EINVAL;
    uint64_t target = pyoco_bus_last_seq(d->bus);
    if (d->nprov == 0 || (!d->head && durable_floor(d) >= target)) {
        fn(0, ud);
        return 0;
    }
    waiter *w = malloc(sizeof(*w));
    if (!w)
        return -ENOMEM;
    *w = (waiter){NULL, target, fn, ud};
    if (d->tail)
        d->tail->next = w;
    else
        d->head = w;
    d->tail = w;
    d->nwait++;
    return 0;
}

size_t pyoco_durability_waiting(const pyoco_durability *d) {
    return d->nwait;
}

size_t pyoco_durability_providers(const pyoco_durability *d) {
    return d->nprov;
}
