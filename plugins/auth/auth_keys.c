/* auth_keys.c - see auth_keys.h. Keys are stored as SHA-256 digests only:
 * the configuration never holds a usable secret. */
#include "auth_keys.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

static const struct {
    const char *name;
    unsigned bit;
} roles[] = {
    {"worker", PYOCO_AUTH_WORKER}, {"submitter", PYOCO_AUTH_SUBMITTER},
    {"reader", PYOCO_AUTH_READER}, {"metrics", PYOCO_AUTH_METRICS},
    {"admin", PYOCO_AUTH_ADMIN},
};

unsigned pyoco_auth_role_parse(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strlen(roles[i].name) == len &&
            memcmp(roles[i].name, name, len) == 0)
            return roles[i].bit;
    return 0;
}

const char *pyoco_auth_role_name(unsigned role) {
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (roles[i].bit == role)
            return roles[i].name;
    return "?";
}

const char *pyoco_auth_role_list(void) {
    return "worker, submitter, reader, metrics, admin";
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pyoco_auth_hex_decode(const char *hex, unsigned char out[32]) {
    if (!hex || strlen(hex) != 2 * PYOCO_AUTH_DIGEST_LEN)
        return -EINVAL;
    for (size_t i = 0; i < PYOCO_AUTH_DIGEST_LEN; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int pyoco_auth_sha256(const void *data, size_t len, unsigned char out[32]) {
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) ||
        n != PYOCO_AUTH_DIGEST_LEN)
        return -EIO;
    return 0;
}

/* Names go into logs and JSON details: keep them plain. */
static bool name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > PYOCO_AUTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
              c == '@'))
            return false;
    }
    return true;
}

int pyoco_auth_keys_add(pyoco_auth_keyset *ks, const char *name,
                        const char *sha256_hex, unsigned roles_mask,
                        const char *ctx, char *err, size_t errlen) {
    if (!name_ok(name)) {
        snprintf(err, errlen,
                 "%s: name: expected 1-%d characters of [A-Za-z0-9_.@-], got "
                 "\"%.80s\"",
                 ctx, PYOCO_AUTH_NAME_MAX, name);
        return -EINVAL;
    }
    pyoco_auth_key k = {.roles = roles_mask};
    memcpy(k.name, name, strlen(name) + 1);
    if (pyoco_auth_hex_decode(sha256_hex, k.digest) < 0) {
        snprintf(err, errlen,
                 "%s: key '%s': sha256: expected 64 hex digits (the SHA-256 "
                 "of the key, e.g. printf %%s \"$KEY\" | sha256sum)",
                 ctx, name);
        return -EINVAL;
    }
    if (!roles_mask) {
        snprintf(err, errlen,
                 "%s: key '%s': roles: expected at least one of %s", ctx, name,
                 pyoco_auth_role_list());
        return -EINVAL;
    }
    for (size_t i = 0; i < ks->n; i++) {
        if (strcmp(ks->keys[i].name, name) == 0) {
            snprintf(err, errlen, "%s: key '%s': duplicate name", ctx, name);
            return -EINVAL;
        }
        /* Two names for one key would make the name in logs a guess. */
        if (memcmp(ks->keys[i].digest, k.digest, sizeof k.digest) == 0) {
            snprintf(err, errlen, "%s: key '%s': same sha256 as key '%s'", ctx,
                     name, ks->keys[i].name);
            return -EINVAL;
        }
    }
    pyoco_auth_key *grown = realloc(ks->keys, (ks->n + 1) * sizeof *grown);
    if (!grown) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ks->keys = grown;
    ks->keys[ks->n++] = k;
    return 0;
}

int pyoco_auth_keys_from_json(pyoco_auth_keyset *ks, const json_t *list,
                              const char *where, char *err, size_t errlen) {
    const char *pre = where && *where ? where : "";
    const char *sep = *pre ? ": " : "";
    if (!json_is_array(list)) {
        snprintf(err, errlen, "%s%splugins.auth.keys: expected a list", pre,
                 sep);
        return -EINVAL;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e) {
        char ctx[256];
        snprintf(ctx, sizeof ctx, "%s%splugins.auth.keys[%zu]", pre, sep, i);
        if (!json_is_object(e)) {
            snprintf(err, errlen,
                     "%s: expected a mapping {name, sha256, roles}", ctx);
            return -EINVAL;
        }
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)e, k, v) {
            if (strcmp(k, "name") && strcmp(k, "sha256") &&
                strcmp(k, "roles")) {
                snprintf(err, errlen,
                         "%s: unknown key '%s' (known: name, sha256, roles)",
                         ctx, k);
                return -EINVAL;
            }
        }
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *hex = json_string_value(json_object_get(e, "sha256"));
        const json_t *rl = json_object_get(e, "roles");
        if (!name) {
            snprintf(err, errlen, "%s: name: expected a string", ctx);
            return -EINVAL;
        }
        if (!hex) {
            snprintf(err, errlen, "%s: key '%s': sha256: expected a string",
                     ctx, name);
            return -EINVAL;
        }
        if (!json_is_array(rl)) {
            snprintf(err, errlen, "%s: key '%s': roles: expected a list of %s",
                     ctx, name, pyoco_auth_role_list());
            return -EINVAL;
        }
        unsigned mask = 0;
        size_t j;
        const json_t *r;
        json_array_foreach(rl, j, r) {
            const char *rn = json_string_value(r);
            unsigned bit = rn ? pyoco_auth_role_parse(rn, strlen(rn)) : 0;
            if (!bit) {
                snprintf(err, errlen,
                         "%s: key '%s': roles[%zu]: unknown role '%.40s' "
                         "(known: %s)",
                         ctx, name, j, rn ? rn : "(not a string)",
                         pyoco_auth_role_list());
                return -EINVAL;
            }
            mask |= bit;
        }
        int rc = pyoco_auth_keys_add(ks, name, hex, mask, ctx, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* One line of a key file, already stripped of comments; ctx is path:line. */
static int parse_line(pyoco_auth_keyset *ks, char *line, const char *ctx,
                      char *err, size_t errlen) {
    char *save = NULL;
    char *name = strtok_r(line, " \t", &save);
    if (!name)
        return 0; /* blank */
    char *hex = strtok_r(NULL, " \t", &save);
    char *rl = strtok_r(NULL, " \t", &save);
    char *extra = strtok_r(NULL, " \t", &save);
    if (!hex || !rl || extra) {
        snprintf(err, errlen,
                 "%s: key '%.64s': expected \"name sha256hex role,role\"", ctx,
                 name);
        return -EINVAL;
    }
    unsigned mask = 0;
    for (char *p = rl;;) {
        size_t n = strcspn(p, ",");
        unsigned bit = pyoco_auth_role_parse(p, n);
        if (!bit) {
            snprintf(err, errlen,
                     "%s: key '%.64s': unknown role '%.*s' (known: %s)", ctx,
                     name, (int)(n > 40 ? 40 : n), p, pyoco_auth_role_list());
            return -EINVAL;
        }
        mask |= bit;
        if (!p[n])
            break;
        p += n + 1;
    }
    return pyoco_auth_keys_add(ks, name, hex, mask, ctx, err, errlen);
}

int pyoco_auth_keys_from_file(pyoco_auth_keyset *ks, const char *path,
                              char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open key file: %s", path,
                 strerror(e));
        return -e;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    for (unsigned lineno = 1; (got = getline(&line, &cap, f)) >= 0; lineno++) {
        if (memchr(line, '\0', (size_t)got)) {
            snprintf(err, errlen, "%s:%u: NUL byte in key file", path, lineno);
            rc = -EINVAL;
            break;
        }
        line[strcspn(line, "#\r\n")] = '\0';
        char ctx[300];
        snprintf(ctx, sizeof ctx, "%s:%u", path, lineno);
        if ((rc = parse_line(ks, line, ctx, err, errlen)) < 0)
            break;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -EIO;
    }
    free(line);
    fclose(f);
    return rc;
}

void pyoco_auth_keyset_free(pyoco_auth_keyset *ks) {
    if (!ks)
        return;
    OPENSSL_cleanse(ks->keys, ks->n * sizeof *ks->keys);
    free(ks->keys);
    ks->keys = NULL;
    ks->n = 0;
}

const pyoco_auth_key *pyoco_auth_keys_match(const pyoco_auth_keyset *ks,
                                            const char *key, size_t len) {
    unsigned char d[PYOCO_AUTH_DIGEST_LEN];
    if (!ks || !key || pyoco_auth_sha256(key, len, d) < 0)
        return NULL;
    /* Visit every entry and pick the match with masks, so the time taken
     * does not depend on which entry (if any) matched. */
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < ks->n; i++) {
        size_t eq =
            (size_t)(CRYPTO_memcmp(d, ks->keys[i].digest, sizeof d) == 0);
        size_t mask = (size_t)0 - eq;
        found = (found & ~mask) | (i & mask);
    }
    OPENSSL_cleanse(d, sizeof d);
    return found == SIZE_MAX ? NULL : &ks->keys[found];
}
