/* auth_cred.h - the credentials of a request: an API key (X-API-Key or
 * Authorization: Bearer) or HTTP basic auth (for the metrics path). */
#ifndef PYOCO_AUTH_CRED_H
#define PYOCO_AUTH_CRED_H

#include <stdbool.h>
#include <stddef.h>

#include "auth_keys.h"

#define PYOCO_AUTH_BASIC_MAX 512 /* decoded user:pass bytes we accept */

typedef enum pyoco_auth_cred_kind {
    PYOCO_AUTH_CRED_NONE = 0,  /* no credential header */
    PYOCO_AUTH_CRED_KEY = 1,   /* key/keylen point into the header value */
    PYOCO_AUTH_CRED_BASIC = 2, /* user/pass point into `decoded` */
    PYOCO_AUTH_CRED_BAD = 3,   /* a credential header we cannot read */
} pyoco_auth_cred_kind;

typedef struct pyoco_auth_cred {
    pyoco_auth_cred_kind kind;
    const char *key;
    size_t keylen;
    const char *user, *pass;
    size_t userlen, passlen;
    char decoded[PYOCO_AUTH_BASIC_MAX + 4];
} pyoco_auth_cred;

/* From the X-API-Key and Authorization header values (either may be NULL).
 * X-API-Key wins when both are sent. */
void pyoco_auth_cred_parse(const char *x_api_key, const char *authorization,
                           pyoco_auth_cred *out);
/* Wipe decoded secrets. */
void pyoco_auth_cred_clear(pyoco_auth_cred *c);

/* metrics_basic_auth: the digests of the user name and of the password. */
typedef struct pyoco_auth_basic {
    bool set;
    unsigned char user_digest[PYOCO_AUTH_DIGEST_LEN];
    unsigned char pass_digest[PYOCO_AUTH_DIGEST_LEN];
} pyoco_auth_basic;

/* Both compares always run, in constant time. */
bool pyoco_auth_basic_check(const pyoco_auth_basic *b,
                            const pyoco_auth_cred *c);

#endif
