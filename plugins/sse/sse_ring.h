/* sse_ring.h - bounded replay history for Last-Event-ID resumes.
 *
 * A slot per run that has (or recently had) a stream: a ring of the last
 * `ring_cap` formatted events, and the ids it still covers. Slots with open
 * streams are pinned; the others sit on an LRU list and the oldest is
 * dropped once there are more than `max_slots`. Runs nobody watched have no
 * slot, so the plugin does no work for them. */
#ifndef PYOCO_SSE_RING_H
#define PYOCO_SSE_RING_H

#include <stdbool.h>
#include <stddef.h>

#include "sse_format.h"

typedef struct sse_entry {
    sse_id id;
    char *text; /* the formatted event, "id: ...\n...\n\n" */
    size_t len;
} sse_entry;

typedef struct sse_ring {
    sse_entry *e;
    size_t cap;         /* the most entries kept */
    size_t alloc;       /* entries allocated: grows up to cap */
    size_t head, count; /* oldest entry at e[head] */
    /* Every event of the run with an id above `floor` is in the ring: the
     * last dropped entry, or what the stream's snapshot already showed. */
    sse_id floor;
} sse_ring;

struct sse_stream;

typedef struct sse_slot {
    char run_id[40];
    sse_ring ring;
    struct sse_slot *hnext;
    struct sse_slot *lru_prev, *lru_next; /* unpinned slots only */
    size_t pins;
    struct sse_stream *streams; /* owned by the plugin */
} sse_slot;

typedef struct sse_table {
    sse_slot **buckets;
    size_t nbuckets, count;
    sse_slot *lru_head, *lru_tail; /* head = most recently used */
    size_t max_slots, ring_cap;
    size_t dropped; /* slots dropped by the LRU cap, since start */
} sse_table;

int sse_ring_init(sse_ring *r, size_t cap, sse_id floor);
void sse_ring_free(sse_ring *r);
/* Copies text. A full ring drops its oldest entry (raising the floor). */
int sse_ring_push(sse_ring *r, sse_id id, const char *text, size_t len);
/* The k-th entry, oldest first (k < count). */
const sse_entry *sse_ring_at(const sse_ring *r, size_t k);
/* Where the entries after `after` start (0..count), or -ESTALE when the
 * ring no longer covers `after` (older than the floor). */
long sse_ring_resume(const sse_ring *r, sse_id after);

int sse_table_init(sse_table *t, size_t max_slots, size_t ring_cap);
void sse_table_free(sse_table *t);
sse_slot *sse_table_get(sse_table *t, const char *run_id);
/* The run's slot, created with the given floor when missing (*created
 * says which), and pinned. NULL on ENOMEM or an id over 36 bytes. */
sse_slot *sse_table_pin(sse_table *t, const char *run_id, sse_id floor,
                        bool *created);
/* Undo one pin; the last one puts the slot on the LRU list (most recent)
 * and may drop the least recently used unpinned slots - never this one. */
void sse_table_unpin(sse_table *t, sse_slot *s);
/* Mark an unpinned slot as just used. */
void sse_table_touch(sse_table *t, sse_slot *s);
/* Remove an unpinned slot now (its run left memory). */
void sse_table_drop(sse_table *t, sse_slot *s);

#endif
