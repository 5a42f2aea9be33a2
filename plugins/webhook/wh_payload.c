/* wh_payload.c - what is sent: the compat payload, notification ids and
 * the Standard Webhooks v1 signature (OpenSSL HMAC-SHA256 + base64). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "wh.h"

const char *wh_event_name(pyoco_run_status status) {
    switch (status) {
    case PYOCO_STATUS_COMPLETED:
        return "run.completed";
    case PYOCO_STATUS_FAILED:
        return "run.failed";
    case PYOCO_STATUS_CANCELLED:
        return "run.cancelled";
    default:
        return NULL;
    }
}

unsigned wh_event_bit(pyoco_run_status status) {
    switch (status) {
    case PYOCO_STATUS_COMPLETED:
        return WH_EV_COMPLETED;
    case PYOCO_STATUS_FAILED:
        return WH_EV_FAILED;
    case PYOCO_STATUS_CANCELLED:
        return WH_EV_CANCELLED;
    default:
        return 0;
    }
}

unsigned wh_event_bit_from_name(const char *name) {
    if (!strcmp(name, "run.completed"))
        return WH_EV_COMPLETED;
    if (!strcmp(name, "run.failed"))
        return WH_EV_FAILED;
    if (!strcmp(name, "run.cancelled"))
        return WH_EV_CANCELLED;
    return 0;
}

/* A copy of run[key], or `fallback` (stolen) when absent. */
static json_t *field(const json_t *run, const char *key, json_t *fallback) {
    json_t *v = run ? json_object_get(run, key) : NULL;
    if (v) {
        json_decref(fallback);
        return json_deep_copy(v);
    }
    return fallback;
}

json_t *wh_payload_build(const char *event, const pyoco_event *ev,
                         const json_t *run) {
    json_t *p = json_object();
    if (!p)
        return NULL;
    const char *status = pyoco_status_name(ev->status);
    /* Insertion order is the reference's key order. */
    json_object_set_new(p, "event", json_string(event));
    json_object_set_new(p, "run_id",
                        field(run, "run_id", json_string(ev->run_id)));
    json_object_set_new(
        p, "flow_name",
        field(run, "flow_name",
              ev->flow_name ? json_string(ev->flow_name) : json_null()));
    json_object_set_new(p, "status", json_string(status ? status : ""));
    json_object_set_new(p, "started_at",
                        field(run, "start_time", json_real(ev->start_time)));
    json_object_set_new(
        p, "ended_at",
        field(run, "end_time",
              ev->end_time > 0 ? json_real(ev->end_time) : json_null()));
    json_object_set_new(p, "duration_ms",
                        field(run, "run_duration_ms", json_null()));
    json_object_set_new(p, "tasks", field(run, "task_records", json_object()));
    json_object_set_new(
        p, "metadata",
        field(run, "metadata",
              ev->metadata ? json_deep_copy(ev->metadata) : json_object()));
    return p;
}

char *wh_payload_dump(const json_t *payload) {
    return json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

int wh_make_id(char *out, size_t outlen) {
    unsigned char b[16];
    if (outlen < 41 || RAND_bytes(b, sizeof b) != 1)
        return -EIO;
    b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
    b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    snprintf(out, outlen,
             "msg_%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

int wh_secret_key(const char *secret, unsigned char **key, size_t *key_len) {
    static const char prefix[] = "whsec_";
    size_t plen = sizeof prefix - 1;
    *key = NULL;
    *key_len = 0;
    if (strncmp(secret, prefix, plen) != 0) {
        /* Raw bytes of the string. */
        size_t n = strlen(secret);
        *key = malloc(n ? n : 1);
        if (!*key)
            return -ENOMEM;
        memcpy(*key, secret, n);
        *key_len = n;
        return 0;
    }
    const char *b64 = secret + plen;
    size_t n = strlen(b64);
    if (n == 0 || n % 4 != 0)
        return -EINVAL;
    unsigned char *buf = malloc(n / 4 * 3 + 1);
    if (!buf)
        return -ENOMEM;
    int got = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
    if (got < 0) {
        free(buf);
        return -EINVAL;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    size_t pad = (b64[n - 1] == '=') + (b64[n - 2] == '=');
    *key = buf;
    *key_len = (size_t)got - pad;
    return 0;
}

int wh_sign(const unsigned char *key, size_t key_len, const char *id,
            long long timestamp, const char *body, size_t body_len, char *out,
            size_t outlen) {
    char ts[32];
    int tslen = snprintf(ts, sizeof ts, "%lld", timestamp);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int r = -EIO;
    /* HMAC over "<id>.<timestamp>.<body>" without building the string. */
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
        OSSL_PARAM_construct_end()};
    /* An empty key is valid HMAC but OpenSSL wants a non-NULL pointer. */
    static const unsigned char empty[1];
    size_t outl = 0;
    if (!ctx || !EVP_MAC_init(ctx, key_len ? key : empty, key_len, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)id, strlen(id)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tslen) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)body, body_len) ||
        !EVP_MAC_final(ctx, mac, &outl, sizeof mac))
        goto done;
    maclen = (unsigned int)outl;
    /* "v1," + base64(32 bytes) = 3 + 44 + NUL */
    if (outlen < 3 + 4 * ((maclen + 2) / 3) + 1) {
        r = -ENOSPC;
        goto done;
    }
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
    r = 0;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return r;
}
