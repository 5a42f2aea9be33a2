/* writer.h - the writer thread: a queue of write records filled by the loop
 * and committed in batches (group commit), one transaction per batch. */
#ifndef PYOCO_STORAGE_WRITER_H
#define PYOCO_STORAGE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "sql.h"

typedef struct pyoco_storage_writer pyoco_storage_writer;

typedef struct pyoco_storage_writer_opts {
    pyoco_storage_sql *sql; /* borrowed; used only by the writer thread */
    size_t batch_max;       /* records per transaction, >= 1 */
    double retry_min_s;     /* first delay after a failed batch */
    double retry_max_s;     /* the delay doubles up to this */
    /* Called on the writer thread after each commit or failure; must be
     * thread-safe (the plugin activates a libevent event). */
    void (*notify)(void *ud);
    void *ud;
} pyoco_storage_writer_opts;

/* One committed batch, for the latency and batch-size histograms. */
typedef struct pyoco_storage_batch_stat {
    double commit_s;
    size_t events;
} pyoco_storage_batch_stat;

typedef struct pyoco_storage_writer_state {
    uint64_t committed; /* highest seq durable */
    int status;         /* 0, or -EIO while the current batch fails */
    char error[512];    /* last error message when status < 0 */
    uint64_t errors;    /* failed batch attempts so far */
    size_t queued;      /* records not yet committed (incl. a failed batch) */
} pyoco_storage_writer_state;

int pyoco_storage_writer_start(const pyoco_storage_writer_opts *o,
                               pyoco_storage_writer **out);
/* Takes ownership of r (seq must increase). Thread-safe. */
void pyoco_storage_writer_push(pyoco_storage_writer *w, pyoco_storage_rec *r);
void pyoco_storage_writer_state_get(pyoco_storage_writer *w,
                                    pyoco_storage_writer_state *out);
/* Move up to max batch stats recorded since the last call into out. */
size_t pyoco_storage_writer_take_stats(pyoco_storage_writer *w,
                                       pyoco_storage_batch_stat *out,
                                       size_t max);
/* Commit what is queued (unless writes are failing), stop the thread and
 * free it. Records that could not be committed are counted in *lost. */
void pyoco_storage_writer_stop(pyoco_storage_writer *w, size_t *lost);

#endif
