/* webhook.c - the webhook plugin: POSTs a JSON notification to each
 * configured endpoint when a run reaches a terminal status (the compat
 * PYOCO_WEBHOOK_* behaviour, plus several endpoints, signatures, retries and
 * an outbox). See docs/plugins-webhook.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <pyoco/plugin.h>

#include "wh.h"

static const pyoco_config_key keys[] = {
    {"endpoints", PYOCO_CONFIG_LIST, NULL,
     "list of {name, url, secret, events, timeout, attempts, "
     "backoff_initial, backoff_max, max_in_flight}",
     NULL},
    {"url", PYOCO_CONFIG_STRING, NULL,
     "URL of the endpoint named \"default\" (unset: none)",
     "PYOCO_WEBHOOK_URL"},
    {"secret", PYOCO_CONFIG_STRING, NULL,
     "secret of the default endpoint: X-Pyoco-Token and signatures",
     "PYOCO_WEBHOOK_SECRET"},
    {"timeout", PYOCO_CONFIG_DOUBLE, "3.0",
     "seconds per attempt of the default endpoint", "PYOCO_WEBHOOK_TIMEOUT"},
    {"retries", PYOCO_CONFIG_INT, "1",
     "total attempts of the default endpoint (minimum 1)",
     "PYOCO_WEBHOOK_RETRIES"},
    {NULL, 0, NULL, NULL, NULL},
};

static void on_finished(const pyoco_event *ev, void *ud) {
    wh_deliver_run_finished(ud, ev);
}

static void on_restored(const pyoco_event *ev, void *ud) {
    wh_state *st = ud;
    if (!ev->outbox_owner ||
        strcmp(ev->outbox_owner, st->api->plugin_name(st->h)) != 0)
        return;
    wh_deliver_restored(st, ev->outbox_id, ev->data);
}

static void state_free(wh_state *st) {
    if (!st)
        return;
    wh_deliver_free_all(st);
    wh_curl_free(st->curl);
    wh_config_free(&st->cfg);
    free(st);
    curl_global_cleanup();
}

/* The sending side, made once the first endpoint is configured. */
static int activate(wh_state *st, char *err, size_t errlen) {
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    if (!(vi->features & CURL_VERSION_ASYNCHDNS))
        st->api->log(st->h, PYOCO_LOG_WARN,
                     "libcurl %s has no asynchronous resolver: resolving a "
                     "host name will block the event loop (use IP addresses)",
                     vi->version);
    int r =
        wh_curl_new(st->api->event_base(st->h), wh_deliver_done, st, &st->curl);
    if (r < 0)
        snprintf(err, errlen, "cannot create the libcurl multi handle");
    return r;
}

static void log_endpoints(wh_state *st) {
    for (size_t i = 0; i < st->cfg.count; i++) {
        wh_endpoint *ep = &st->cfg.endpoints[i];
        st->api->log(st->h, PYOCO_LOG_INFO,
                     "endpoint %s: %s (attempts %d, timeout %gs%s)", ep->name,
                     ep->url, ep->attempts, ep->timeout,
                     ep->secret ? ", signed" : "");
    }
}

static int wh_init(pyoco_host *h, const pyoco_api *api, void **state, char *err,
                   size_t errlen) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init failed");
        return -EIO;
    }
    wh_state *st = calloc(1, sizeof *st);
    if (!st) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    st->h = h;
    st->api = api;
    wh_deliver_seed(st);
    int r = wh_config_load(h, api, &st->cfg, err, errlen);
    if (r < 0)
        goto fail;
    /* Subscribed even with no endpoint: a reload may add some, and outbox
     * entries left by an earlier configuration are acknowledged (dropped
     * with a warning) rather than kept forever. */
    r = api->subscribe(h, PYOCO_EV_RUN_FINISHED, on_finished, st, NULL);
    if (r >= 0)
        r = api->subscribe(h, PYOCO_EV_OUTBOX_RESTORED, on_restored, st, NULL);
    if (r < 0) {
        snprintf(err, errlen, "subscribe failed: %s", strerror(-r));
        goto fail;
    }
    if (st->cfg.count == 0) {
        api->log(h, PYOCO_LOG_INFO,
                 "no endpoint configured (url / endpoints): inactive");
        *state = st;
        return 0;
    }
    r = activate(st, err, errlen);
    if (r < 0)
        goto fail;
    log_endpoints(st);
    *state = st;
    return 0;
fail:
    state_free(st);
    return r;
}

static int wh_start(pyoco_host *h, void *state) {
    wh_state *st = state;
    if (st->cfg.count)
        wh_deliver_metrics_init(st);
    return 0;
}

static int wh_stop(pyoco_host *h, void *state) {
    wh_state *st = state;
    int n = wh_deliver_stop(st);
    if (n == 0)
        return 0;
    st->api->log(h, PYOCO_LOG_INFO, "waiting for %d delivery(ies) in flight",
                 n);
    st->stop_pending = true;
    return 1;
}

/* SIGHUP: endpoints may change. Deliveries move to the endpoint of the
 * same name (new URL, secret and limits from their next attempt on);
 * those of a removed endpoint are dropped. */
static int wh_reload(pyoco_host *h, void *state, char *err, size_t errlen) {
    wh_state *st = state;
    wh_config next;
    int r = wh_config_load(h, st->api, &next, err, errlen);
    if (r < 0)
        return r;
    if (next.count && !st->curl) {
        r = activate(st, err, errlen);
        if (r < 0) {
            wh_config_free(&next);
            return r;
        }
    }
    wh_deliver_rebind(st, &next);
    st->api->log(h, PYOCO_LOG_INFO, "reloaded: %zu endpoint(s)", st->cfg.count);
    log_endpoints(st);
    if (st->cfg.count)
        wh_deliver_metrics_init(st);
    return 0;
}

static void wh_fini(pyoco_host *h, void *state) {
    state_free(state);
}

static const pyoco_plugin_desc desc = {
    PYOCO_PLUGIN_DESC_INIT,
    .name = "webhook",
    .version = "1.0.0",
    .description = "POST run notifications to HTTP endpoints (signed, "
                   "retried, outboxed)",
    .config_keys = keys,
    .init = wh_init,
    .start = wh_start,
    .stop = wh_stop,
    .fini = wh_fini,
    .reload = wh_reload,
};

PYOCO_PLUGIN_EXPORT const pyoco_plugin_desc *pyoco_plugin_entry(void) {
    return &desc;
}
