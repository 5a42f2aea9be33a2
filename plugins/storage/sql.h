/* sql.h - executing write records on the writer's connection. */
#ifndef PYOCO_STORAGE_SQL_H
#define PYOCO_STORAGE_SQL_H

#include <stddef.h>

#include <sqlite3.h>

#include "record.h"

typedef struct pyoco_storage_sql pyoco_storage_sql;

/* Prepare every statement once. NULL on failure (message in err). */
pyoco_storage_sql *pyoco_storage_sql_new(sqlite3 *db, char *err, size_t errlen);
void pyoco_storage_sql_free(pyoco_storage_sql *q);

/* Run one record inside the caller's transaction. Returns the SQLite
 * result code (SQLITE_OK on success); err gets a message otherwise. */
int pyoco_storage_sql_apply(pyoco_storage_sql *q, const pyoco_storage_rec *r,
                            char *err, size_t errlen);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK on the same connection. */
int pyoco_storage_sql_begin(pyoco_storage_sql *q);
int pyoco_storage_sql_commit(pyoco_storage_sql *q);
void pyoco_storage_sql_rollback(pyoco_storage_sql *q);
sqlite3 *pyoco_storage_sql_db(pyoco_storage_sql *q);

#endif
