/* wh_deliver.c - one notification to one endpoint: its attempts, backoff,
 * outbox record, logs and metrics.
 *
 * A delivery is in one of three places: waiting on its own timer (first
 * attempt or backoff), queued on its endpoint (max_in_flight reached), or
 * in flight (an easy handle in the multi). It is freed when delivered,
 * given up, or dropped at stop (then it stays in the outbox). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "wh.h"

struct wh_delivery {
    wh_state *st;
    wh_endpoint *ep;
    char *id; /* the outbox id and webhook-id, the same on every retry */
    char *body;
    size_t body_len;
    int attempt; /* attempts started so far */
    struct event *timer;
    CURL *easy; /* non-NULL while in flight */
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    size_t resp_bytes;
    wh_delivery *next, *prev; /* st->all */
    wh_delivery *qnext;       /* endpoint ready queue */
    bool moved;               /* rebind: already on the new endpoint */
};

/* ---- metrics ---- */

static const char *const L_EP[] = {"endpoint"};
static const char *const L_EP_OUTCOME[] = {"endpoint", "outcome"};

static void metric(wh_state *st, const char *name, const char *help,
                   pyoco_metric_type type, pyoco_metric_op op, double value,
                   size_t nlabels, const char *const *names,
                   const char *const *values) {
    pyoco_metric_sample s = {.size = sizeof s,
                             .name = name,
                             .help = help,
                             .type = type,
                             .op = op,
                             .value = value,
                             .nlabels = nlabels,
                             .label_names = names,
                             .label_values = values};
    st->api->metric(st->h, &s);
}

static void count_outcome(wh_state *st, wh_endpoint *ep, const char *outcome,
                          double n) {
    const char *v[] = {ep->name, outcome};
    metric(st, "pyoco_webhook_deliveries_total",
           "Webhook delivery attempts by endpoint and outcome "
           "(success, retry, failed = given up).",
           PYOCO_METRIC_COUNTER, PYOCO_METRIC_ADD, n, 2, L_EP_OUTCOME, v);
}

static void gauge_in_flight(wh_state *st) {
    metric(st, "pyoco_webhook_in_flight",
           "Webhook HTTP requests currently in flight.", PYOCO_METRIC_GAUGE,
           PYOCO_METRIC_SET, st->in_flight, 0, NULL, NULL);
}

static void observe_duration(wh_state *st, wh_endpoint *ep, double secs) {
    const char *v[] = {ep->name};
    metric(st, "pyoco_webhook_attempt_duration_seconds",
           "Duration of one webhook HTTP attempt.", PYOCO_METRIC_HISTOGRAM,
           PYOCO_METRIC_OBSERVE, secs, 1, L_EP, v);
}

static void mark_failure(wh_state *st, wh_endpoint *ep) {
    const char *v[] = {ep->name};
    metric(st, "pyoco_webhook_last_failure_timestamp_seconds",
           "Unix time of the last failed webhook attempt.", PYOCO_METRIC_GAUGE,
           PYOCO_METRIC_SET, st->api->now(st->h), 1, L_EP, v);
}

void wh_deliver_metrics_init(wh_state *st) {
    for (size_t i = 0; i < st->cfg.count; i++) {
        wh_endpoint *ep = &st->cfg.endpoints[i];
        count_outcome(st, ep, "success", 0);
        count_outcome(st, ep, "retry", 0);
        count_outcome(st, ep, "failed", 0);
    }
    gauge_in_flight(st);
}

/* ---- bookkeeping ---- */

static double jitter_u(wh_state *st) {
    /* xorshift64*: jitter needs spread, not secrecy. */
    uint64_t x = st->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    st->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static void delivery_free(wh_delivery *d) {
    wh_state *st = d->st;
    if (d->prev)
        d->prev->next = d->next;
    else
        st->all = d->next;
    if (d->next)
        d->next->prev = d->prev;
    if (d->easy) {
        wh_curl_remove(st->curl, d->easy);
        curl_easy_cleanup(d->easy);
    }
    curl_slist_free_all(d->headers);
    if (d->timer)
        event_free(d->timer);
    free(d->id);
    free(d->body);
    free(d);
}

static void outbox_done(wh_delivery *d) {
    int r = d->st->api->outbox_done(d->st->h, d->id);
    if (r < 0)
        d->st->api->log(d->st->h, PYOCO_LOG_WARN, "outbox_done %s failed: %s",
                        d->id, strerror(-r));
}

/* The outbox record of a notification; put again on each retry (an
 * upsert) so a restart resumes with the attempts already made. */
static int outbox_put(wh_state *st, const char *id, const char *epname,
                      const char *body, int attempt, double not_before) {
    json_t *rec =
        json_pack("{s:s, s:s, s:i, s:f}", "endpoint", epname, "payload", body,
                  "attempt", attempt, "not_before", not_before);
    int r = rec ? st->api->outbox_put(st->h, id, rec) : -ENOMEM;
    json_decref(rec);
    if (r < 0)
        st->api->log(st->h, PYOCO_LOG_WARN,
                     "endpoint %s: outbox_put %s failed (%s); delivering "
                     "without a durable record",
                     epname, id, strerror(-r));
    return r;
}

static void outbox_update(wh_delivery *d, double not_before) {
    outbox_put(d->st, d->id, d->ep->name, d->body, d->attempt, not_before);
}

static void maybe_stop_done(wh_state *st) {
    if (st->stopping && st->stop_pending && st->in_flight == 0) {
        st->stop_pending = false;
        st->api->stop_done(st->h);
    }
}

static void schedule(wh_delivery *d, double delay) {
    if (!(delay > 0))
        delay = 0;
    struct timeval tv;
    tv.tv_sec = (time_t)delay;
    tv.tv_usec = (suseconds_t)((delay - (double)tv.tv_sec) * 1e6);
    evtimer_add(d->timer, &tv);
}

static void start_attempt(wh_delivery *d);

/* An attempt failed (transport error, non-2xx, or we could not even start
 * it): retry later, or give up after the last one. */
static void attempt_failed(wh_delivery *d, const char *error,
                           double retry_after) {
    wh_state *st = d->st;
    wh_endpoint *ep = d->ep;
    mark_failure(st, ep);
    if (d->attempt >= ep->attempts) {
        st->api->log(st->h, PYOCO_LOG_ERROR,
                     "endpoint %s: giving up on %s after %d attempt%s: %s",
                     ep->name, d->id, d->attempt, d->attempt == 1 ? "" : "s",
                     error);
        count_outcome(st, ep, "failed", 1);
        outbox_done(d);
        delivery_free(d);
        return;
    }
    count_outcome(st, ep, "retry", 1);
    double delay =
        wh_retry_delay(wh_backoff_delay(ep->backoff_initial, ep->backoff_max,
                                        d->attempt, jitter_u(st)),
                       retry_after);
    if (st->stopping) {
        st->api->log(st->h, PYOCO_LOG_WARN,
                     "endpoint %s: attempt %d of %s failed: %s; stopping, "
                     "left in the outbox",
                     ep->name, d->attempt, d->id, error);
        delivery_free(d);
        return;
    }
    st->api->log(st->h, PYOCO_LOG_WARN,
                 "endpoint %s: attempt %d/%d of %s failed: %s; retrying in "
                 "%.3fs",
                 ep->name, d->attempt, ep->attempts, d->id, error, delay);
    outbox_update(d, st->api->now(st->h) + delay);
    schedule(d, delay);
}

/* Start the next queued deliveries of an endpoint while slots are free. */
static void pump(wh_endpoint *ep) {
    while (ep->ready_head && ep->in_flight < ep->max_in_flight) {
        wh_delivery *d = ep->ready_head;
        ep->ready_head = d->qnext;
        if (!ep->ready_head)
            ep->ready_tail = NULL;
        d->qnext = NULL;
        start_attempt(d);
    }
}

/* Bounded sink for the response body we never use. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    wh_delivery *d = ud;
    size_t n = size * nmemb;
    if (d->resp_bytes + n > WH_RESPONSE_CAP)
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    d->resp_bytes += n;
    return n;
}

static int add_header(struct curl_slist **list, const char *name,
                      const char *value) {
    char line[512];
    int n = snprintf(line, sizeof line, "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof line) {
        /* Long values (a big secret) get their own buffer. */
        size_t len = strlen(name) + strlen(value) + 3;
        char *big = malloc(len);
        if (!big)
            return -ENOMEM;
        snprintf(big, len, "%s: %s", name, value);
        struct curl_slist *l = curl_slist_append(*list, big);
        free(big);
        if (!l)
            return -ENOMEM;
        *list = l;
        return 0;
    }
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return -ENOMEM;
    *list = l;
    return 0;
}

static int build_request(wh_delivery *d) {
    wh_state *st = d->st;
    wh_endpoint *ep = d->ep;
    char ua[128], ts[32], sig[128];
    snprintf(ua, sizeof ua, "pyoco-server/%s", st->api->server_version(st->h));
    struct curl_slist **hl = &d->headers;
    /* "Expect:" off: no 100-continue round trip for bigger bodies. */
    if (add_header(hl, "Content-Type", "application/json") < 0 ||
        add_header(hl, "User-Agent", ua) < 0 ||
        !(*hl = curl_slist_append(*hl, "Expect:")))
        return -ENOMEM;
    if (ep->secret) {
        long long now = (long long)floor(st->api->now(st->h));
        snprintf(ts, sizeof ts, "%lld", now);
        if (wh_sign(ep->key, ep->key_len, d->id, now, d->body, d->body_len, sig,
                    sizeof sig) < 0)
            return -EIO;
        if (add_header(hl, "X-Pyoco-Token", ep->secret) < 0 ||
            add_header(hl, "webhook-id", d->id) < 0 ||
            add_header(hl, "webhook-timestamp", ts) < 0 ||
            add_header(hl, "webhook-signature", sig) < 0)
            return -ENOMEM;
    }
    CURL *e = curl_easy_init();
    if (!e)
        return -ENOMEM;
    d->easy = e;
    d->errbuf[0] = 0;
    d->resp_bytes = 0;
    long tmo = (long)ceil(ep->timeout * 1000.0);
    if (curl_easy_setopt(e, CURLOPT_URL, ep->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)d->body_len) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, tmo) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||

        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, d) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, d) != CURLE_OK)
        return -EINVAL;
#if LIBCURL_VERSION_NUM >= 0x075700
    /* A timeout during a threaded DNS lookup would otherwise join the
     * resolver thread on the loop thread: detach it instead (7.87+; an
     * older libcurl just keeps its default). */
    (void)curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    return 0;
}

static void release_request(wh_delivery *d) {
    if (d->easy)
        curl_easy_cleanup(d->easy);
    d->easy = NULL;
    curl_slist_free_all(d->headers);
    d->headers = NULL;
}

static void start_attempt(wh_delivery *d) {
    wh_state *st = d->st;
    d->attempt++;
    int r = build_request(d);
    if (r == 0) {
        r = wh_curl_add(st->curl, d->easy);
    }
    if (r < 0) {
        release_request(d);
        char msg[96];
        snprintf(msg, sizeof msg, "could not start the request: %s",
                 strerror(-r));
        attempt_failed(d, msg, 0);
        return;
    }
    d->ep->in_flight++;
    st->in_flight++;
    gauge_in_flight(st);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    wh_delivery *d = arg;
    wh_endpoint *ep = d->ep;
    if (d->st->stopping)
        return;
    if (ep->in_flight < ep->max_in_flight && !ep->ready_head) {
        start_attempt(d);
        return;
    }
    if (ep->ready_tail)
        ep->ready_tail->qnext = d;
    else
        ep->ready_head = d;
    ep->ready_tail = d;
}

/* ---- public ---- */

int wh_deliver_new(wh_state *st, wh_endpoint *ep, const char *id,
                   const char *body, size_t body_len, int attempt,
                   double delay) {
    wh_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->st = st;
    d->ep = ep;
    d->attempt = attempt;
    d->id = strdup(id);
    d->body = malloc(body_len + 1);
    d->timer = evtimer_new(st->api->event_base(st->h), on_timer, d);
    d->next = st->all;
    if (st->all)
        st->all->prev = d;
    st->all = d;
    if (!d->id || !d->body || !d->timer) {
        delivery_free(d);
        return -ENOMEM;
    }
    memcpy(d->body, body, body_len);
    d->body[body_len] = 0;
    d->body_len = body_len;
    schedule(d, delay);
    return 0;
}

void wh_deliver_done(CURL *easy, CURLcode result, void *ud) {
    wh_delivery *d = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&d);
    wh_state *st = d->st;
    wh_endpoint *ep = d->ep;
    long code = 0;
    curl_off_t total_us = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total_us);
    observe_duration(st, ep, (double)total_us / 1e6);

    /* What counts is the status the receiver answered: a 2xx is a delivery
     * even if its body was cut at WH_RESPONSE_CAP or broke off afterwards
     * (retrying then would only duplicate it). */
    bool ok = code >= 200 && code < 300;
    char error[CURL_ERROR_SIZE + 64];
    double retry_after = 0;
    if (!ok) {
        if (code > 0)
            snprintf(error, sizeof error, "HTTP %ld%s", code,
                     code >= 300 && code < 400 ? " (redirects not followed)"
                                               : "");
        else
            snprintf(error, sizeof error, "%s",
                     d->errbuf[0] ? d->errbuf : curl_easy_strerror(result));
        struct curl_header *hdr = NULL;
        if (code > 0 && curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER,
                                         -1, &hdr) == CURLHE_OK) {
            if (wh_retry_after_parse(hdr->value, time(NULL), &retry_after) < 0)
                retry_after = 0;
        }
    }
    /* The handle already left the multi (wh_curl did it). */
    release_request(d);
    ep->in_flight--;
    st->in_flight--;
    gauge_in_flight(st);

    if (ok) {
        count_outcome(st, ep, "success", 1);
        st->api->log(st->h, PYOCO_LOG_INFO,
                     "endpoint %s: delivered %s (HTTP %ld, attempt %d)",
                     ep->name, d->id, code, d->attempt);
        outbox_done(d);
        delivery_free(d);
    } else {
        attempt_failed(d, error, retry_after);
    }
    if (!st->stopping)
        pump(ep);
    maybe_stop_done(st);
}

void wh_deliver_run_finished(wh_state *st, const pyoco_event *ev) {
    const char *event = wh_event_name(ev->status);
    unsigned bit = wh_event_bit(ev->status);
    if (!event || !ev->run_id)
        return;
    bool wanted = false;
    for (size_t i = 0; i < st->cfg.count; i++)
        wanted |= (st->cfg.endpoints[i].events & bit) != 0;
    if (!wanted)
        return;
    json_t *run = NULL;
    int r = st->api->run_get(st->h, ev->run_id, &run);
    if (r < 0) {
        st->api->log(st->h, PYOCO_LOG_WARN,
                     "run %s: run_get failed (%s); sending the event's fields",
                     ev->run_id, strerror(-r));
        run = NULL;
    }
    json_t *p = wh_payload_build(event, ev, run);
    json_decref(run);
    char *body = p ? wh_payload_dump(p) : NULL;
    json_decref(p);
    if (!body) {
        st->api->log(st->h, PYOCO_LOG_ERROR,
                     "run %s: out of memory building the payload", ev->run_id);
        return;
    }
    size_t len = strlen(body);
    double now = st->api->now(st->h);
    for (size_t i = 0; i < st->cfg.count; i++) {
        wh_endpoint *ep = &st->cfg.endpoints[i];
        if (!(ep->events & bit))
            continue;
        char id[64];
        if (wh_make_id(id, sizeof id) < 0) {
            st->api->log(st->h, PYOCO_LOG_ERROR,
                         "endpoint %s: no random id for run %s", ep->name,
                         ev->run_id);
            continue;
        }
        outbox_put(st, id, ep->name, body, 0, now);
        if (st->stopping)
            continue; /* in the outbox for the next start */
        if (wh_deliver_new(st, ep, id, body, len, 0, 0) < 0)
            st->api->log(st->h, PYOCO_LOG_ERROR,
                         "endpoint %s: out of memory queueing %s", ep->name,
                         id);
    }
    free(body);
}

/* A restored id goes into a header line: printable, bounded. */
static bool valid_id(const char *id) {
    size_t n = 0;
    for (; id[n]; n++)
        if ((unsigned char)id[n] <= 0x20 || id[n] == 0x7f)
            return false;
    return n > 0 && n <= 256;
}

void wh_deliver_restored(wh_state *st, const char *id, const json_t *data) {
    const char *epname = json_string_value(json_object_get(data, "endpoint"));
    const json_t *payload = json_object_get(data, "payload");
    if (!id || !epname || !json_is_string(payload) || !valid_id(id)) {
        st->api->log(st->h, PYOCO_LOG_WARN,
                     "outbox entry %s is malformed; dropped", id ? id : "?");
        if (id)
            st->api->outbox_done(st->h, id);
        return;
    }
    wh_endpoint *ep = wh_config_find(&st->cfg, epname);
    if (!ep) {
        st->api->log(st->h, PYOCO_LOG_WARN,
                     "outbox entry %s: endpoint %s is no longer configured; "
                     "dropped",
                     id, epname);
        st->api->outbox_done(st->h, id);
        return;
    }
    json_int_t attempt = json_integer_value(json_object_get(data, "attempt"));
    /* At least one attempt is left after a restart. */
    if (attempt < 0)
        attempt = 0;
    if (attempt > ep->attempts - 1)
        attempt = ep->attempts - 1;
    double not_before = json_number_value(json_object_get(data, "not_before"));
    double delay = not_before - st->api->now(st->h);
    if (!isfinite(delay) || delay < 0)
        delay = 0;
    if (delay > WH_RETRY_AFTER_MAX)
        delay = WH_RETRY_AFTER_MAX;
    st->api->log(st->h, PYOCO_LOG_INFO,
                 "endpoint %s: resuming %s from the outbox", ep->name, id);
    if (wh_deliver_new(st, ep, id, json_string_value(payload),
                       json_string_length(payload), (int)attempt, delay) < 0)
        st->api->log(st->h, PYOCO_LOG_ERROR,
                     "endpoint %s: out of memory queueing %s", ep->name, id);
}

int wh_deliver_stop(wh_state *st) {
    st->stopping = true;
    for (size_t i = 0; i < st->cfg.count; i++)
        st->cfg.endpoints[i].ready_head = st->cfg.endpoints[i].ready_tail =
            NULL;
    wh_delivery *d = st->all;
    while (d) {
        wh_delivery *next = d->next;
        if (!d->easy)
            delivery_free(d); /* stays in the outbox */
        d = next;
    }
    return st->in_flight;
}

void wh_deliver_free_all(wh_state *st) {
    while (st->all) {
        if (st->all->easy) {
            st->all->ep->in_flight--;
            st->in_flight--;
        }
        delivery_free(st->all);
    }
    for (size_t i = 0; i < st->cfg.count; i++)
        st->cfg.endpoints[i].ready_head = st->cfg.endpoints[i].ready_tail =
            NULL;
}

void wh_deliver_seed(wh_state *st) {
    uint64_t seed = 0;
    if (RAND_bytes((unsigned char *)&seed, sizeof seed) != 1 || !seed)
        seed = (uint64_t)time(NULL) | 1;
    st->rng = seed;
}

/* Move one delivery onto its endpoint in the new configuration, or drop it
 * when that endpoint is gone (aborting it if in flight). */
static void rebind_one(wh_state *st, wh_delivery *d, wh_config *next,
                       bool queued) {
    wh_endpoint *ep = wh_config_find(next, d->ep->name);
    if (!ep) {
        st->api->log(st->h, PYOCO_LOG_WARN,
                     "endpoint %s was removed: dropping %s", d->ep->name,
                     d->id);
        if (d->easy)
            st->in_flight--;
        outbox_done(d);
        delivery_free(d);
        return;
    }
    d->ep = ep;
    d->moved = true;
    if (d->easy)
        ep->in_flight++;
    if (queued) {
        d->qnext = NULL;
        if (ep->ready_tail)
            ep->ready_tail->qnext = d;
        else
            ep->ready_head = d;
        ep->ready_tail = d;
    }
}

void wh_deliver_rebind(wh_state *st, wh_config *next) {
    /* Queued ones first, in their order, then every other delivery. */
    for (size_t i = 0; i < st->cfg.count; i++) {
        wh_endpoint *old = &st->cfg.endpoints[i];
        wh_delivery *d = old->ready_head;
        old->ready_head = old->ready_tail = NULL;
        while (d) {
            wh_delivery *qn = d->qnext;
            d->qnext = NULL;
            rebind_one(st, d, next, true);
            d = qn;
        }
    }
    for (wh_delivery *d = st->all, *n; d; d = n) {
        n = d->next;
        if (!d->moved)
            rebind_one(st, d, next, false);
    }
    for (wh_delivery *d = st->all; d; d = d->next)
        d->moved = false;
    wh_config_free(&st->cfg);
    st->cfg = *next;
    memset(next, 0, sizeof *next);
    gauge_in_flight(st);
    if (!st->stopping)
        for (size_t i = 0; i < st->cfg.count; i++)
            pump(&st->cfg.endpoints[i]);
}
