/* core/run_queue.h - the tag-routed FIFO of PENDING runs (internal).
 *
 * One FIFO per distinct tag set (sorted, deduplicated). Each run carries a
 * global submission sequence number; a poll picks, among the FIFOs whose
 * tags the worker has, the head with the smallest number. So a poll costs
 * O(distinct tag sets), never O(queued runs), and removal is O(1). */
#ifndef PYOCO_CORE_RUN_QUEUE_H
#define PYOCO_CORE_RUN_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct pyoco_run pyoco_run;

typedef struct pyoco_tagq {
    char **tags; /* sorted, unique */
    size_t ntags;
    size_t pos; /* index in the queue's array */
    pyoco_run *head, *tail;
} pyoco_tagq;

typedef struct pyoco_run_queue {
    pyoco_tagq **sets; /* non-empty FIFOs only */
    size_t nsets, cap;
    json_t *index; /* tag-set key -> integer position in sets */
    size_t count;
} pyoco_run_queue;

int pyoco_run_queue_init(pyoco_run_queue *q);
void pyoco_run_queue_fini(pyoco_run_queue *q);
/* Put run into the FIFO of tags (array of strings or NULL) at its seq's
 * place: the tail for a new run (O(1)), further up for a run put back.
 * 0, -EINVAL (not strings), -ENOMEM. */
int pyoco_run_queue_push(pyoco_run_queue *q, pyoco_run *run,
                         const json_t *tags);
/* Unlink a queued run (no-op when not queued). */
void pyoco_run_queue_remove(pyoco_run_queue *q, pyoco_run *run);
/* The oldest run whose tags all are in worker_tags (array of strings or
 * NULL), unlinked; NULL when none. */
pyoco_run *pyoco_run_queue_pop(pyoco_run_queue *q, const json_t *worker_tags);

#endif
