/* core/durability.h - the durability barrier (internal).
 *
 * Providers (storage) report how far the event sequence is durable; a
 * request handler waits for "everything published so far". With no
 * provider the barrier passes at once. */
#ifndef PYOCO_CORE_DURABILITY_H
#define PYOCO_CORE_DURABILITY_H

#include <stdint.h>

#include <pyoco/plugin.h>

#include "bus.h"

typedef struct pyoco_durability pyoco_durability;

pyoco_durability *pyoco_durability_new(pyoco_bus *bus);
/* Pending waiters are called with -ECANCELED. */
void pyoco_durability_free(pyoco_durability *d);

/* owner identifies the provider (a plugin's host handle). */
int pyoco_durability_provide(pyoco_durability *d, void *owner);
/* Removing a provider may release waiters (it no longer holds them). */
void pyoco_durability_remove(pyoco_durability *d, void *owner);
int pyoco_durability_advance(pyoco_durability *d, void *owner, uint64_t upto,
                             int status);
/* fn(0|-EIO, ud) once every event published so far is durable. */
int pyoco_durability_wait(pyoco_durability *d, pyoco_durable_fn fn, void *ud);
size_t pyoco_durability_waiting(const pyoco_durability *d);
size_t pyoco_durability_providers(const pyoco_durability *d);

#endif
