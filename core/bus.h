/* core/bus.h - the in-process event bus (internal).
 *
 * Synchronous dispatch in subscription order on the loop thread. A callback
 * may subscribe or unsubscribe (itself or others) while an event is being
 * dispatched: an unsubscribed entry is skipped at once and reclaimed after
 * the outermost dispatch returns. Subscribers added during a dispatch see
 * the next event, not the current one. */
#ifndef PYOCO_CORE_BUS_H
#define PYOCO_CORE_BUS_H

#include <pyoco/events.h>
#include <pyoco/plugin.h>

typedef struct pyoco_bus pyoco_bus;

pyoco_bus *pyoco_bus_new(void);
/* Calls every remaining subscription's free function. */
void pyoco_bus_free(pyoco_bus *bus);

/* kind: a pyoco_event_kind or PYOCO_EV_ANY. owner: an opaque tag (the
 * plugin's host handle, or NULL for the core) used to drop all of a plugin's
 * subscriptions when it is unloaded. Returns an id > 0 or -errno. */
int pyoco_bus_subscribe(pyoco_bus *bus, uint32_t kind, pyoco_event_fn fn,
                        void *user_data, pyoco_free_fn free_fn, void *owner);
/* -ENOENT when no such live id (or owner mismatch when owner != NULL). */
int pyoco_bus_unsubscribe(pyoco_bus *bus, int id, void *owner);
/* Drops every subscription of owner; returns how many. */
int pyoco_bus_unsubscribe_owner(pyoco_bus *bus, void *owner);

/* Stamps ev->size, ev->seq (next number) and ev->time (when 0), then calls
 * the subscribers of ev->kind and of PYOCO_EV_ANY, in subscription order.
 * Returns the seq given. */
uint64_t pyoco_bus_publish(pyoco_bus *bus, pyoco_event *ev);
uint64_t pyoco_bus_last_seq(const pyoco_bus *bus);
uint64_t pyoco_bus_count(const pyoco_bus *bus, uint32_t kind);
/* Live subscriptions. */
size_t pyoco_bus_subscriptions(const pyoco_bus *bus);

#endif
