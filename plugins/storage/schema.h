/* schema.h - opening the database: the owner lock, integrity and mode
 * checks, and the versioned schema (user_version + schema_migrations). */
#ifndef PYOCO_STORAGE_SCHEMA_H
#define PYOCO_STORAGE_SCHEMA_H

#include <stddef.h>

#include <sqlite3.h>

/* The schema version this code writes. */
#define PYOCO_STORAGE_SCHEMA_VERSION 1

typedef struct pyoco_storage_db_opts {
    const char *path;
    const char *synchronous; /* FULL | NORMAL | OFF */
    int busy_timeout_ms;
} pyoco_storage_db_opts;

typedef struct pyoco_storage_db {
    sqlite3 *rw; /* the writer's connection (used by one thread at a time) */
    sqlite3 *ro; /* read-only: restore and archive lookups on the loop */
    int lock_fd; /* flock(LOCK_EX) on <path>.lock while we own the DB */
    char *path;
    char *lock_path;
    int schema_version; /* what the file had before we opened it */
} pyoco_storage_db;

/* Lock, open (WAL), check and migrate. Every failure writes a message that
 * names the path into err and returns a negative errno:
 * -EBUSY another server owns it, -EACCES/-EROFS read-only or unwritable,
 * -EILSEQ not a database or corrupt, -EPROTO schema newer than ours. */
int pyoco_storage_db_open(const pyoco_storage_db_opts *o,
                          pyoco_storage_db **out, char *err, size_t errlen);
void pyoco_storage_db_close(pyoco_storage_db *db);

/* Bring a connection's schema to PYOCO_STORAGE_SCHEMA_VERSION (one
 * transaction per step; each step is recorded in schema_migrations).
 * *from gets the version found. */
int pyoco_storage_schema_migrate(sqlite3 *db, const char *path, int *from,
                                 char *err, size_t errlen);

#endif
