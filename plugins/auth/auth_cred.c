/* auth_cred.c - see auth_cred.h. */
#include "auth_cred.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

static bool is_space(char c) {
    return c == ' ' || c == '\t';
}

/* Trim blanks around [s, s+len). */
static const char *trim(const char *s, size_t *len) {
    while (*len && is_space(*s))
        s++, (*len)--;
    while (*len && is_space(s[*len - 1]))
        (*len)--;
    return s;
}

static bool scheme_is(const char *v, const char *scheme, const char **rest) {
    size_t n = strlen(scheme);
    if (strncasecmp(v, scheme, n) != 0 || !is_space(v[n]))
        return false;
    *rest = v + n;
    return true;
}

static void parse_basic(const char *b64, size_t len, pyoco_auth_cred *out) {
    out->kind = PYOCO_AUTH_CRED_BAD;
    if (len == 0 || len % 4 || len / 4 * 3 > PYOCO_AUTH_BASIC_MAX)
        return;
    int n = EVP_DecodeBlock((unsigned char *)out->decoded,
                            (const unsigned char *)b64, (int)len);
    if (n < 0)
        return;
    /* EVP_DecodeBlock counts the bytes '=' padding stands for. */
    for (size_t i = len; i > 0 && b64[i - 1] == '=' && n > 0; i--)
        n--;
    out->decoded[n] = '\0';
    if (memchr(out->decoded, '\0', (size_t)n))
        return;
    char *colon = memchr(out->decoded, ':', (size_t)n);
    if (!colon)
        return;
    out->user = out->decoded;
    out->userlen = (size_t)(colon - out->decoded);
    out->pass = colon + 1;
    out->passlen = (size_t)n - out->userlen - 1;
    out->kind = PYOCO_AUTH_CRED_BASIC;
}

void pyoco_auth_cred_parse(const char *x_api_key, const char *authorization,
                           pyoco_auth_cred *out) {
    memset(out, 0, sizeof *out);
    if (x_api_key) {
        size_t len = strlen(x_api_key);
        out->key = trim(x_api_key, &len);
        out->keylen = len;
        out->kind = len ? PYOCO_AUTH_CRED_KEY : PYOCO_AUTH_CRED_BAD;
        return;
    }
    if (!authorization)
        return;
    const char *rest;
    size_t len;
    if (scheme_is(authorization, "Bearer", &rest)) {
        len = strlen(rest);
        out->key = trim(rest, &len);
        out->keylen = len;
        out->kind = len ? PYOCO_AUTH_CRED_KEY : PYOCO_AUTH_CRED_BAD;
    } else if (scheme_is(authorization, "Basic", &rest)) {
        len = strlen(rest);
        rest = trim(rest, &len);
        parse_basic(rest, len, out);
    } else {
        out->kind = PYOCO_AUTH_CRED_BAD;
    }
}

void pyoco_auth_cred_clear(pyoco_auth_cred *c) {
    OPENSSL_cleanse(c, sizeof *c);
}

bool pyoco_auth_basic_check(const pyoco_auth_basic *b,
                            const pyoco_auth_cred *c) {
    if (!b || !b->set || !c || c->kind != PYOCO_AUTH_CRED_BASIC)
        return false;
    unsigned char u[PYOCO_AUTH_DIGEST_LEN], p[PYOCO_AUTH_DIGEST_LEN];
    if (pyoco_auth_sha256(c->user, c->userlen, u) < 0 ||
        pyoco_auth_sha256(c->pass, c->passlen, p) < 0)
        return false;
    /* Digests make the compares fixed-length; both always run. */
    int bad = CRYPTO_memcmp(u, b->user_digest, sizeof u) |
              CRYPTO_memcmp(p, b->pass_digest, sizeof p);
    OPENSSL_cleanse(p, sizeof p);
    return bad == 0;
}
