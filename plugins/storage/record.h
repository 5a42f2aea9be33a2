/* record.h - a write record: one event turned into one SQL operation with
 * its bound values, built on the loop thread (all JSON already serialized,
 * since jansson values are not shared across threads) and executed later
 * by the writer thread. */
#ifndef PYOCO_STORAGE_RECORD_H
#define PYOCO_STORAGE_RECORD_H

#include <stdint.h>

#include <pyoco/events.h>

typedef enum pyoco_storage_op {
    PYOCO_STORAGE_OP_RUN_INSERT = 1, /* SUBMITTED */
    PYOCO_STORAGE_OP_RUN_ASSIGNED,   /* ASSIGNED */
    PYOCO_STORAGE_OP_RUN_STATUS,     /* STATUS */
    PYOCO_STORAGE_OP_TASK,           /* TASK_UPDATED */
    PYOCO_STORAGE_OP_LOGS,           /* LOGS_APPENDED */
    PYOCO_STORAGE_OP_EVICTED,        /* EVICTED */
    PYOCO_STORAGE_OP_OUTBOX_PUT,     /* OUTBOX_PUT */
    PYOCO_STORAGE_OP_OUTBOX_DONE,    /* OUTBOX_DONE */
    PYOCO_STORAGE_OP_RUN_REQUEUED,   /* REQUEUED (lease expired) */
    PYOCO_STORAGE_OP_COUNT
} pyoco_storage_op;

typedef enum pyoco_storage_vtype {
    PYOCO_STORAGE_V_NULL = 0,
    PYOCO_STORAGE_V_INT,
    PYOCO_STORAGE_V_REAL,
    PYOCO_STORAGE_V_TEXT,
} pyoco_storage_vtype;

typedef struct pyoco_storage_val {
    pyoco_storage_vtype type;
    int64_t i;
    double d;
    char *s; /* owned */
} pyoco_storage_val;

#define PYOCO_STORAGE_MAX_VALS 10

typedef struct pyoco_storage_rec {
    struct pyoco_storage_rec *next;
    uint64_t seq; /* the bus seq of the event */
    pyoco_storage_op op;
    int nvals;
    pyoco_storage_val v[PYOCO_STORAGE_MAX_VALS];
} pyoco_storage_rec;

/* Turn an event into a record. *out is NULL (and 0 returned) when the
 * event needs no write. queue_seq_base is added to the event seq so the
 * queue order stays monotonic across restarts (seq restarts at 1).
 * -ENOMEM on allocation failure, -EINVAL on a malformed event. */
int pyoco_storage_rec_from_event(const pyoco_event *ev, uint64_t queue_seq_base,
                                 pyoco_storage_rec **out);
void pyoco_storage_rec_free(pyoco_storage_rec *r);
/* Free a whole `next` chain. */
void pyoco_storage_rec_free_list(pyoco_storage_rec *r);

#endif
