/* wh.h - the webhook plugin's internal types and functions (not installed).
 *
 * Files: wh_config.c (endpoints from the plugin's config block),
 * wh_payload.c (payload, ids, Standard Webhooks signature),
 * wh_retry.c (backoff and Retry-After), wh_curl.c (libcurl multi on the
 * libevent loop), wh_deliver.c (one notification's attempts, outbox,
 * metrics), webhook.c (the descriptor and lifecycle). */
#ifndef PYOCO_WEBHOOK_WH_H
#define PYOCO_WEBHOOK_WH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <pyoco/plugin.h>

struct event;
struct event_base;

/* Event filter bits of an endpoint. */
enum {
    WH_EV_COMPLETED = 1 << 0,
    WH_EV_FAILED = 1 << 1,
    WH_EV_CANCELLED = 1 << 2,
    WH_EV_ALL = WH_EV_COMPLETED | WH_EV_FAILED | WH_EV_CANCELLED,
};

#define WH_NAME_MAX 64
/* Response bodies are read and thrown away, never more than this. */
#define WH_RESPONSE_CAP (64 * 1024)
/* A Retry-After larger than this is clamped (a receiver cannot park a
 * notification for days). */
#define WH_RETRY_AFTER_MAX 3600.0

typedef struct wh_delivery wh_delivery;

typedef struct wh_endpoint {
    char *name;
    char *url;
    char *secret;       /* as configured (X-Pyoco-Token); NULL = none */
    unsigned char *key; /* HMAC key: secret bytes, or whsec_ decoded */
    size_t key_len;
    unsigned events;        /* WH_EV_* */
    double timeout;         /* seconds per attempt */
    int attempts;           /* total attempts, >= 1 */
    double backoff_initial; /* seconds */
    double backoff_max;     /* seconds */
    int max_in_flight;      /* >= 1 */

    /* runtime */
    int in_flight;
    wh_delivery *ready_head; /* waiting for a free slot, FIFO */
    wh_delivery *ready_tail;
} wh_endpoint;

typedef struct wh_config {
    wh_endpoint *endpoints;
    size_t count;
} wh_config;

/* ---- wh_config.c ---- */
/* Read `endpoints` and the top-level url/secret/timeout/retries. A bad value
 * -> -EINVAL with "<where>: plugins.webhook.<key>: <why>" in err. */
int wh_config_load(pyoco_host *h, const pyoco_api *api, wh_config *out,
                   char *err, size_t errlen);
void wh_config_free(wh_config *cfg);
wh_endpoint *wh_config_find(wh_config *cfg, const char *name);

/* ---- wh_payload.c ---- */
/* "run.completed" etc. for a terminal status, NULL otherwise. */
const char *wh_event_name(pyoco_run_status status);
unsigned wh_event_bit(pyoco_run_status status);
/* Bit for "run.completed" etc., 0 when unknown. */
unsigned wh_event_bit_from_name(const char *name);
/* The compat payload from a GET /runs/{id} object (may be NULL: then only
 * what the event carries). Returns a new reference. */
json_t *wh_payload_build(const char *event, const pyoco_event *ev,
                         const json_t *run);
/* Compact serialisation; malloc'ed, NULL on ENOMEM. */
char *wh_payload_dump(const json_t *payload);
/* "msg_<uuid4>" into out (at least 41 bytes). 0 or -EIO. */
int wh_make_id(char *out, size_t outlen);
/* The HMAC key for a secret: raw bytes, or base64 after "whsec_".
 * -EINVAL when the whsec_ part is not valid base64. */
int wh_secret_key(const char *secret, unsigned char **key, size_t *key_len);
/* "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" into out (>= 64 bytes).
 */
int wh_sign(const unsigned char *key, size_t key_len, const char *id,
            long long timestamp, const char *body, size_t body_len, char *out,
            size_t outlen);

/* ---- wh_retry.c ---- */
/* Delay before the next attempt after `failed` attempts (>= 1) have
 * failed: min(initial * 2^(failed-1), max), then +-20% jitter from u in
 * [0, 1) (u = 0.5 means none). */
double wh_backoff_delay(double initial, double max, int failed, double u);
/* A Retry-After value: delta seconds or an HTTP date (relative to now).
 * 0 and *out set (>= 0, clamped to WH_RETRY_AFTER_MAX) or -EINVAL. */
int wh_retry_after_parse(const char *value, time_t now, double *out);
/* The delay to use: backoff, or Retry-After when larger. */
double wh_retry_delay(double backoff, double retry_after);

/* ---- wh_curl.c: libcurl multi driven by libevent (hiperfifo) ---- */
typedef struct wh_curl wh_curl;
/* Called once per finished transfer, after the handle left the multi. */
typedef void (*wh_curl_done_fn)(CURL *easy, CURLcode result, void *ud);
int wh_curl_new(struct event_base *base, wh_curl_done_fn done, void *ud,
                wh_curl **out);
int wh_curl_add(wh_curl *c, CURL *easy);
/* Take a transfer out before it finished (no done callback). */
void wh_curl_remove(wh_curl *c, CURL *easy);
void wh_curl_free(wh_curl *c);

/* ---- wh_deliver.c ---- */
typedef struct wh_state {
    pyoco_host *h;
    const pyoco_api *api;
    wh_config cfg;
    wh_curl *curl;
    wh_delivery *all; /* every live delivery (doubly linked) */
    int in_flight;
    bool stopping;
    bool stop_pending; /* stop() returned 1, stop_done not yet called */
    uint64_t rng;      /* jitter PRNG state */
} wh_state;

/* Create a delivery for an endpoint, first attempt after `delay` seconds.
 * `attempt` = attempts already made (restored entries). Copies id, body. */
int wh_deliver_new(wh_state *st, wh_endpoint *ep, const char *id,
                   const char *body, size_t body_len, int attempt,
                   double delay);
/* A RUN_FINISHED event: build, outbox and queue one delivery per matching
 * endpoint. */
void wh_deliver_run_finished(wh_state *st, const pyoco_event *ev);
/* An OUTBOX_RESTORED entry of ours. */
void wh_deliver_restored(wh_state *st, const char *id, const json_t *data);
/* The curl done callback. */
void wh_deliver_done(CURL *easy, CURLcode result, void *ud);
/* stop(): drop waiting deliveries (they stay in the outbox). Returns the
 * number still in flight. */
int wh_deliver_stop(wh_state *st);
/* fini(): abort and free everything. */
void wh_deliver_free_all(wh_state *st);
/* Reload: move every delivery to the endpoint of the same name in `next`
 * (dropping those whose endpoint is gone), then make `next` the current
 * configuration (it is emptied). */
void wh_deliver_rebind(wh_state *st, wh_config *next);
/* Seed the jitter generator (never zero). */
void wh_deliver_seed(wh_state *st);
/* Publish the zero-valued series so they exist from start. */
void wh_deliver_metrics_init(wh_state *st);

#endif
