/* auth_keys.h - the auth plugin's key table: roles, parsing keys from the
 * plugin's block and from a key file, and constant-time lookup by key. */
#ifndef PYOCO_AUTH_KEYS_H
#define PYOCO_AUTH_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define PYOCO_AUTH_DIGEST_LEN 32 /* SHA-256 */
#define PYOCO_AUTH_NAME_MAX 64

/* Rights a key can hold (a bit mask). ADMIN implies every other right. */
enum {
    PYOCO_AUTH_WORKER = 1u << 0,
    PYOCO_AUTH_SUBMITTER = 1u << 1,
    PYOCO_AUTH_READER = 1u << 2,
    PYOCO_AUTH_METRICS = 1u << 3,
    PYOCO_AUTH_ADMIN = 1u << 4,
};

typedef struct pyoco_auth_key {
    char name[PYOCO_AUTH_NAME_MAX + 1];
    unsigned char digest[PYOCO_AUTH_DIGEST_LEN];
    unsigned roles;
} pyoco_auth_key;

typedef struct pyoco_auth_keyset {
    pyoco_auth_key *keys;
    size_t n;
} pyoco_auth_keyset;

/* A role name ("worker") to its bit; 0 when unknown. len: bytes of name. */
unsigned pyoco_auth_role_parse(const char *name, size_t len);
/* The name of one role bit ("worker"); "?" for anything else. */
const char *pyoco_auth_role_name(unsigned role);
/* "worker, submitter, reader, metrics, admin" for error messages. */
const char *pyoco_auth_role_list(void);

/* 64 hex digits (either case) to 32 bytes; -EINVAL otherwise. */
int pyoco_auth_hex_decode(const char *hex, unsigned char out[32]);
/* SHA-256 of data; 0 or -EIO. */
int pyoco_auth_sha256(const void *data, size_t len, unsigned char out[32]);

/* Append the entries of the `keys` LIST ({name, sha256, roles}). `where` is
 * the "file:line" prefix for messages (may be ""). */
int pyoco_auth_keys_from_json(pyoco_auth_keyset *ks, const json_t *list,
                              const char *where, char *err, size_t errlen);
/* Append the lines of a key file: "name sha256hex role,role", '#' comments,
 * blank lines ignored. Messages name path:line. */
int pyoco_auth_keys_from_file(pyoco_auth_keyset *ks, const char *path,
                              char *err, size_t errlen);
/* Append one key after checking its fields; `ctx` prefixes messages. */
int pyoco_auth_keys_add(pyoco_auth_keyset *ks, const char *name,
                        const char *sha256_hex, unsigned roles, const char *ctx,
                        char *err, size_t errlen);
void pyoco_auth_keyset_free(pyoco_auth_keyset *ks);

/* The key whose digest is SHA-256(key), or NULL. Compares against every
 * entry in constant time (CRYPTO_memcmp, no early exit). */
const pyoco_auth_key *pyoco_auth_keys_match(const pyoco_auth_keyset *ks,
                                            const char *key, size_t len);

#endif
