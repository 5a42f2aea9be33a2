/* core/config_plugin.c - binds a plugin's pyoco.yaml block to the keys the
 * plugin declares: rejects unknown keys and wrong types, then resolves each
 * key as environment > file > declared default, and serves the getters. */
#include "config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bound_key {
    const char *name; /* borrowed from the plugin's static table */
    pyoco_config_type type;
    pyoco_yaml_value v;
    char *where; /* "file:line", "environment NAME" or "" */
} bound_key;

struct pyoco_plugin_config {
    size_t n;
    bound_key *keys;
    char *block_where;
};

void pyoco_plugin_config_free(pyoco_plugin_config *pc) {
    if (!pc)
        return;
    for (size_t i = 0; i < pc->n; i++) {
        pyoco_yaml_value_clear(&pc->keys[i].v);
        free(pc->keys[i].where);
    }
    free(pc->keys);
    free(pc->block_where);
    free(pc);
}

static bool valid_type(pyoco_config_type t) {
    return t >= PYOCO_CONFIG_STRING && t <= PYOCO_CONFIG_MAP;
}

/* Replaces k's value (taking v) and its origin. */
static int key_set(bound_key *k, pyoco_yaml_value *v, const char *where) {
    char *w = strdup(where);
    if (!w)
        return -ENOMEM;
    pyoco_yaml_value_clear(&k->v);
    free(k->where);
    k->v = *v;
    memset(v, 0, sizeof *v);
    k->where = w;
    return 0;
}

static int check_decls(const char *plugin, const pyoco_config_key *keys,
                       size_t *n, char *err, size_t errlen) {
    *n = 0;
    for (const pyoco_config_key *k = keys; k && k->name; k++, (*n)++) {
        bool bad =
            !*k->name || !strcmp(k->name, "file") || !valid_type(k->type);
        for (const pyoco_config_key *j = keys; !bad && j < k; j++)
            bad = !strcmp(j->name, k->name);
        if (bad) {
            snprintf(err, errlen,
                     "plugin %s: bad declaration of key '%s' (empty, "
                     "reserved 'file', unknown type or declared twice)",
                     plugin, k->name);
            return -EINVAL;
        }
    }
    return 0;
}

static int apply_defaults(pyoco_plugin_config *pc, const char *plugin,
                          const pyoco_config_key *keys, char *err,
                          size_t errlen) {
    for (size_t i = 0; i < pc->n; i++) {
        bound_key *k = &pc->keys[i];
        k->name = keys[i].name;
        k->type = keys[i].type;
        if (!(k->where = strdup("")))
            return -ENOMEM;
        if (!keys[i].default_value)
            continue;
        char msg[256];
        int rc = pyoco_yaml_value_from_text(keys[i].default_value, k->type,
                                            false, &k->v, msg, sizeof msg);
        if (rc == -ENOMEM)
            return rc;
        if (rc) {
            snprintf(err, errlen, "plugin %s: bad default for key %s (%s)",
                     plugin, k->name, msg);
            return -EINVAL;
        }
    }
    return 0;
}

static bound_key *find(const pyoco_plugin_config *pc, const char *name) {
    for (size_t i = 0; pc && name && i < pc->n; i++)
        if (!strcmp(pc->keys[i].name, name))
            return &pc->keys[i];
    return NULL;
}

static int unknown_key(const pyoco_config *cfg, const pyoco_plugin_config *pc,
                       const char *plugin, const char *key, size_t line,
                       char *err, size_t errlen) {
    int o = snprintf(err, errlen,
                     "%s:%zu: plugins.%s.%s: unknown key (known: ", cfg->name,
                     line, plugin, key);
    for (size_t i = 0; i < pc->n && o >= 0 && (size_t)o < errlen; i++)
        o += snprintf(err + o, errlen - (size_t)o, "%s%s", i ? ", " : "",
                      pc->keys[i].name);
    if (o >= 0 && (size_t)o < errlen)
        snprintf(err + o, errlen - (size_t)o, "%s)", pc->n ? "" : "none");
    return -EINVAL;
}

static int apply_block(const pyoco_config *cfg, const pyoco_config_block *b,
                       pyoco_plugin_config *pc, const char *plugin, char *err,
                       size_t errlen) {
    /* The document is only read; libyaml's accessors just lack const. */
    yaml_document_t *doc = (yaml_document_t *)&cfg->doc;
    yaml_node_t *block = yaml_document_get_node(doc, b->node);
    for (yaml_node_pair_t *p = block->data.mapping.pairs.start;
         p < block->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const char *key = pyoco_yaml_text(kn, NULL);
        if (!strcmp(key, "file"))
            continue; /* reserved: the core's, resolved at parse time */
        bound_key *k = find(pc, key);
        if (!k)
            return unknown_key(cfg, pc, plugin, key, kn->start_mark.line + 1,
                               err, errlen);
        pyoco_yaml_value v;
        char msg[512];
        size_t line;
        int rc = pyoco_yaml_value_from_node(doc, vn, k->type, &v, &line, msg,
                                            sizeof msg);
        if (rc == -ENOMEM)
            return rc;
        if (rc) {
            snprintf(err, errlen, "%s:%zu: plugins.%s.%s: %s", cfg->name, line,
                     plugin, key, msg);
            return -EINVAL;
        }
        if (!v.set)
            continue; /* `key:` alone keeps the default */
        char where[1100];
        snprintf(where, sizeof where, "%s:%zu", cfg->name,
                 kn->start_mark.line + 1);
        rc = key_set(k, &v, where);
        pyoco_yaml_value_clear(&v);
        if (rc)
            return rc;
    }
    return 0;
}

static int apply_env(pyoco_plugin_config *pc, const pyoco_config_key *keys,
                     char *err, size_t errlen) {
    for (size_t i = 0; i < pc->n; i++) {
        const char *val = keys[i].env ? getenv(keys[i].env) : NULL;
        if (!val || !*val)
            continue;
        pyoco_yaml_value v;
        char msg[512];
        int rc = pyoco_yaml_value_from_text(val, keys[i].type, true, &v, msg,
                                            sizeof msg);
        if (rc == -ENOMEM)
            return rc;
        if (rc) {
            snprintf(err, errlen, "environment %s: %s", keys[i].env, msg);
            return -EINVAL;
        }
        if (!v.set)
            continue; /* e.g. LIST env "~": treated as not set */
        char where[300];
        snprintf(where, sizeof where, "environment %s", keys[i].env);
        rc = key_set(&pc->keys[i], &v, where);
        pyoco_yaml_value_clear(&v);
        if (rc)
            return rc;
    }
    return 0;
}

int pyoco_config_plugin_bind(const pyoco_config *cfg, size_t i,
                             const char *plugin_name,
                             const pyoco_config_key *keys,
                             pyoco_plugin_config **out, char *err,
                             size_t errlen) {
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    const pyoco_config_block *b = NULL;
    if (i != SIZE_MAX) {
        if (!cfg || i >= cfg->nblocks) {
            snprintf(err, errlen, "plugin %s: no such block %zu",
                     plugin_name ? plugin_name : "?", i);
            return -EINVAL;
        }
        b = &cfg->blocks[i];
    }
    const char *plugin = plugin_name ? plugin_name : b ? b->name : "?";
    size_t n;
    int rc = check_decls(plugin, keys, &n, err, errlen);
    if (rc)
        return rc;
    pyoco_plugin_config *pc = calloc(1, sizeof *pc);
    if (!pc || (n && !(pc->keys = calloc(n, sizeof *pc->keys))) ||
        !(pc->block_where = strdup(b ? b->where : ""))) {
        rc = -ENOMEM;
        goto out;
    }
    pc->n = n;
    if ((rc = apply_defaults(pc, plugin, keys, err, errlen)))
        goto out;
    if (b && b->node && (rc = apply_block(cfg, b, pc, plugin, err, errlen)))
        goto out;
    rc = apply_env(pc, keys, err, errlen);
out:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "plugin %s: out of memory", plugin);
    if (rc) {
        pyoco_plugin_config_free(pc);
        return rc;
    }
    *out = pc;
    return 0;
}

const char *pyoco_plugin_config_string(const pyoco_plugin_config *pc,
                                       const char *key) {
    const bound_key *k = find(pc, key);
    return k && k->type == PYOCO_CONFIG_STRING && k->v.set ? k->v.str : NULL;
}

/* -ENOENT unknown or unset, -EINVAL wrong getter, else 0 with *k set. */
static int typed(const pyoco_plugin_config *pc, const char *key,
                 pyoco_config_type type, const bound_key **k) {
    *k = find(pc, key);
    if (!*k)
        return -ENOENT;
    if ((*k)->type != type)
        return -EINVAL;
    return (*k)->v.set ? 0 : -ENOENT;
}

int pyoco_plugin_config_int(const pyoco_plugin_config *pc, const char *key,
                            int64_t *out) {
    const bound_key *k;
    int rc = typed(pc, key, PYOCO_CONFIG_INT, &k);
    if (!rc)
        *out = k->v.i;
    return rc;
}

int pyoco_plugin_config_double(const pyoco_plugin_config *pc, const char *key,
                               double *out) {
    const bound_key *k;
    int rc = typed(pc, key, PYOCO_CONFIG_DOUBLE, &k);
    if (!rc)
        *out = k->v.d;
    return rc;
}

int pyoco_plugin_config_bool(const pyoco_plugin_config *pc, const char *key,
                             bool *out) {
    const bound_key *k;
    int rc = typed(pc, key, PYOCO_CONFIG_BOOL, &k);
    if (!rc)
        *out = k->v.b;
    return rc;
}

const json_t *pyoco_plugin_config_json(const pyoco_plugin_config *pc,
                                       const char *key) {
    const bound_key *k = find(pc, key);
    return k && k->v.set ? k->v.json : NULL;
}

const char *pyoco_plugin_config_where(const pyoco_plugin_config *pc,
                                      const char *key) {
    if (!pc)
        return NULL;
    if (!key)
        return pc->block_where;
    const bound_key *k = find(pc, key);
    return k ? k->where : NULL;
}
