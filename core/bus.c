/* core/bus.c - synchronous publish/subscribe on the loop thread.
 *
 * One array of subscriptions in subscription order. Publishing walks it once
 * and calls the entries whose kind matches (or that want every kind). The
 * array is only compacted when no dispatch is running, so callbacks may
 * (un)subscribe freely. */
#include "bus.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bus_sub {
    int id;
    uint32_t kind;
    bool dead;
    pyoco_event_fn fn;
    void *user_data;
    pyoco_free_fn free_fn;
    void *owner;
} bus_sub;

struct pyoco_bus {
    bus_sub *subs;
    size_t n, cap;
    int next_id;
    int depth;    /* nesting of publish calls in progress */
    size_t ndead; /* dead entries awaiting compaction */
    uint64_t seq;
    uint64_t per_kind[PYOCO_EV_KIND_COUNT];
    /* Kinds someone listens to, so publishing an unwatched kind is a bit
     * test; recomputed on (un)subscribe. */
    uint32_t watched;
};

static void bus_recompute_watched(pyoco_bus *bus) {
    uint32_t w = 0;
    for (size_t i = 0; i < bus->n; i++) {
        if (bus->subs[i].dead)
            continue;
        if (bus->subs[i].kind == PYOCO_EV_ANY)
            w = UINT32_MAX;
        else if (bus->subs[i].kind < 32)
            w |= 1u << bus->subs[i].kind;
    }
    bus->watched = w;
}

static void bus_compact(pyoco_bus *bus) {
    size_t j = 0;
    for (size_t i = 0; i < bus->n; i++) {
        if (bus->subs[i].dead)
            continue;
        bus->subs[j++] = bus->subs[i];
    }
    bus->n = j;
    bus->ndead = 0;
}

pyoco_bus *pyoco_bus_new(void) {
    pyoco_bus *bus = calloc(1, sizeof(*bus));
    if (bus)
        bus->next_id = 1;
    return bus;
}

void pyoco_bus_free(pyoco_bus *bus) {
    if (!bus)
        return;
    for (size_t i = 0; i < bus->n; i++) {
        if (!bus->subs[i].dead && bus->subs[i].free_fn)
            bus->subs[i].free_fn(bus->subs[i].user_data);
    }
    free(bus->subs);
    free(bus);
}

int pyoco_bus_subscribe(pyoco_bus *bus, uint32_t kind, pyoco_event_fn fn,
                        void *user_data, pyoco_free_fn free_fn, void *owner) {
    if (!bus || !fn || kind >= PYOCO_EV_KIND_COUNT)
        return -EINVAL;
    if (bus->n == bus->cap) {
        size_t cap = bus->cap ? bus->cap * 2 : 16;
        bus_sub *s = realloc(bus->subs, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        bus->subs = s;
        bus->cap = cap;
    }
    int id = bus->next_id++;
    bus->subs[bus->n++] = (bus_sub){.id = id,
                                    .kind = kind,
                                    .fn = fn,
                                    .user_data = user_data,
                                    .free_fn = free_fn,
                                    .owner = owner};
    bus_recompute_watched(bus);
    return id;
}

static void bus_kill(pyoco_bus *bus, bus_sub *s) {
    s->dead = true;
    bus->ndead++;
    /* The free function runs now: the callback will never be called again,
     * and the entry itself is reclaimed after the dispatch. */
    if (s->free_fn)
        s->free_fn(s->user_data);
}

int pyoco_bus_unsubscribe(pyoco_bus *bus, int id, void *owner) {
    if (!bus)
        return -EINVAL;
    for (size_t i = 0; i < bus->n; i++) {
        bus_sub *s = &bus->subs[i];
        if (s->id != id || s->dead)
            continue;
        if (owner && s->owner != owner)
            return -ENOENT;
        bus_kill(bus, s);
        if (bus->depth == 0)
            bus_compact(bus);
        bus_recompute_watched(bus);
        return 0;
    }
    return -ENOENT;
}

int pyoco_bus_unsubscribe_owner(pyoco_bus *bus, void *owner) {
    int count = 0;
    if (!bus)
        return 0;
    for (size_t i = 0; i < bus->n; i++) {
        bus_sub *s = &bus->subs[i];
        if (!s->dead && s->owner == owner) {
            bus_kill(bus, s);
            count++;
        }
    }
    if (bus->depth == 0)
        bus_compact(bus);
    bus_recompute_watched(bus);
    return count;
}

static double bus_wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t pyoco_bus_publish(pyoco_bus *bus, pyoco_event *ev) {
    ev->size = sizeof(*ev);
    ev->seq = ++bus->seq;
    if (ev->kind < PYOCO_EV_KIND_COUNT)
        bus->per_kind[ev->kind]++;
    if (ev->kind < 32 && !(bus->watched & (1u << ev->kind)))
        return ev->seq;
    if (ev->time == 0)
        ev->time = bus_wall_now();
    /* Only entries that existed when the dispatch began are called. */
    size_t n = bus->n;
    bus->depth++;
    for (size_t i = 0; i < n; i++) {
        bus_sub *s = &bus->subs[i];
        if (s->dead || (s->kind != PYOCO_EV_ANY && s->kind != ev->kind))
            continue;
        s->fn(ev, s->user_data);
    }
    if (--bus->depth == 0 && bus->ndead)
        bus_compact(bus);
    return ev->seq;
}

uint64_t pyoco_bus_last_seq(const pyoco_bus *bus) {
    return bus->seq;
}

uint64_t pyoco_bus_count(const pyoco_bus *bus, uint32_t kind) {
    return kind < PYOCO_EV_KIND_COUNT ? bus->per_kind[kind] : 0;
}

size_t pyoco_bus_subscriptions(const pyoco_bus *bus) {
    return bus->n - bus->ndead;
}
