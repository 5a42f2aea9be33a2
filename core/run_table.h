/* core/run_table.h - runs by id: an open-addressing hash table (internal).
 * Linear probing with backward-shift deletion, so there are no tombstones
 * and lookups stay short after many evictions. */
#ifndef PYOCO_CORE_RUN_TABLE_H
#define PYOCO_CORE_RUN_TABLE_H

#include <stddef.h>

typedef struct pyoco_run pyoco_run;

typedef struct pyoco_run_table {
    pyoco_run **slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} pyoco_run_table;

void pyoco_run_table_init(pyoco_run_table *t);
void pyoco_run_table_fini(pyoco_run_table *t);
pyoco_run *pyoco_run_table_get(const pyoco_run_table *t, const char *id);
/* 0, -EEXIST or -ENOMEM. */
int pyoco_run_table_put(pyoco_run_table *t, pyoco_run *run);
/* Removes run (by identity); no-op when absent. */
void pyoco_run_table_del(pyoco_run_table *t, pyoco_run *run);

#endif
