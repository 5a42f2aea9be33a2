/* core/archive.h - the JSON archive writer (internal): evicted runs are
 * written as <dir>/<run_id>.json on a background thread, so the loop thread
 * never touches the disk. */
#ifndef PYOCO_CORE_ARCHIVE_H
#define PYOCO_CORE_ARCHIVE_H

#include <stdint.h>

#include <jansson.h>

typedef struct pyoco_archive pyoco_archive;

/* dir NULL or "" = a writer that drops everything (no files). The thread
 * starts with the first put. NULL only on allocation failure. */
pyoco_archive *pyoco_archive_new(const char *dir);
/* Writes what is pending, stops the thread, frees. */
void pyoco_archive_free(pyoco_archive *a);

/* Queue obj (stolen; it must not be changed afterwards by anyone) for
 * <dir>/<name>.json. name must be a plain file name (no '/'). Never blocks
 * on I/O. 0 or -errno (obj is released either way). */
int pyoco_archive_put(pyoco_archive *a, const char *name, json_t *obj);
/* Blocks until every put so far has been written or has failed (tests,
 * shutdown; never call it on the loop thread in normal operation). */
void pyoco_archive_flush(pyoco_archive *a);

uint64_t pyoco_archive_written(const pyoco_archive *a);
uint64_t pyoco_archive_errors(const pyoco_archive *a);

#endif
