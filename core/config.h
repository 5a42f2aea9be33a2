/* core/config.h - pyoco.yaml: parsing (libyaml), the core's settings, and
 * the validation of each plugin's block against its declared keys
 * (internal).
 *
 * Every error message names the file, the line and the key, e.g.
 *   conf/pyoco.yaml:12: plugins.webhook.timeout: expected a number, got "abc"
 *   environment PYOCO_MAX_LOG_BYTES: expected an integer, got "x"
 * and is written into err (always NUL-terminated). */
#ifndef PYOCO_CORE_CONFIG_H
#define PYOCO_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <pyoco/plugin.h>

typedef struct pyoco_config pyoco_config;
typedef struct pyoco_plugin_config pyoco_plugin_config;

/* The core's own settings, after defaults, file and environment. */
typedef struct pyoco_server_settings {
    char *host;              /* server.host, default "0.0.0.0" */
    int port;                /* server.port, default 8000 (0 = any free port) */
    size_t max_body_bytes;   /* server.max_body_bytes, default 1048576 */
    size_t max_header_bytes; /* server.max_header_bytes, default 65536 */
    double read_timeout;     /* server.read_timeout seconds, default 30 */
    double idle_timeout;     /* server.idle_timeout seconds, default 60 */
    int max_connections;     /* server.max_connections, default 4096 */
    double drain_timeout;    /* server.drain_timeout seconds, default 10 */
    size_t max_run_history; /* registry.max_run_history / PYOCO_MAX_RUN_HISTORY,
                               50 */
    char *archive_dir;      /* registry.archive_dir / PYOCO_RUN_ARCHIVE_DIR,
                               "artifacts/runs" (relative to the cwd) */
    size_t max_log_bytes;   /* registry.max_log_bytes / PYOCO_MAX_LOG_BYTES,
                               1048576 */
    double assignment_lease;  /* registry.assignment_lease seconds, 0 = off:
                                 a polled run with no heartbeat by then goes
                                 back to the queue */
    double heartbeat_timeout; /* registry.heartbeat_timeout seconds, 0 = off:
                                 a running run silent that long fails */
} pyoco_server_settings;

/* Parse a file. Unknown top-level or core keys, wrong types, bad YAML, a
 * missing file: -EINVAL / -ENOENT with a message. Environment overrides
 * for the core keys are applied here. */
int pyoco_config_load(const char *path, pyoco_config **out, char *err,
                      size_t errlen);
/* Same from a string; `name` stands for the file name in messages. `dir`
 * is the directory relative plugin_path entries resolve against. */
int pyoco_config_parse(const char *text, size_t len, const char *name,
                       const char *dir, pyoco_config **out, char *err,
                       size_t errlen);
/* A config with every default (no file). */
pyoco_config *pyoco_config_default(void);
void pyoco_config_free(pyoco_config *cfg);

const pyoco_server_settings *pyoco_config_server(const pyoco_config *cfg);
/* Mutable access for command-line overrides (--host, --port). */
pyoco_server_settings *pyoco_config_server_mut(pyoco_config *cfg);
/* Replace server.host (the settings own their strings). 0 or -ENOMEM. */
int pyoco_config_set_host(pyoco_config *cfg, const char *host);
/* Apply PYOCO_MAX_RUN_HISTORY, PYOCO_RUN_ARCHIVE_DIR, PYOCO_MAX_LOG_BYTES
 * (set and non-empty) over cfg. load/parse call it; pyoco_config_default
 * does not (it cannot fail), so a caller without a file calls it itself
 * (or parses an empty text). -EINVAL with "environment NAME: ..." */
int pyoco_config_apply_env(pyoco_config *cfg, char *err, size_t errlen);
/* The file name used in messages, and the absolute folder relative paths
 * resolve against (the file's folder; the cwd for defaults). */
const char *pyoco_config_name(const pyoco_config *cfg);
const char *pyoco_config_dir(const pyoco_config *cfg);

/* plugin_path entries, absolute (resolved against the file's directory). */
size_t pyoco_config_path_count(const pyoco_config *cfg);
const char *pyoco_config_path(const pyoco_config *cfg, size_t i);

/* The plugins: blocks, in file order. */
size_t pyoco_config_plugin_count(const pyoco_config *cfg);
const char *pyoco_config_plugin_name(const pyoco_config *cfg, size_t i);
/* The block's reserved "file:" key (absolute path) or NULL. */
const char *pyoco_config_plugin_file(const pyoco_config *cfg, size_t i);
/* "file:line" of the block. */
const char *pyoco_config_plugin_where(const pyoco_config *cfg, size_t i);

/* Validate plugin block i (or no block at all when i == SIZE_MAX: all
 * defaults) against keys (ending with {NULL}), apply defaults and env
 * overrides, and produce the resolved view the plugin reads. Unknown key,
 * wrong type, bad default -> -EINVAL with "file:line: plugins.<name>.<key>:
 * ...". */
int pyoco_config_plugin_bind(const pyoco_config *cfg, size_t i,
                             const char *plugin_name,
                             const pyoco_config_key *keys,
                             pyoco_plugin_config **out, char *err,
                             size_t errlen);
void pyoco_plugin_config_free(pyoco_plugin_config *pc);

const char *pyoco_plugin_config_string(const pyoco_plugin_config *pc,
                                       const char *key);
int pyoco_plugin_config_int(const pyoco_plugin_config *pc, const char *key,
                            int64_t *out);
int pyoco_plugin_config_double(const pyoco_plugin_config *pc, const char *key,
                               double *out);
int pyoco_plugin_config_bool(const pyoco_plugin_config *pc, const char *key,
                             bool *out);
const json_t *pyoco_plugin_config_json(const pyoco_plugin_config *pc,
                                       const char *key);
const char *pyoco_plugin_config_where(const pyoco_plugin_config *pc,
                                      const char *key);

#endif
