/* reader.h - reading runs back from the database (restore at start-up and
 * archive lookups), on the read-only connection. */
#ifndef PYOCO_STORAGE_READER_H
#define PYOCO_STORAGE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

typedef struct pyoco_storage_reader pyoco_storage_reader;

pyoco_storage_reader *pyoco_storage_reader_new(sqlite3 *db, char *err,
                                               size_t errlen);
void pyoco_storage_reader_free(pyoco_storage_reader *rd);

/* The GET /runs/{id} object of a stored run (new reference), or NULL when
 * unknown or unreadable (message in err when err is not NULL). With
 * for_restore, "tags" and "queued" are added (what api->run_restore
 * takes). Point lookups on primary keys only. */
json_t *pyoco_storage_reader_run(pyoco_storage_reader *rd, const char *run_id,
                                 bool for_restore, char *err, size_t errlen);

typedef struct pyoco_storage_restore_cbs {
    /* Return < 0 to count the run as failed (restore goes on). */
    int (*run)(const json_t *run, void *ud);
    int (*outbox)(const char *owner, const char *id, const json_t *data,
                  void *ud);
    void *ud;
} pyoco_storage_restore_cbs;

typedef struct pyoco_storage_restore_counts {
    size_t runs, queued, outbox, failed;
} pyoco_storage_restore_counts;

/* Every non-evicted run: the others in start_time order, then the queued
 * ones in queue_seq order (so the FIFO comes back as it was); then every
 * outbox entry. 0, or a negative errno when the database cannot be read
 * (message in err). */
int pyoco_storage_reader_restore(pyoco_storage_reader *rd,
                                 const pyoco_storage_restore_cbs *cbs,
                                 pyoco_storage_restore_counts *counts,
                                 char *err, size_t errlen);

/* The largest queue_seq stored (0 when none). */
int pyoco_storage_reader_max_queue_seq(pyoco_storage_reader *rd, uint64_t *out);

#endif
