/* core/reload.c - SIGHUP: re-read pyoco.yaml and apply what can change
 * safely while serving.
 *
 * Every plugin with a reload hook is called on each SIGHUP (with its new
 * block when it changed), so it can also re-read files of its own.
 *
 * Applied live: HTTP limits, registry limits (history, log cap, stuck-run
 * delays), drain timeout, and each plugin's block when the plugin has a
 * reload hook. Logged as needing a restart: host/port, the plugin path, the
 * set or order of plugins, and a changed block of a plugin without a reload
 * hook. A file that does not parse or validate changes nothing. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "server.h"

/* Does the descriptor the plugin was built with have a reload slot? */
static bool has_reload(const pyoco_plugin_desc *d) {
    return d->size >= offsetof(pyoco_plugin_desc, reload) + sizeof(d->reload) &&
           d->reload != NULL;
}

static bool block_changed(const pyoco_plugin_desc *d,
                          const pyoco_plugin_config *a,
                          const pyoco_plugin_config *b) {
    for (const pyoco_config_key *k = d->config_keys; k && k->name; k++) {
        const json_t *x = pyoco_plugin_config_json(a, k->name);
        const json_t *y = pyoco_plugin_config_json(b, k->name);
        if (!json_equal((json_t *)x, (json_t *)y) && (x || y))
            return true;
    }
    return false;
}

static size_t find_block(const pyoco_config *cfg, const char *name) {
    for (size_t i = 0; i < pyoco_config_plugin_count(cfg); i++)
        if (!strcmp(pyoco_config_plugin_name(cfg, i), name))
            return i;
    return SIZE_MAX;
}

static void reload_plugins(pyoco_server *srv, pyoco_config *ncfg) {
    size_t n = pyoco_config_plugin_count(ncfg);
    bool same_set = n == srv->nplugins;
    for (size_t i = 0; same_set && i < n; i++)
        same_set =
            !strcmp(pyoco_config_plugin_name(ncfg, i), srv->plugins[i]->name);
    if (!same_set)
        PYOCO_LOGW("reload: the list of plugins changed; that needs a "
                   "restart (the running plugins keep their configuration)");
    for (size_t i = 0; i < srv->nplugins; i++) {
        pyoco_host *h = srv->plugins[i];
        size_t block = find_block(ncfg, h->name);
        if (block == SIZE_MAX)
            continue; /* removed: reported above */
        pyoco_plugin_config *pc = NULL;
        char err[1024] = "";
        if (pyoco_config_plugin_bind(ncfg, block, h->name, h->desc->config_keys,
                                     &pc, err, sizeof(err))) {
            PYOCO_LOGE("reload: %s (plugin %s keeps its configuration)", err,
                       h->name);
            continue;
        }
        bool changed = block_changed(h->desc, h->cfg, pc);
        /* A plugin with a hook hears every SIGHUP, changed block or not:
         * it may have files of its own to re-read (auth's key_file). */
        if (!changed && !has_reload(h->desc)) {
            pyoco_plugin_config_free(pc);
            continue;
        }
        if (!has_reload(h->desc)) {
            PYOCO_LOGW("reload: plugin %s's block changed, but it cannot "
                       "reload: restart to apply it",
                       h->name);
            pyoco_plugin_config_free(pc);
            continue;
        }
        pyoco_plugin_config *old = h->cfg;
        h->cfg = pc;
        err[0] = '\0';
        int rc = h->desc->reload(h, h->state, err, sizeof(err));
        if (rc) {
            h->cfg = old;
            pyoco_plugin_config_free(pc);
            err[sizeof(err) - 1] = '\0';
            PYOCO_LOGE("reload: plugin %s refused the reload: %s (it keeps "
                       "its previous configuration)",
                       h->name, err[0] ? err : strerror(rc < 0 ? -rc : rc));
        } else {
            pyoco_plugin_config_free(old);
            PYOCO_LOGI("reload: plugin %s reloaded%s", h->name,
                       changed ? " with its new block" : "");
        }
    }
}

int pyoco_server_reload(pyoco_server *srv) {
    if (!srv->config_path) {
        PYOCO_LOGW("reload: started without a configuration file; nothing to "
                   "re-read");
        return -ENOENT;
    }
    char err[2048] = "";
    pyoco_config *ncfg = NULL;
    if (pyoco_config_load(srv->config_path, &ncfg, err, sizeof(err))) {
        PYOCO_LOGE("reload failed, keeping the running configuration: %s", err);
        return -EINVAL;
    }
    const pyoco_server_settings *o = pyoco_config_server(srv->cfg);
    pyoco_server_settings *s = pyoco_config_server_mut(ncfg);
    /* The listener stays where it is (and --host/--port still rule). */
    if ((srv->file_host && strcmp(srv->file_host, s->host)) ||
        srv->file_port != s->port)
        PYOCO_LOGW("reload: server.host/server.port changed; that needs a "
                   "restart");
    pyoco_config_set_host(ncfg, o->host);
    s->port = o->port;
    pyoco_http_limits lim = {.max_body_bytes = s->max_body_bytes,
                             .max_header_bytes = s->max_header_bytes,
                             .read_timeout = s->read_timeout,
                             .idle_timeout = s->idle_timeout,
                             .max_connections = s->max_connections};
    pyoco_http_set_limits(srv->http, &lim);
    pyoco_registry_set_limits(srv->reg, s->max_run_history, s->max_log_bytes,
                              s->assignment_lease, s->heartbeat_timeout);
    if (strcmp(o->archive_dir ? o->archive_dir : "",
               s->archive_dir ? s->archive_dir : ""))
        PYOCO_LOGW("reload: registry.archive_dir changed; that needs a "
                   "restart");
    reload_plugins(srv, ncfg);
    /* Plugin blocks were copied out above: the old file can go. */
    pyoco_config_free(srv->cfg);
    srv->cfg = ncfg;
    pyoco_server_arm_sweep(srv);
    PYOCO_LOGI("reload: %s re-read", srv->config_path);
    return 0;
}
