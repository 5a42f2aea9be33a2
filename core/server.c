/* core/server.c - start-up and graceful shutdown.
 *
 * Start: loop -> bus -> registry -> HTTP (routes only) -> plugins init, in
 * file order -> plugins start -> listen. Any failure unloads everything and
 * nothing listens: the server never runs half-configured.
 * Stop (SIGINT/SIGTERM): stop accepting -> SERVER_STOPPING -> wait for
 * in-flight requests (drain deadline) -> plugins stop, in reverse order,
 * waiting for those that drain asynchronously -> leave the loop -> fini. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/thread.h>

#include "log.h"
#include "server.h"

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int pyoco_server_new(pyoco_config *cfg, pyoco_server **out, char *err,
                     size_t errlen) {
    *out = NULL;
    static bool threads_ready;
    if (!threads_ready) {
        /* Plugins with worker threads (storage) wake the loop with
         * event_active(), which needs a locking-enabled base. */
        if (evthread_use_pthreads() != 0) {
            snprintf(err, errlen, "cannot enable libevent thread support");
            return -ENOSYS;
        }
        threads_ready = true;
    }
    pyoco_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->cfg = cfg;
    const pyoco_server_settings *s = pyoco_config_server(cfg);
    srv->base = event_base_new();
    srv->bus = pyoco_bus_new();
    srv->dur = srv->bus ? pyoco_durability_new(srv->bus) : NULL;
    pyoco_registry_config rc = {.max_run_history = s->max_run_history,
                                .archive_dir = s->archive_dir,
                                .max_log_bytes = s->max_log_bytes,
                                .assignment_lease = s->assignment_lease,
                                .heartbeat_timeout = s->heartbeat_timeout};
    srv->reg = srv->bus ? pyoco_registry_new(&rc, srv->bus) : NULL;
    pyoco_http_limits lim = {.max_body_bytes = s->max_body_bytes,
                             .max_header_bytes = s->max_header_bytes,
                             .read_timeout = s->read_timeout,
                             .idle_timeout = s->idle_timeout,
                             .max_connections = s->max_connections};
    srv->http = srv->base ? pyoco_http_new(srv->base, srv->bus, &lim) : NULL;
    if (!srv->base || !srv->bus || !srv->dur || !srv->reg || !srv->http) {
        snprintf(err, errlen, "cannot create the server (out of memory?)");
        srv->cfg = NULL; /* the caller keeps cfg on failure */
        pyoco_server_free(srv);
        return -ENOMEM;
    }
    *out = srv;
    return 0;
}

static int add_plugin(pyoco_server *srv, pyoco_host *h) {
    pyoco_host **p = realloc(srv->plugins, (srv->nplugins + 1) * sizeof(*p));
    if (!p)
        return -ENOMEM;
    srv->plugins = p;
    srv->plugins[srv->nplugins++] = h;
    return 0;
}

static void unload_all(pyoco_server *srv) {
    while (srv->nplugins > 0) {
        pyoco_host *h = srv->plugins[--srv->nplugins];
        pyoco_loader_unload(srv, h);
    }
}

static void on_sweep(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pyoco_server *srv = arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pyoco_registry_sweep(srv->reg,
                         (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

void pyoco_server_arm_sweep(pyoco_server *srv) {
    const pyoco_server_settings *s = pyoco_config_server(srv->cfg);
    bool want = s->assignment_lease > 0 || s->heartbeat_timeout > 0;
    if (!srv->sweep_timer)
        srv->sweep_timer = event_new(srv->base, -1, EV_PERSIST, on_sweep, srv);
    if (!srv->sweep_timer)
        return;
    event_del(srv->sweep_timer);
    if (want) {
        /* A quarter second: deadlines are seconds apart, and a sweep with
         * nothing expired only looks at two list heads. */
        struct timeval tv = {0, 250000};
        event_add(srv->sweep_timer, &tv);
    }
}

static void on_hup(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    pyoco_server *srv = arg;
    PYOCO_LOGI("SIGHUP: reloading the configuration");
    pyoco_server_reload(srv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    pyoco_server *srv = arg;
    if (srv->stopping) {
        PYOCO_LOGW("signal %d again: exiting without waiting", (int)sig);
        srv->drain_deadline = 0; /* the drain timer gives up at once */
        return;
    }
    PYOCO_LOGI("signal %d: shutting down", (int)sig);
    pyoco_server_shutdown(srv);
}

int pyoco_server_start(pyoco_server *srv, char *err, size_t errlen) {
    pyoco_config *cfg = srv->cfg;
    size_t n = pyoco_config_plugin_count(cfg);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        pyoco_host *h = NULL;
        rc = pyoco_loader_load(srv, pyoco_config_plugin_name(cfg, i),
                               pyoco_config_plugin_file(cfg, i), i, &h, err,
                               errlen);
        if (rc == 0 && (rc = add_plugin(srv, h)) != 0) {
            pyoco_loader_unload(srv, h);
            snprintf(err, errlen, "out of memory");
        }
        if (rc == 0)
            PYOCO_LOGI("loaded plugin %s %s (%s)", h->name,
                       h->desc->version ? h->desc->version : "", h->file);
    }
    for (size_t i = 0; i < srv->nplugins && rc == 0; i++) {
        pyoco_host *h = srv->plugins[i];
        if (h->desc->start && (rc = h->desc->start(h, h->state)) != 0)
            snprintf(err, errlen, "plugin '%s' (%s): start failed: %s", h->name,
                     h->file, strerror(rc < 0 ? -rc : rc));
        else
            h->phase = HOST_STARTED;
    }
    const pyoco_server_settings *s = pyoco_config_server(cfg);
    if (rc == 0) {
        rc = pyoco_http_listen(srv->http, s->host, s->port, &srv->bound_port);
        if (rc)
            snprintf(err, errlen, "cannot listen on %s:%d: %s", s->host,
                     s->port, strerror(-rc));
    }
    if (rc) {
        unload_all(srv);
        return rc;
    }
    srv->sig_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
    srv->sig_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    srv->sig_hup = evsignal_new(srv->base, SIGHUP, on_hup, srv);
    evsignal_add(srv->sig_int, NULL);
    evsignal_add(srv->sig_term, NULL);
    evsignal_add(srv->sig_hup, NULL);
    pyoco_server_arm_sweep(srv);
    signal(SIGPIPE, SIG_IGN);
    PYOCO_LOGI("pyoco %s listening on http://%s:%d (%zu plugin%s)",
               PYOCO_VERSION, s->host, srv->bound_port, srv->nplugins,
               srv->nplugins == 1 ? "" : "s");
    pyoco_event ev = {.kind = PYOCO_EV_SERVER_STARTED};
    pyoco_bus_publish(srv->bus, &ev);
    return 0;
}

/* Shutdown steps, re-checked by a short timer until each is done or the
 * drain deadline passes. */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pyoco_server *srv = arg;
    bool late = mono_now() >= srv->drain_deadline;
    if (pyoco_http_in_flight(srv->http) > 0 && !late)
        return;
    /* Requests are done: stop plugins (once), newest first. */
    bool waiting = false;
    for (size_t i = srv->nplugins; i-- > 0;) {
        pyoco_host *h = srv->plugins[i];
        if (h->phase == HOST_STARTED || h->phase == HOST_INITED) {
            h->phase = HOST_STOPPING;
            int r = h->desc->stop ? h->desc->stop(h, h->state) : 0;
            if (r == 1)
                h->stop_pending = true;
            else
                h->phase = HOST_STOPPED;
        }
        if (h->stop_pending)
            waiting = true;
    }
    if (waiting && !late)
        return;
    for (size_t i = 0; i < srv->nplugins; i++)
        if (srv->plugins[i]->stop_pending)
            pyoco_log_write(PYOCO_LOG_WARN, srv->plugins[i]->name,
                            "did not finish draining within %.1f s",
                            pyoco_config_server(srv->cfg)->drain_timeout);
    event_del(srv->drain_timer);
    event_base_loopexit(srv->base, NULL);
}

void pyoco_server_shutdown(pyoco_server *srv) {
    if (srv->stopping)
        return;
    srv->stopping = true;
    pyoco_http_stop_accepting(srv->http);
    pyoco_event ev = {.kind = PYOCO_EV_SERVER_STOPPING};
    pyoco_bus_publish(srv->bus, &ev);
    srv->drain_deadline =
        mono_now() + pyoco_config_server(srv->cfg)->drain_timeout;
    srv->drain_timer = event_new(srv->base, -1, EV_PERSIST, on_drain_tick, srv);
    struct timeval tv = {0, 20000};
    event_add(srv->drain_timer, &tv);
    on_drain_tick(-1, 0, srv);
}

int pyoco_server_run(pyoco_server *srv) {
    event_base_dispatch(srv->base);
    return srv->exit_code;
}

void pyoco_server_free(pyoco_server *srv) {
    if (!srv)
        return;
    /* Answer whatever is still pending, then plugins go (fini), then the
     * core parts. Plugins' free functions must run before dlclose. */
    /* Requests still waiting for the durability barrier hear -ECANCELED
     * (their handlers answer 503) while the plugins are still loaded. */
    pyoco_durability_free(srv->dur);
    srv->dur = NULL;
    if (srv->http) {
        pyoco_http_free(srv->http);
        srv->http = NULL;
    }
    unload_all(srv);
    free(srv->plugins);
    free(srv->archives);
    if (srv->drain_timer)
        event_free(srv->drain_timer);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->sig_hup)
        event_free(srv->sig_hup);
    if (srv->sweep_timer)
        event_free(srv->sweep_timer);
    free(srv->config_path);
    free(srv->file_host);
    pyoco_registry_free(srv->reg);
    pyoco_bus_free(srv->bus);
    if (srv->base)
        event_base_free(srv->base);
    pyoco_config_free(srv->cfg);
    free(srv);
}
