/* core/run_table.c - the id -> run hash table. */
#include "run_table.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"

static size_t hash_id(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)(h ^ (h >> 29));
}

void pyoco_run_table_init(pyoco_run_table *t) {
    memset(t, 0, sizeof *t);
}

void pyoco_run_table_fini(pyoco_run_table *t) {
    free(t->slots);
    memset(t, 0, sizeof *t);
}

pyoco_run *pyoco_run_table_get(const pyoco_run_table *t, const char *id) {
    if (!t->cap)
        return NULL;
    size_t mask = t->cap - 1;
    size_t h = hash_id(id);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        pyoco_run *r = t->slots[i];
        if (!r)
            return NULL;
        if (r->hash == h && strcmp(r->id, id) == 0)
            return r;
    }
}

static void insert_slot(pyoco_run **slots, size_t cap, pyoco_run *run) {
    size_t mask = cap - 1;
    size_t i = run->hash & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = run;
}

static int grow(pyoco_run_table *t) {
    size_t ncap = t->cap ? t->cap * 2 : 64;
    pyoco_run **ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i])
            insert_slot(ns, ncap, t->slots[i]);
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

int pyoco_run_table_put(pyoco_run_table *t, pyoco_run *run) {
    if (pyoco_run_table_get(t, run->id))
        return -EEXIST;
    run->hash = hash_id(run->id);
    /* load factor <= 1/2 keeps probes short */
    if ((t->count + 1) * 2 > t->cap) {
        int rc = grow(t);
        if (rc < 0)
            return rc;
    }
    insert_slot(t->slots, t->cap, run);
    t->count++;
    return 0;
}

void pyoco_run_table_del(pyoco_run_table *t, pyoco_run *run) {
    if (!t->cap)
        return;
    size_t mask = t->cap - 1;
    size_t i = run->hash & mask;
    while (t->slots[i] != run) {
        if (!t->slots[i])
            return;
        i = (i + 1) & mask;
    }
    /* backward shift: move later members of the cluster into the hole
     * when their home slot does not lie strictly between hole and them */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
        size_t home = t->slots[j]->hash & mask;
        int between =
            hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole] = NULL;
    t->count--;
}
