/* core/server.h - the server: one loop, the bus, the registry, the HTTP
 * listener, the durability barrier and the loaded plugins (internal). */
#ifndef PYOCO_CORE_SERVER_H
#define PYOCO_CORE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <pyoco/plugin.h>

#include "bus.h"
#include "config.h"
#include "durability.h"
#include "http.h"
#include "registry.h"

typedef struct pyoco_server pyoco_server;

typedef enum host_phase {
    HOST_LOADED = 0,
    HOST_INITED,
    HOST_STARTED,
    HOST_STOPPING,
    HOST_STOPPED,
} host_phase;

/* One loaded plugin: what the plugin sees as its opaque pyoco_host. */
struct pyoco_host {
    pyoco_server *srv;
    char *name;
    char *file;
    void *dl;
    const pyoco_plugin_desc *desc;
    void *state;
    pyoco_plugin_config *cfg;
    host_phase phase;
    bool stop_pending; /* stop() returned 1 and stop_done not called yet */
};

typedef struct archive_source {
    json_t *(*fn)(const char *run_id, void *ud);
    void *ud;
    pyoco_free_fn free_fn;
    pyoco_host *owner;
} archive_source;

struct pyoco_server {
    pyoco_config *cfg; /* owned */
    struct event_base *base;
    pyoco_bus *bus;
    pyoco_registry *reg;
    pyoco_http *http;
    pyoco_durability *dur;
    pyoco_host **plugins;
    size_t nplugins;
    archive_source *archives;
    size_t narchives;
    struct event *sig_int, *sig_term, *sig_hup, *drain_timer, *sweep_timer;
    char *config_path; /* NULL when started from built-in defaults */
    char *file_host;   /* server.host/port as the file had them, before */
    int file_port;     /* --host/--port: a reload compares against these */
    int bound_port;
    bool stopping;
    double drain_deadline; /* monotonic seconds */
    int exit_code;
};

/* The host's function table (core/host.c). */
const pyoco_api *pyoco_host_api(void);

/* Create the loop, bus, registry, listener (not yet bound) from cfg, which
 * the server takes over. */
int pyoco_server_new(pyoco_config *cfg, pyoco_server **out, char *err,
                     size_t errlen);
/* Load, init and start every configured plugin, then listen. On failure
 * everything loaded is unloaded and err says which plugin or file failed. */
int pyoco_server_start(pyoco_server *srv, char *err, size_t errlen);
/* Run the loop until SIGINT/SIGTERM (or pyoco_server_shutdown) has
 * drained and stopped everything. Returns the exit code. */
int pyoco_server_run(pyoco_server *srv);
/* SIGHUP (core/reload.c): re-read config_path, apply what can change. */
int pyoco_server_reload(pyoco_server *srv);
/* (Re)start the stuck-run sweep timer when a lease or timeout is set. */
void pyoco_server_arm_sweep(pyoco_server *srv);
/* Begin the graceful shutdown (what the signals do). */
void pyoco_server_shutdown(pyoco_server *srv);
void pyoco_server_free(pyoco_server *srv);

/* Plugin loading (core/loader.c). Loads the .so, checks the descriptor,
 * binds the config block (index or SIZE_MAX) and calls init. On failure
 * everything is undone and err names the file and the reason. */
int pyoco_loader_load(pyoco_server *srv, const char *name, const char *file,
                      size_t block, pyoco_host **out, char *err, size_t errlen);
/* fini + drop everything the plugin registered + dlclose. */
void pyoco_loader_unload(pyoco_server *srv, pyoco_host *h);
/* Open a .so and read its descriptor without init (plugins list). The
 * caller dlcloses *dl. */
int pyoco_loader_probe(const char *path, void **dl,
                       const pyoco_plugin_desc **desc, char *err,
                       size_t errlen);
/* Find NAME.so in the search path; returns a malloc'd path or NULL with err
 * listing the places looked at. */
char *pyoco_loader_find(const pyoco_config *cfg, const char *name, char *err,
                        size_t errlen);
/* The default plugin directories: next to the binary (build tree), then the
 * install directory. */
size_t pyoco_loader_default_dirs(const char **out, size_t max);

#endif
