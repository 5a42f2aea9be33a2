/* pyoco/plugin.h - the plugin ABI of the Pyoco run server.
 *
 * A plugin is a shared object that exports one symbol, PYOCO_PLUGIN_ENTRY,
 * returning a descriptor. The host checks the descriptor's ABI version and
 * size before calling anything, then calls init with a table of function
 * pointers (pyoco_api): a plugin never links against a core symbol.
 *
 * Versioning (see docs/plugins.md):
 *  - ABI major changes when anything existing changes meaning or layout.
 *    The host refuses a plugin built for another major.
 *  - ABI minor grows when something is appended (an API table slot, an event
 *    kind, an event field, a descriptor field). The host refuses a plugin
 *    built for a newer minor than its own; a plugin built for an older minor
 *    loads unchanged.
 *
 * Errors: functions return 0 on success and a negative errno value on
 * failure (-EINVAL bad argument, -ENOENT not found, -ENOMEM, ...).
 * Threads: every function must be called on the loop thread (inside a
 * callback the host made), unless its comment says otherwise. */
#ifndef PYOCO_PLUGIN_H
#define PYOCO_PLUGIN_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>

#include <jansson.h>

#include "events.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PYOCO_ABI_MAJOR 1
#define PYOCO_ABI_MINOR 0

#define PYOCO_PLUGIN_ENTRY_NAME "pyoco_plugin_entry"

/* ---- configuration keys ------------------------------------------------- */

typedef enum pyoco_config_type {
    PYOCO_CONFIG_STRING = 1,
    PYOCO_CONFIG_INT = 2,    /* int64 */
    PYOCO_CONFIG_DOUBLE = 3, /* accepts integers too */
    PYOCO_CONFIG_BOOL = 4,   /* true/false/yes/no/on/off */
    PYOCO_CONFIG_LIST = 5,   /* YAML sequence, read with config_json */
    PYOCO_CONFIG_MAP = 6,    /* YAML mapping, read with config_json */
} pyoco_config_type;

/* One declared key of a plugin's block in pyoco.yaml. The core rejects keys
 * a plugin did not declare and values of the wrong type, naming file, line
 * and key, before the plugin's init runs. `default_value` is YAML text
 * ("3.0", "[0.05, 0.1]") or NULL for "unset". `env`, when set, names an
 * environment variable that overrides the file (and the default). */
typedef struct pyoco_config_key {
    const char *name;
    pyoco_config_type type;
    const char *default_value;
    const char *help;
    const char *env;
} pyoco_config_key;

/* ---- the descriptor a plugin exports ------------------------------------ */

typedef struct pyoco_api pyoco_api;

/* init: read config, subscribe, add routes. Store private state in *state.
 * On failure return a negative errno and write a message into err; the host
 * prints it and unloads the plugin with everything it registered.
 * start: the loop exists and all plugins are initialised; the listener is
 * not open yet. stop: drain (in-flight deliveries, pending commits); the
 * loop still runs callbacks while the host waits for the drain to finish
 * (see api->stop_done). fini: free everything. */
typedef struct pyoco_plugin_desc {
    uint32_t size; /* sizeof(pyoco_plugin_desc) */
    uint16_t abi_major;
    uint16_t abi_minor;
    const char *name;        /* [a-z0-9_]+, matches the pyoco.yaml block */
    const char *version;     /* the plugin's own version */
    const char *description; /* one line */
    const pyoco_config_key
        *config_keys; /* ends with a {NULL} entry; may be NULL */
    int (*init)(pyoco_host *host, const pyoco_api *api, void **state, char *err,
                size_t errlen);
    int (*start)(pyoco_host *host, void *state);
    /* Return 0 when drained at once, 1 when the plugin will call
     * api->stop_done(host) later (the host waits up to its drain deadline). */
    int (*stop)(pyoco_host *host, void *state);
    void (*fini)(pyoco_host *host, void *state);
    /* Optional. SIGHUP: the host has validated the new block of pyoco.yaml
     * and made it current; re-read what can change safely (api->config_*)
     * and return 0, or a negative errno with a message in err (the host
     * then puts the old block back and logs it). NULL: a change to this
     * plugin's block needs a restart. */
    int (*reload)(pyoco_host *host, void *state, char *err, size_t errlen);
} pyoco_plugin_desc;

typedef const pyoco_plugin_desc *(*pyoco_plugin_entry_fn)(void);

/* Declare the entry point in the plugin:
 *   PYOCO_PLUGIN_EXPORT const pyoco_plugin_desc *pyoco_plugin_entry(void) {...}
 */
#define PYOCO_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Fill the fixed header fields of a descriptor. */
#define PYOCO_PLUGIN_DESC_INIT                                                 \
    .size = sizeof(pyoco_plugin_desc), .abi_major = PYOCO_ABI_MAJOR,           \
    .abi_minor = PYOCO_ABI_MINOR

/* ---- HTTP ---------------------------------------------------------------- */

enum {
    PYOCO_HTTP_GET = 1 << 0,
    PYOCO_HTTP_POST = 1 << 1,
    PYOCO_HTTP_PUT = 1 << 2,
    PYOCO_HTTP_DELETE = 1 << 3,
    PYOCO_HTTP_HEAD = 1 << 4,
    PYOCO_HTTP_PATCH = 1 << 5,
};

/* A route handler. It must eventually answer the request exactly once with
 * api->reply (possibly later, from another callback, e.g. after the
 * durability barrier). If the client goes away first, the reply is dropped
 * safely; the request handle stays valid until the handler replies. */
typedef void (*pyoco_route_fn)(pyoco_request *req, void *user_data);

typedef void (*pyoco_free_fn)(void *user_data);

typedef void (*pyoco_durable_fn)(int status, void *user_data);

/* A request filter (access control, rate limits): runs for every routed
 * request before its handler. Return 0 to let the request through, or 1
 * after answering it with api->reply*. */
typedef int (*pyoco_filter_fn)(pyoco_request *req, void *user_data);

/* Called once when the client of a streaming reply goes away. */
typedef void (*pyoco_close_fn)(pyoco_request *req, void *user_data);

/* ---- registry statistics ------------------------------------------------ */

typedef struct pyoco_registry_stats {
    uint32_t size; /* set by the caller: sizeof(pyoco_registry_stats) */
    uint64_t runs_in_memory;
    uint64_t runs_queued; /* PENDING runs waiting for a worker */
    uint64_t runs_by_status[PYOCO_STATUS_COUNT]; /* in memory, by status */
    uint64_t runs_evicted;                       /* since start */
    uint64_t events_published;                   /* since start */
} pyoco_registry_stats;

typedef struct pyoco_plugin_info {
    uint32_t size; /* set by the caller */
    const char *name;
    const char *version;
    const char *description;
    uint16_t abi_major;
    uint16_t abi_minor;
} pyoco_plugin_info;

/* ---- the host's function table ------------------------------------------ */

/* Append-only. `size` is the first field: a plugin built for a newer minor
 * would check it, and the host refuses such plugins anyway. */
struct pyoco_api {
    uint32_t size;
    uint16_t abi_major;
    uint16_t abi_minor;

    /* -- logging: "<time> <LEVEL> [<plugin>] message" on the server log -- */
    void (*log)(pyoco_host *h, pyoco_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    void (*logv)(pyoco_host *h, pyoco_log_level level, const char *fmt,
                 va_list ap);

    /* -- configuration of this plugin's block (after env overrides) -- */
    /* NULL when unset. Valid until fini. */
    const char *(*config_string)(pyoco_host *h, const char *key);
    int (*config_int)(pyoco_host *h, const char *key, int64_t *out);
    int (*config_double)(pyoco_host *h, const char *key, double *out);
    int (*config_bool)(pyoco_host *h, const char *key, bool *out);
    /* Any key as JSON (a LIST or MAP as array/object; plain scalars typed
     * YAML-style - numbers, booleans, null - and quoted ones as strings);
     * borrowed, valid until fini. NULL when unset. Paths in values are as
     * written: relative ones are relative to the server's working dir. */
    const json_t *(*config_json)(pyoco_host *h, const char *key);
    /* "file:line" where the key (or the plugin's block when key is NULL)
     * was written, for error messages; "" when it came from a default. */
    const char *(*config_where)(pyoco_host *h, const char *key);

    /* -- the event bus -- */
    /* Returns a subscription id (> 0) or a negative errno. Callbacks run
     * synchronously, in subscription order, on the loop thread. */
    int (*subscribe)(pyoco_host *h, uint32_t kind, pyoco_event_fn fn,
                     void *user_data, pyoco_free_fn free_fn);
    int (*unsubscribe)(pyoco_host *h, int subscription_id);

    /* -- HTTP routes -- */
    /* methods: PYOCO_HTTP_* mask. pattern: "/runs/{run_id}/logs"; a {name}
     * segment matches one non-empty path segment. Exact segments beat
     * parameters. -EEXIST when the same method and pattern is taken. */
    int (*route_add)(pyoco_host *h, unsigned methods, const char *pattern,
                     pyoco_route_fn fn, void *user_data, pyoco_free_fn free_fn);
    unsigned (*req_method)(pyoco_request *req);
    const char *(*req_path)(pyoco_request *req);
    /* Path parameter by name, percent-decoded; NULL if absent. */
    const char *(*req_param)(pyoco_request *req, const char *name);
    /* Query parameter by name, decoded; NULL if absent ("" if empty). */
    const char *(*req_query)(pyoco_request *req, const char *name);
    const char *(*req_header)(pyoco_request *req, const char *name);
    /* The whole body (the host enforces the body limit); NUL-terminated. */
    const char *(*req_body)(pyoco_request *req, size_t *len);
    int (*reply)(pyoco_request *req, int status, const char *content_type,
                 const char *body, size_t len);
    /* Dumps `body` compactly with Content-Type application/json. */
    int (*reply_json)(pyoco_request *req, int status, const json_t *body);
    /* 4xx/5xx with {"detail": "<message>"}. */
    int (*reply_error)(pyoco_request *req, int status, const char *detail);
    int (*req_add_header)(pyoco_request *req, const char *name,
                          const char *value);

    /* -- the durability barrier -- */
    /* Call fn(0, ud) once everything published so far is durable with every
     * provider, or fn(-EIO, ud) if a provider failed. With no provider, fn
     * runs before this returns. */
    int (*when_durable)(pyoco_host *h, pyoco_durable_fn fn, void *user_data);
    /* A provider (storage) declares itself once in init, then reports from
     * the loop thread that every event with seq <= upto is durable, or that
     * writes fail (status < 0: waiters get the error until it recovers). */
    int (*durability_provide)(pyoco_host *h);
    int (*durability_advance)(pyoco_host *h, uint64_t upto, int status);

    /* -- the run registry (the Kanban state machine) -- */
    /* All JSON returned is a new reference the caller must json_decref.
     * All JSON passed in is borrowed (the registry copies what it keeps). */
    /* params: object or NULL; tags: array of strings or NULL. */
    int (*run_submit)(pyoco_host *h, const char *flow_name,
                      const json_t *params, const json_t *tags,
                      char run_id_out[37]);
    /* The GET /runs/{id} object; -ENOENT if unknown (in memory and in every
     * archive source). */
    int (*run_get)(pyoco_host *h, const char *run_id, json_t **out);
    /* status: NULL or a wire status name; flow: NULL or exact; limit 1..n.
     * Array of run objects, newest start_time first. -EINVAL bad status. */
    int (*run_list)(pyoco_host *h, const char *status, const char *flow,
                    size_t limit, json_t **out);
    /* PENDING/RUNNING -> CANCELLING; others unchanged. -ENOENT unknown. */
    int (*run_cancel)(pyoco_host *h, const char *run_id);
    /* {"run_id","flow_name","params"} or all three null. tags: NULL or array.
     */
    int (*worker_poll)(pyoco_host *h, const char *worker_id, const json_t *tags,
                       json_t **out);
    /* body: the heartbeat object (see kanban-api.md). -ENOENT unknown run,
     * -EINVAL when a field has the wrong shape (nothing applied then). */
    int (*run_heartbeat)(pyoco_host *h, const char *run_id, const json_t *body,
                         bool *cancel_requested);
    /* {"run_status", "logs"}; task NULL for all; tail < 0 for all. */
    int (*run_logs)(pyoco_host *h, const char *run_id, const char *task,
                    long tail, json_t **out);
    int (*registry_stats)(pyoco_host *h, pyoco_registry_stats *out);

    /* -- restoring and archives (storage) -- */
    /* Put a run back at start-up, before the listener opens: `run` is a
     * GET /runs/{id} object plus "tags" (array) and "queued" (bool: put it
     * back at the tail of the queue). Publishes RUN_RESTORED. */
    int (*run_restore)(pyoco_host *h, const json_t *run);
    /* A source consulted by run_get for runs no longer in memory. fn returns
     * a new reference or NULL. */
    int (*archive_source_add)(pyoco_host *h,
                              json_t *(*fn)(const char *run_id, void *ud),
                              void *user_data, pyoco_free_fn free_fn);

    /* -- the outbox: small durable records a plugin owns (webhook) -- */
    /* Publishes OUTBOX_PUT/OUTBOX_DONE with this plugin as owner; a storage
     * provider persists them. */
    int (*outbox_put)(pyoco_host *h, const char *id, const json_t *data);
    int (*outbox_done)(pyoco_host *h, const char *id);
    /* Storage, at start: hand an entry back to its owner (OUTBOX_RESTORED). */
    int (*outbox_restore)(pyoco_host *h, const char *owner, const char *id,
                          const json_t *data);

    /* -- the loop and the server -- */
    /* The libevent base. It is created with pthread locking enabled, so
     * event_active() on it is safe from another thread. */
    struct event_base *(*event_base)(pyoco_host *h);
    double (*now)(pyoco_host *h); /* Unix seconds, wall clock */
    const char *(*server_version)(pyoco_host *h);
    /* Loaded plugins, in load order; -ENOENT past the end. */
    int (*plugin_info)(pyoco_host *h, size_t index, pyoco_plugin_info *out);
    /* Tell the host a stop() that returned 1 has finished draining. */
    void (*stop_done)(pyoco_host *h);
    /* The plugin's name as loaded. */
    const char *(*plugin_name)(pyoco_host *h);

    /* -- measurements -- */
    /* Publish a PYOCO_EV_METRIC event; cheap when nobody exports metrics. */
    int (*metric)(pyoco_host *h, const pyoco_metric_sample *sample);

    /* -- request filters -- */
    int (*filter_add)(pyoco_host *h, pyoco_filter_fn fn, void *user_data,
                      pyoco_free_fn free_fn);
    /* The pattern that matched ("/runs/{run_id}"). */
    const char *(*req_route)(pyoco_request *req);
    /* The client's address ("127.0.0.1"). */
    const char *(*req_peer)(pyoco_request *req);

    /* -- streaming replies (Server-Sent Events, long responses) -- */
    /* Send the status line and headers now; the body follows in chunks.
     * The handle stays valid until reply_end, which must always be called
     * (also after the client went away: then it only releases the handle). */
    int (*reply_start)(pyoco_request *req, int status,
                       const char *content_type);
    /* -EPIPE once the client has gone. */
    int (*reply_chunk)(pyoco_request *req, const char *data, size_t len);
    int (*reply_end)(pyoco_request *req);
    /* Bytes written but not yet sent to the client (to drop slow ones). */
    size_t (*req_output_pending)(pyoco_request *req);
    /* fn runs once if the client goes away before reply_end. */
    int (*req_on_close)(pyoco_request *req, pyoco_close_fn fn, void *user_data);

    /* Like reply, without copying: the host sends body from where it is and
     * calls done(user_data) once it no longer needs it (done may be NULL
     * for static data). */
    int (*reply_ref)(pyoco_request *req, int status, const char *content_type,
                     const char *body, size_t len, pyoco_free_fn done,
                     void *user_data);

    /* -- the registry as JSON text -- */
    /* run_get and run_list, serialized (compact) into a malloc'd buffer the
     * caller frees. Faster than dumping the json_t: the host keeps each
     * run's text until the run changes. */
    int (*run_get_text)(pyoco_host *h, const char *run_id, char **out,
                        size_t *len);
    int (*run_list_text)(pyoco_host *h, const char *status, const char *flow,
                         size_t limit, char **out, size_t *len);
};

#ifdef __cplusplus
}
#endif
#endif
