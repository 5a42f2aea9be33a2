/* core/config.c - pyoco.yaml: the file, the core's server/registry keys,
 * plugin_path, the plugins: blocks (validated later by config_plugin.c)
 * and the environment overrides of the core keys. */
#include "config_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Files bigger than this are certainly not a configuration. */
#define PYOCO_CONFIG_MAX_FILE (16u << 20)

/* ---- the core keys --------------------------------------------------------
 */

enum field_kind { F_STR, F_INT, F_SIZE, F_DOUBLE };

typedef struct core_key {
    const char *section;
    const char *name;
    pyoco_config_type type;
    const char *env;
    enum field_kind kind;
    size_t offset;
    double min, max; /* inclusive, unless min_open */
    bool min_open;
} core_key;

#define OFF(f) offsetof(pyoco_server_settings, f)
static const core_key core_keys[] = {
    {"server", "host", PYOCO_CONFIG_STRING, NULL, F_STR, OFF(host), 0, 0, 0},
    {"server", "port", PYOCO_CONFIG_INT, NULL, F_INT, OFF(port), 0, 65535, 0},
    {"server", "max_body_bytes", PYOCO_CONFIG_INT, NULL, F_SIZE,
     OFF(max_body_bytes), 1, 1e15, 0},
    {"server", "max_header_bytes", PYOCO_CONFIG_INT, NULL, F_SIZE,
     OFF(max_header_bytes), 1, 1e15, 0},
    {"server", "read_timeout", PYOCO_CONFIG_DOUBLE, NULL, F_DOUBLE,
     OFF(read_timeout), 0, 1e9, 1},
    {"server", "idle_timeout", PYOCO_CONFIG_DOUBLE, NULL, F_DOUBLE,
     OFF(idle_timeout), 0, 1e9, 1},
    {"server", "max_connections", PYOCO_CONFIG_INT, NULL, F_INT,
     OFF(max_connections), 1, INT_MAX, 0},
    {"server", "drain_timeout", PYOCO_CONFIG_DOUBLE, NULL, F_DOUBLE,
     OFF(drain_timeout), 0, 1e9, 0},
    {"registry", "max_run_history", PYOCO_CONFIG_INT, "PYOCO_MAX_RUN_HISTORY",
     F_SIZE, OFF(max_run_history), 1, 1e15, 0},
    {"registry", "archive_dir", PYOCO_CONFIG_STRING, "PYOCO_RUN_ARCHIVE_DIR",
     F_STR, OFF(archive_dir), 0, 0, 0},
    {"registry", "max_log_bytes", PYOCO_CONFIG_INT, "PYOCO_MAX_LOG_BYTES",
     F_SIZE, OFF(max_log_bytes), 1, 1e15, 0},
    {"registry", "assignment_lease", PYOCO_CONFIG_DOUBLE, NULL, F_DOUBLE,
     OFF(assignment_lease), 0, 1e9, 0},
    {"registry", "heartbeat_timeout", PYOCO_CONFIG_DOUBLE, NULL, F_DOUBLE,
     OFF(heartbeat_timeout), 0, 1e9, 0},
};
#undef OFF
#define N_CORE_KEYS (sizeof core_keys / sizeof core_keys[0])

static const char *const top_keys = "server, registry, plugin_path, plugins";

/* Range-checks v and stores it. -EINVAL with "out of range ..." in msg. */
static int core_set(pyoco_server_settings *s, const core_key *k,
                    pyoco_yaml_value *v, char *msg, size_t msglen) {
    char *field = (char *)s + k->offset;
    if (k->kind == F_STR) {
        if (!*v->str) {
            snprintf(msg, msglen, "must not be empty");
            return -EINVAL;
        }
        free(*(char **)field);
        *(char **)field = v->str;
        v->str = NULL;
        return 0;
    }
    double d = k->kind == F_DOUBLE ? v->d : (double)v->i;
    bool ok = k->min_open ? d > k->min : d >= k->min;
    if (!(ok && d <= k->max)) {
        char got[64];
        if (k->kind == F_DOUBLE)
            snprintf(got, sizeof got, "%g", v->d);
        else
            snprintf(got, sizeof got, "%lld", (long long)v->i);
        if (k->kind == F_INT)
            snprintf(msg, msglen, "out of range (%.0f..%.0f), got %s", k->min,
                     k->max, got);
        else if (k->max >= 1e9)
            snprintf(msg, msglen, "out of range (%s %g), got %s",
                     k->min_open ? ">" : ">=", k->min, got);
        else
            snprintf(msg, msglen, "out of range (%g..%g), got %s", k->min,
                     k->max, got);
        return -EINVAL;
    }
    if (k->kind == F_INT)
        *(int *)field = (int)v->i;
    else if (k->kind == F_SIZE)
        *(size_t *)field = (size_t)v->i;
    else
        *(double *)field = v->d;
    return 0;
}

/* ---- helpers --------------------------------------------------------------
 */

static char *xstrdup(const char *s) {
    return s ? strdup(s) : NULL;
}

/* Lexically normalised absolute path: dir/p (or p when absolute), with
 * "." and ".." segments folded, so messages and dlopen see a clean path. */
static char *path_resolve(const char *dir, const char *p) {
    size_t n = strlen(dir) + strlen(p) + 3;
    char *joined = malloc(n), *out = malloc(n);
    if (!joined || !out) {
        free(joined);
        free(out);
        return NULL;
    }
    if (p[0] == '/')
        snprintf(joined, n, "%s", p);
    else
        snprintf(joined, n, "%s/%s", dir, p);
    size_t o = 0;
    char *save = NULL;
    for (char *seg = strtok_r(joined, "/", &save); seg;
         seg = strtok_r(NULL, "/", &save)) {
        if (!strcmp(seg, "."))
            continue;
        if (!strcmp(seg, "..")) {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* drop the slash too */
            continue;
        }
        out[o++] = '/';
        size_t l = strlen(seg);
        memcpy(out + o, seg, l);
        o += l;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    free(joined);
    return out;
}

static char *abs_dir(const char *dir) {
    if (dir && dir[0] == '/')
        return path_resolve("/", dir);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    return path_resolve(cwd, dir && *dir ? dir : ".");
}

/* "name:line: " into err, then the formatted rest. */
__attribute__((format(printf, 5, 6))) static int fail(char *err, size_t errlen,
                                                      const char *name,
                                                      size_t line,
                                                      const char *fmt, ...) {
    int o = line ? snprintf(err, errlen, "%s:%zu: ", name, line)
                 : snprintf(err, errlen, "%s: ", name);
    if (o >= 0 && (size_t)o < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + o, errlen - (size_t)o, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static size_t line_of(const yaml_node_t *n) {
    return n->start_mark.line + 1;
}

static const char *kind_name(const yaml_node_t *n) {
    return n->type == YAML_SEQUENCE_NODE  ? "a list"
           : n->type == YAML_MAPPING_NODE ? "a mapping"
                                          : "a scalar";
}

/* ---- lifecycle ------------------------------------------------------------
 */

pyoco_config *pyoco_config_default(void) {
    pyoco_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->s.host = strdup("0.0.0.0");
    cfg->s.port = 8000;
    cfg->s.max_body_bytes = 1048576;
    cfg->s.max_header_bytes = 65536;
    cfg->s.read_timeout = 30;
    cfg->s.idle_timeout = 60;
    cfg->s.max_connections = 4096;
    cfg->s.drain_timeout = 10;
    cfg->s.max_run_history = 50;
    cfg->s.archive_dir = strdup("artifacts/runs");
    cfg->s.max_log_bytes = 1048576;
    cfg->name = strdup("<defaults>");
    cfg->dir = abs_dir(NULL);
    if (!cfg->s.host || !cfg->s.archive_dir || !cfg->name || !cfg->dir) {
        pyoco_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void pyoco_config_free(pyoco_config *cfg) {
    if (!cfg)
        return;
    free(cfg->s.host);
    free(cfg->s.archive_dir);
    free(cfg->name);
    free(cfg->dir);
    if (cfg->has_doc)
        yaml_document_delete(&cfg->doc);
    for (size_t i = 0; i < cfg->npaths; i++)
        free(cfg->paths[i]);
    free(cfg->paths);
    for (size_t i = 0; i < cfg->nblocks; i++) {
        free(cfg->blocks[i].name);
        free(cfg->blocks[i].file);
        free(cfg->blocks[i].where);
    }
    free(cfg->blocks);
    free(cfg);
}

const pyoco_server_settings *pyoco_config_server(const pyoco_config *cfg) {
    return &cfg->s;
}

pyoco_server_settings *pyoco_config_server_mut(pyoco_config *cfg) {
    return &cfg->s;
}

int pyoco_config_set_host(pyoco_config *cfg, const char *host) {
    char *h = strdup(host);
    if (!h)
        return -ENOMEM;
    free(cfg->s.host);
    cfg->s.host = h;
    return 0;
}

const char *pyoco_config_name(const pyoco_config *cfg) {
    return cfg->name;
}

const char *pyoco_config_dir(const pyoco_config *cfg) {
    return cfg->dir;
}

size_t pyoco_config_path_count(const pyoco_config *cfg) {
    return cfg->npaths;
}

const char *pyoco_config_path(const pyoco_config *cfg, size_t i) {
    return i < cfg->npaths ? cfg->paths[i] : NULL;
}

size_t pyoco_config_plugin_count(const pyoco_config *cfg) {
    return cfg->nblocks;
}

const char *pyoco_config_plugin_name(const pyoco_config *cfg, size_t i) {
    return i < cfg->nblocks ? cfg->blocks[i].name : NULL;
}

const char *pyoco_config_plugin_file(const pyoco_config *cfg, size_t i) {
    return i < cfg->nblocks ? cfg->blocks[i].file : NULL;
}

const char *pyoco_config_plugin_where(const pyoco_config *cfg, size_t i) {
    return i < cfg->nblocks ? cfg->blocks[i].where : NULL;
}

/* ---- environment ----------------------------------------------------------
 */

int pyoco_config_apply_env(pyoco_config *cfg, char *err, size_t errlen) {
    for (size_t k = 0; k < N_CORE_KEYS; k++) {
        const core_key *ck = &core_keys[k];
        const char *val = ck->env ? getenv(ck->env) : NULL;
        if (!val || !*val)
            continue;
        pyoco_yaml_value v;
        char msg[512];
        int rc = pyoco_yaml_value_from_text(val, ck->type, true, &v, msg,
                                            sizeof msg);
        if (!rc && v.set)
            rc = core_set(&cfg->s, ck, &v, msg, sizeof msg);
        pyoco_yaml_value_clear(&v);
        if (rc) {
            snprintf(err, errlen, "environment %s: %s", ck->env, msg);
            return rc == -ENOMEM ? rc : -EINVAL;
        }
    }
    return 0;
}

/* ---- sections -------------------------------------------------------------
 */

static int parse_section(pyoco_config *cfg, const char *section,
                         yaml_node_t *node, char *err, size_t errlen) {
    yaml_document_t *doc = &cfg->doc;
    if (pyoco_yaml_is_null(node))
        return 0;
    if (node->type != YAML_MAPPING_NODE)
        return fail(err, errlen, cfg->name, line_of(node),
                    "%s: expected a mapping, got %s", section, kind_name(node));
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const char *key = pyoco_yaml_text(kn, NULL);
        const core_key *ck = NULL;
        char known[256] = "";
        for (size_t k = 0; k < N_CORE_KEYS; k++) {
            if (strcmp(core_keys[k].section, section))
                continue;
            if (!strcmp(core_keys[k].name, key))
                ck = &core_keys[k];
            size_t o = strlen(known);
            snprintf(known + o, sizeof known - o, "%s%s", o ? ", " : "",
                     core_keys[k].name);
        }
        if (!ck)
            return fail(err, errlen, cfg->name, line_of(kn),
                        "%s.%s: unknown key (known: %s)", section, key, known);
        pyoco_yaml_value v;
        char msg[512];
        size_t line;
        int rc = pyoco_yaml_value_from_node(doc, vn, ck->type, &v, &line, msg,
                                            sizeof msg);
        if (!rc && v.set)
            rc = core_set(&cfg->s, ck, &v, msg, sizeof msg);
        pyoco_yaml_value_clear(&v);
        if (rc == -ENOMEM)
            return rc;
        if (rc)
            return fail(err, errlen, cfg->name, line, "%s.%s: %s", section, key,
                        msg);
    }
    return 0;
}

static int add_path(pyoco_config *cfg, yaml_node_t *n, const char *key,
                    char *err, size_t errlen) {
    size_t len = 0;
    const char *t = pyoco_yaml_text(n, &len);
    if (!t || pyoco_yaml_is_null(n) || len == 0 || memchr(t, '\0', len))
        return fail(err, errlen, cfg->name, line_of(n),
                    "%s: expected a non-empty path, got %s", key,
                    t ? "an empty value" : kind_name(n));
    char **grown = realloc(cfg->paths, (cfg->npaths + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    cfg->paths = grown;
    if (!(cfg->paths[cfg->npaths] = path_resolve(cfg->dir, t)))
        return -ENOMEM;
    cfg->npaths++;
    return 0;
}

static int parse_plugin_path(pyoco_config *cfg, yaml_node_t *node, char *err,
                             size_t errlen) {
    if (pyoco_yaml_is_null(node))
        return 0;
    if (node->type == YAML_MAPPING_NODE)
        return fail(err, errlen, cfg->name, line_of(node),
                    "plugin_path: expected a string or a list, got a mapping");
    if (node->type == YAML_SCALAR_NODE)
        return add_path(cfg, node, "plugin_path", err, errlen);
    size_t i = 0;
    for (yaml_node_item_t *it = node->data.sequence.items.start;
         it < node->data.sequence.items.top; it++, i++) {
        char key[48];
        snprintf(key, sizeof key, "plugin_path[%zu]", i);
        int rc = add_path(cfg, yaml_document_get_node(&cfg->doc, *it), key, err,
                          errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static bool valid_plugin_name(const char *s, size_t len) {
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_'))
            return false;
    return true;
}

static int parse_block_file(pyoco_config *cfg, pyoco_config_block *b,
                            yaml_node_t *block, char *err, size_t errlen) {
    for (yaml_node_pair_t *p = block->data.mapping.pairs.start;
         p < block->data.mapping.pairs.top; p++) {
        const char *key =
            pyoco_yaml_text(yaml_document_get_node(&cfg->doc, p->key), NULL);
        if (strcmp(key, "file"))
            continue;
        yaml_node_t *vn = yaml_document_get_node(&cfg->doc, p->value);
        if (pyoco_yaml_is_null(vn))
            return 0;
        size_t len = 0;
        const char *t = pyoco_yaml_text(vn, &len);
        if (!t || len == 0 || memchr(t, '\0', len))
            return fail(err, errlen, cfg->name, line_of(vn),
                        "plugins.%s.file: expected a non-empty path, got %s",
                        b->name, t ? "an empty value" : kind_name(vn));
        if (!(b->file = path_resolve(cfg->dir, t)))
            return -ENOMEM;
    }
    return 0;
}

static int parse_plugins(pyoco_config *cfg, yaml_node_t *node, char *err,
                         size_t errlen) {
    if (pyoco_yaml_is_null(node))
        return 0;
    if (node->type != YAML_MAPPING_NODE)
        return fail(err, errlen, cfg->name, line_of(node),
                    "plugins: expected a mapping of plugin blocks, got %s",
                    kind_name(node));
    size_t n =
        (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if (n == 0)
        return 0;
    cfg->blocks = calloc(n, sizeof *cfg->blocks);
    if (!cfg->blocks)
        return -ENOMEM;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&cfg->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(&cfg->doc, p->value);
        size_t len = 0;
        const char *name = pyoco_yaml_text(kn, &len);
        if (!valid_plugin_name(name, len))
            return fail(err, errlen, cfg->name, line_of(kn),
                        "plugins.%s: a plugin name must match [a-z0-9_]+ "
                        "(at most 64 characters)",
                        name);
        pyoco_config_block *b = &cfg->blocks[cfg->nblocks++];
        char where[PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%zu", cfg->name, line_of(kn));
        if (!(b->name = strdup(name)) || !(b->where = strdup(where)))
            return -ENOMEM;
        if (pyoco_yaml_is_null(vn))
            continue;
        if (vn->type != YAML_MAPPING_NODE) {
            char got[96];
            const char *t = pyoco_yaml_text(vn, NULL);
            if (t)
                snprintf(got, sizeof got, "\"%.60s\"", t);
            else
                snprintf(got, sizeof got, "%s", kind_name(vn));
            return fail(err, errlen, cfg->name, line_of(vn),
                        "plugins.%s: expected a mapping or nothing, got %s",
                        b->name, got);
        }
        b->node = (int)(vn - cfg->doc.nodes.start) + 1;
        int rc = parse_block_file(cfg, b, vn, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_root(pyoco_config *cfg, char *err, size_t errlen) {
    yaml_node_t *root = yaml_document_get_root_node(&cfg->doc);
    if (!root || pyoco_yaml_is_null(root))
        return 0; /* an empty file: every default */
    if (root->type != YAML_MAPPING_NODE)
        return fail(err, errlen, cfg->name, line_of(root),
                    "the top level must be a mapping, got %s", kind_name(root));
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&cfg->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(&cfg->doc, p->value);
        const char *key = pyoco_yaml_text(kn, NULL);
        int rc;
        if (!strcmp(key, "server") || !strcmp(key, "registry"))
            rc = parse_section(cfg, key, vn, err, errlen);
        else if (!strcmp(key, "plugin_path"))
            rc = parse_plugin_path(cfg, vn, err, errlen);
        else if (!strcmp(key, "plugins"))
            rc = parse_plugins(cfg, vn, err, errlen);
        else
            rc = fail(err, errlen, cfg->name, line_of(kn),
                      "unknown key '%s' (known: %s)", key, top_keys);
        if (rc)
            return rc;
    }
    return 0;
}

int pyoco_config_parse(const char *text, size_t len, const char *name,
                       const char *dir, pyoco_config **out, char *err,
                       size_t errlen) {
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    pyoco_config *cfg = pyoco_config_default();
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    free(cfg->name);
    free(cfg->dir);
    cfg->name = xstrdup(name ? name : "<config>");
    cfg->dir = abs_dir(dir);
    int rc = -ENOMEM;
    if (!cfg->name || !cfg->dir)
        goto out;
    size_t line;
    char msg[512];
    rc = pyoco_yaml_load(text ? text : "", text ? len : 0, &cfg->doc, &line,
                         msg, sizeof msg);
    if (rc) {
        fail(err, errlen, cfg->name, line, "%s", msg);
        goto out;
    }
    cfg->has_doc = true;
    if ((rc = parse_root(cfg, err, errlen)))
        goto out;
    rc = pyoco_config_apply_env(cfg, err, errlen);
out:
    if (rc == -ENOMEM && errlen && !err[0])
        snprintf(err, errlen, "%s: out of memory", name ? name : "<config>");
    if (rc) {
        pyoco_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int pyoco_config_load(const char *path, pyoco_config **out, char *err,
                      size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return e == ENOENT ? -ENOENT : -EINVAL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (len == cap) {
            if (cap >= PYOCO_CONFIG_MAX_FILE) {
                snprintf(err, errlen, "%s: larger than %u bytes", path,
                         PYOCO_CONFIG_MAX_FILE);
                rc = -EINVAL;
                break;
            }
            char *g = realloc(buf, cap * 2);
            if (!g)
                break;
            buf = g;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: cannot read: %s", path,
                         strerror(errno));
                rc = -EINVAL;
            }
            break;
        }
    }
    fclose(f);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    if (!rc) {
        char *slash = strrchr(path, '/');
        char *dir =
            slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
        if (!dir) {
            rc = -ENOMEM;
            snprintf(err, errlen, "%s: out of memory", path);
        } else {
            rc = pyoco_config_parse(buf, len, path, dir, out, err, errlen);
            free(dir);
        }
    }
    free(buf);
    return rc;
}
