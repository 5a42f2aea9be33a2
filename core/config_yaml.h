/* core/config_yaml.h - libyaml helpers shared by the config parser and the
 * plugin-block binder (internal): loading one document with line-accurate
 * errors, YAML 1.1 typing of plain scalars, and typed value conversion. */
#ifndef PYOCO_CORE_CONFIG_YAML_H
#define PYOCO_CORE_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <pyoco/plugin.h>
#include <yaml.h>

/* Deeper values are rejected rather than recursed into. */
#define PYOCO_YAML_MAX_DEPTH 64
/* Cap on nodes produced by one conversion (alias expansion bombs). */
#define PYOCO_YAML_MAX_NODES 100000

typedef enum pyoco_yaml_kind {
    PYOCO_YAML_NULL,
    PYOCO_YAML_BOOL,
    PYOCO_YAML_INT,
    PYOCO_YAML_FLOAT,
    PYOCO_YAML_STRING,
} pyoco_yaml_kind;

typedef struct pyoco_yaml_scalar {
    pyoco_yaml_kind kind;
    bool b;
    int64_t i;
    double d; /* also set for INT */
} pyoco_yaml_scalar;

/* A resolved, typed value. `set` is false for a null value (the key then
 * counts as absent). `json` is the value as JSON (owned). */
typedef struct pyoco_yaml_value {
    bool set;
    char *str; /* STRING: the text (owned) */
    int64_t i;
    double d;
    bool b;
    json_t *json;
} pyoco_yaml_value;

/* Types a scalar's text: plain scalars YAML 1.1-style, quoted ones are
 * always strings. */
void pyoco_yaml_classify(const char *text, size_t len, bool plain,
                         pyoco_yaml_scalar *out);

/* Parses exactly one document (an empty text gives a document without a
 * root) and rejects duplicate or non-scalar mapping keys. On error returns
 * -EINVAL, sets *line (1-based, 0 when unknown) and writes the message
 * without the location prefix into msg. */
int pyoco_yaml_load(const char *text, size_t len, yaml_document_t *doc,
                    size_t *line, char *msg, size_t msglen);

/* A scalar node's text, or NULL for a collection. */
const char *pyoco_yaml_text(const yaml_node_t *node, size_t *len);
bool pyoco_yaml_is_null(const yaml_node_t *node);

/* Converts node to a value of the given type. -EINVAL with msg such as
 * `expected an integer, got "abc"` (no location), *line at the offender. */
int pyoco_yaml_value_from_node(yaml_document_t *doc, yaml_node_t *node,
                               pyoco_config_type type, pyoco_yaml_value *out,
                               size_t *line, char *msg, size_t msglen);
/* Same from text. STRING takes the text verbatim when `verbatim`, scalar
 * types classify it as a plain scalar; LIST/MAP (and everything when not
 * verbatim) parse it as YAML. */
int pyoco_yaml_value_from_text(const char *text, pyoco_config_type type,
                               bool verbatim, pyoco_yaml_value *out, char *msg,
                               size_t msglen);
void pyoco_yaml_value_clear(pyoco_yaml_value *v);

/* Any node as JSON (typed scalars). NULL with msg on excess depth/size. */
json_t *pyoco_yaml_to_json(yaml_document_t *doc, yaml_node_t *node,
                           size_t *line, char *msg, size_t msglen);

const char *pyoco_yaml_type_name(pyoco_config_type type);

#endif
