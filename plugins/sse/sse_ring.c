/* sse_ring.c - bounded replay history: rings of events per run, and the
 * table of runs with an LRU cap. */
#include "sse_ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- ring ---------------------------------------------------------------- */

int sse_ring_init(sse_ring *r, size_t cap, sse_id floor) {
    memset(r, 0, sizeof(*r));
    r->cap = cap ? cap : 1;
    r->floor = floor;
    /* entries are allocated as they come: most slots see few events */
    return 0;
}

void sse_ring_free(sse_ring *r) {
    for (size_t k = 0; r->e && k < r->count; k++)
        free(r->e[(r->head + k) % r->alloc].text);
    free(r->e);
    r->e = NULL;
    r->count = r->head = r->alloc = 0;
}

/* Doubles the allocation (up to cap), oldest entry first again. */
static int ring_grow(sse_ring *r) {
    size_t n = r->alloc ? r->alloc * 2 : 8;
    if (n > r->cap)
        n = r->cap;
    sse_entry *e = malloc(n * sizeof(*e));
    if (!e)
        return -ENOMEM;
    for (size_t k = 0; k < r->count; k++)
        e[k] = r->e[(r->head + k) % r->alloc];
    free(r->e);
    r->e = e;
    r->alloc = n;
    r->head = 0;
    return 0;
}

int sse_ring_push(sse_ring *r, sse_id id, const char *text, size_t len) {
    if (r->count == r->alloc && r->alloc < r->cap && ring_grow(r) < 0)
        return -ENOMEM;
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (r->count == r->cap) {
        sse_entry *old = &r->e[r->head];
        r->floor = old->id;
        free(old->text);
        r->head = (r->head + 1) % r->alloc;
        r->count--;
    }
    sse_entry *e = &r->e[(r->head + r->count) % r->alloc];
    e->id = id;
    e->text = copy;
    e->len = len;
    r->count++;
    return 0;
}

const sse_entry *sse_ring_at(const sse_ring *r, size_t k) {
    return k < r->count ? &r->e[(r->head + k) % r->alloc] : NULL;
}

long sse_ring_resume(const sse_ring *r, sse_id after) {
    if (sse_id_cmp(after, r->floor) < 0)
        return -ESTALE;
    /* from the newest back: a resuming client is usually just behind */
    size_t k = r->count;
    while (k > 0 && sse_id_cmp(sse_ring_at(r, k - 1)->id, after) > 0)
        k--;
    return (long)k;
}

/* ---- table ---------------------------------------------------------------
 */

static size_t hash_id(const char *s) {
    size_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int sse_table_init(sse_table *t, size_t max_slots, size_t ring_cap) {
    memset(t, 0, sizeof(*t));
    t->max_slots = max_slots ? max_slots : 1;
    t->ring_cap = ring_cap ? ring_cap : 1;
    t->nbuckets = 64;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    return t->buckets ? 0 : -ENOMEM;
}

static void slot_free(sse_slot *s) {
    sse_ring_free(&s->ring);
    free(s);
}

void sse_table_free(sse_table *t) {
    for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
        sse_slot *s = t->buckets[i];
        while (s) {
            sse_slot *next = s->hnext;
            slot_free(s);
            s = next;
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

sse_slot *sse_table_get(sse_table *t, const char *run_id) {
    sse_slot *s = t->buckets[hash_id(run_id) & (t->nbuckets - 1)];
    while (s && strcmp(s->run_id, run_id) != 0)
        s = s->hnext;
    return s;
}

static void lru_unlink(sse_table *t, sse_slot *s) {
    if (s->lru_prev)
        s->lru_prev->lru_next = s->lru_next;
    else if (t->lru_head == s)
        t->lru_head = s->lru_next;
    if (s->lru_next)
        s->lru_next->lru_prev = s->lru_prev;
    else if (t->lru_tail == s)
        t->lru_tail = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
}

static void lru_push_head(sse_table *t, sse_slot *s) {
    s->lru_prev = NULL;
    s->lru_next = t->lru_head;
    if (t->lru_head)
        t->lru_head->lru_prev = s;
    t->lru_head = s;
    if (!t->lru_tail)
        t->lru_tail = s;
}

static void grow(sse_table *t) {
    size_t n = t->nbuckets * 2;
    sse_slot **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < t->nbuckets; i++) {
        sse_slot *s = t->buckets[i];
        while (s) {
            sse_slot *next = s->hnext;
            size_t j = hash_id(s->run_id) & (n - 1);
            s->hnext = b[j];
            b[j] = s;
            s = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static void unlink_hash(sse_table *t, sse_slot *s) {
    sse_slot **pp = &t->buckets[hash_id(s->run_id) & (t->nbuckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    t->count--;
}

void sse_table_drop(sse_table *t, sse_slot *s) {
    if (!s || s->pins)
        return;
    lru_unlink(t, s);
    unlink_hash(t, s);
    slot_free(s);
}

sse_slot *sse_table_pin(sse_table *t, const char *run_id, sse_id floor,
                        bool *created) {
    if (!run_id || strlen(run_id) >= sizeof(((sse_slot *)0)->run_id))
        return NULL;
    sse_slot *s = sse_table_get(t, run_id);
    *created = s == NULL;
    if (s) {
        if (s->pins++ == 0)
            lru_unlink(t, s);
        return s;
    }
    if (!(s = calloc(1, sizeof(*s))))
        return NULL;
    strcpy(s->run_id, run_id);
    sse_ring_init(&s->ring, t->ring_cap, floor);
    s->pins = 1;
    if (t->count + 1 > t->nbuckets)
        grow(t);
    size_t j = hash_id(run_id) & (t->nbuckets - 1);
    s->hnext = t->buckets[j];
    t->buckets[j] = s;
    t->count++;
    return s;
}

void sse_table_unpin(sse_table *t, sse_slot *s) {
    if (!s || s->pins == 0 || --s->pins > 0)
        return;
    lru_push_head(t, s);
    /* s is at the head: the loop stops before it */
    while (t->count > t->max_slots && t->lru_tail && t->lru_tail != s) {
        sse_table_drop(t, t->lru_tail);
        t->dropped++;
    }
}

void sse_table_touch(sse_table *t, sse_slot *s) {
    if (s && s->pins == 0 && t->lru_head != s) {
        lru_unlink(t, s);
        lru_push_head(t, s);
    }
}
