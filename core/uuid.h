/* core/uuid.h - random (version 4) UUIDs from getrandom (internal). */
#ifndef PYOCO_CORE_UUID_H
#define PYOCO_CORE_UUID_H

/* Writes "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" and a NUL into out.
 * 0 or -errno when the kernel gives no randomness. */
int pyoco_uuid4(char out[37]);

#endif
