/* pyoco/types.h - value types shared by the core and plugins.
 *
 * Part of the public, installed API. Append-only: a value once given keeps
 * its meaning for the whole ABI major version. */
#ifndef PYOCO_TYPES_H
#define PYOCO_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Run status. PYOCO_STATUS_NONE is "no status yet" (the previous status of
 * a run that was just submitted). Terminal: COMPLETED, FAILED, CANCELLED. */
typedef enum pyoco_run_status {
    PYOCO_STATUS_NONE = 0,
    PYOCO_STATUS_PENDING = 1,
    PYOCO_STATUS_RUNNING = 2,
    PYOCO_STATUS_COMPLETED = 3,
    PYOCO_STATUS_FAILED = 4,
    PYOCO_STATUS_CANCELLING = 5,
    PYOCO_STATUS_CANCELLED = 6,
} pyoco_run_status;

#define PYOCO_STATUS_COUNT 7

/* Log levels for the host's logging call. */
typedef enum pyoco_log_level {
    PYOCO_LOG_DEBUG = 0,
    PYOCO_LOG_INFO = 1,
    PYOCO_LOG_WARN = 2,
    PYOCO_LOG_ERROR = 3,
} pyoco_log_level;

/* Opaque handles. The host owns all of them. */
typedef struct pyoco_host pyoco_host;       /* one per loaded plugin */
typedef struct pyoco_request pyoco_request; /* one HTTP request */

#ifdef __cplusplus
}
#endif
#endif
