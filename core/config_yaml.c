/* core/config_yaml.c - libyaml helpers for the configuration: one-document
 * loading with line-accurate errors, YAML 1.1 scalar typing, structural
 * checks (duplicate keys, depth) and typed conversion to values and JSON. */
#include "config_yaml.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool text_in(const char *t, size_t len, const char *const *set) {
    for (; *set; set++)
        if (strlen(*set) == len && memcmp(*set, t, len) == 0)
            return true;
    return false;
}

static bool all_digits(const char *s, const char *end, const char *digits) {
    if (s == end)
        return false;
    for (; s < end; s++)
        if (!strchr(digits, *s))
            return false;
    return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float_syntax(const char *s, const char *end) {
    if (s < end && (*s == '-' || *s == '+'))
        s++;
    size_t intd = 0, fracd = 0;
    while (s < end && *s >= '0' && *s <= '9')
        s++, intd++;
    if (s < end && *s == '.') {
        s++;
        while (s < end && *s >= '0' && *s <= '9')
            s++, fracd++;
    }
    if (intd + fracd == 0)
        return false;
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < end && (*s == '-' || *s == '+'))
            s++;
        if (!all_digits(s, end, "0123456789"))
            return false;
        s = end;
    }
    return s == end;
}

void pyoco_yaml_classify(const char *text, size_t len, bool plain,
                         pyoco_yaml_scalar *out) {
    static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes",
                                        "YES",  "on",   "On",   "ON",  NULL};
    static const char *const falses[] = {
        "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    memset(out, 0, sizeof *out);
    out->kind = PYOCO_YAML_STRING;
    /* An embedded NUL (from a "\0" escape) can only be a string. */
    if (!plain || memchr(text, '\0', len))
        return;
    if (len == 0 || text_in(text, len, nulls)) {
        out->kind = PYOCO_YAML_NULL;
        return;
    }
    if (text_in(text, len, trues) || text_in(text, len, falses)) {
        out->kind = PYOCO_YAML_BOOL;
        out->b = text_in(text, len, trues);
        return;
    }
    const char *s = text, *end = text + len;
    bool neg = false;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (text_in(s, (size_t)(end - s), infs)) {
        out->kind = PYOCO_YAML_FLOAT;
        out->d = neg ? -INFINITY : INFINITY;
        return;
    }
    if (s == text && text_in(s, len, nans)) {
        out->kind = PYOCO_YAML_FLOAT;
        out->d = NAN;
        return;
    }
    int base = 10;
    const char *digits = s;
    if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = s[1] == 'x' ? 16 : 8;
        digits = s + 2;
    }
    if (all_digits(digits, end,
                   base == 16  ? "0123456789abcdefABCDEF"
                   : base == 8 ? "01234567"
                               : "0123456789")) {
        /* strtoll needs a terminated string: the text from libyaml is
         * NUL-terminated at len, and env/default texts are C strings. */
        errno = 0;
        unsigned long long u = strtoull(digits, NULL, base);
        bool overflow =
            errno == ERANGE || u > (neg ? (unsigned long long)INT64_MAX + 1
                                        : (unsigned long long)INT64_MAX);
        if (!overflow) {
            out->kind = PYOCO_YAML_INT;
            out->i = neg ? (int64_t)(0 - u) : (int64_t)u;
            out->d = (double)out->i;
            return;
        }
        if (base != 10)
            return; /* a huge hex literal stays a string */
        /* A huge decimal integer is still a number: keep it as a float. */
    }
    if (is_float_syntax(text, end)) {
        out->kind = PYOCO_YAML_FLOAT;
        out->d = strtod(text, NULL);
    }
}

const char *pyoco_yaml_text(const yaml_node_t *node, size_t *len) {
    if (!node || node->type != YAML_SCALAR_NODE)
        return NULL;
    if (len)
        *len = node->data.scalar.length;
    return (const char *)node->data.scalar.value;
}

static bool is_plain(const yaml_node_t *node) {
    return node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
           node->data.scalar.style == YAML_ANY_SCALAR_STYLE;
}

bool pyoco_yaml_is_null(const yaml_node_t *node) {
    size_t len = 0;
    const char *t = pyoco_yaml_text(node, &len);
    if (!t)
        return false;
    pyoco_yaml_scalar sc;
    pyoco_yaml_classify(t, len, is_plain(node), &sc);
    return sc.kind == PYOCO_YAML_NULL;
}

static size_t node_line(const yaml_node_t *node) {
    return node ? node->start_mark.line + 1 : 0;
}

/* "\"text\"" (escaped, cut when long) or "a list" / "a mapping". */
static void describe(const yaml_node_t *node, char *buf, size_t buflen) {
    if (node->type == YAML_SEQUENCE_NODE) {
        snprintf(buf, buflen, "a list");
        return;
    }
    if (node->type == YAML_MAPPING_NODE) {
        snprintf(buf, buflen, "a mapping");
        return;
    }
    size_t len = 0, o = 0;
    const char *t = pyoco_yaml_text(node, &len);
    const size_t max = 60;
    if (buflen < 16) {
        snprintf(buf, buflen, "?");
        return;
    }
    buf[o++] = '"';
    for (size_t k = 0; k < len && o + 8 < buflen; k++) {
        if (k == max) {
            o += (size_t)snprintf(buf + o, buflen - o, "...");
            break;
        }
        unsigned char c = (unsigned char)t[k];
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(buf + o, buflen - o, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, buflen - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    snprintf(buf + o, buflen - o, "\"");
}

const char *pyoco_yaml_type_name(pyoco_config_type type) {
    switch (type) {
    case PYOCO_CONFIG_STRING:
        return "a string";
    case PYOCO_CONFIG_INT:
        return "an integer";
    case PYOCO_CONFIG_DOUBLE:
        return "a number";
    case PYOCO_CONFIG_BOOL:
        return "a boolean";
    case PYOCO_CONFIG_LIST:
        return "a list";
    case PYOCO_CONFIG_MAP:
        return "a mapping";
    }
    return "a known type";
}

/* ---- structural checks ----------------------------------------------------
 */

typedef struct walk {
    yaml_document_t *doc;
    unsigned char *seen; /* per node index: checked already (aliases) */
    size_t *line;
    char *msg;
    size_t msglen;
} walk;

static void path_key(char *dst, size_t dstlen, const char *path,
                     const char *key) {
    snprintf(dst, dstlen, "%s%s%s", path, *path ? "." : "", key);
}

static int check_node(walk *w, yaml_node_t *node, const char *path, int depth) {
    size_t idx = (size_t)(node - w->doc->nodes.start);
    if (w->seen[idx])
        return 0;
    w->seen[idx] = 1;
    if (depth > PYOCO_YAML_MAX_DEPTH) {
        *w->line = node_line(node);
        snprintf(w->msg, w->msglen, "%s%snested deeper than %d levels", path,
                 *path ? ": " : "", PYOCO_YAML_MAX_DEPTH);
        return -EINVAL;
    }
    char sub[256];
    if (node->type == YAML_SEQUENCE_NODE) {
        size_t k = 0;
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++, k++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, k);
            int rc = check_node(w, yaml_document_get_node(w->doc, *it), sub,
                                depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (node->type != YAML_MAPPING_NODE)
        return 0;
    json_t *keys = json_object();
    if (!keys)
        return -ENOMEM;
    int rc = 0;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         p < node->data.mapping.pairs.top && !rc; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        size_t len = 0;
        const char *t = pyoco_yaml_text(k, &len);
        if (!t) {
            *w->line = node_line(k);
            snprintf(w->msg, w->msglen, "%s%smapping keys must be scalars",
                     path, *path ? ": " : "");
            rc = -EINVAL;
            break;
        }
        path_key(sub, sizeof sub, path, t);
        if (json_object_getn(keys, t, len)) {
            *w->line = node_line(k);
            snprintf(w->msg, w->msglen, "%s: duplicate key", sub);
            rc = -EINVAL;
            break;
        }
        if (json_object_setn_new(keys, t, len, json_true())) {
            rc = -ENOMEM;
            break;
        }
        rc = check_node(w, v, sub, depth + 1);
    }
    json_decref(keys);
    return rc;
}

/* libyaml's scanner is quadratic in the nesting depth (100k levels take
 * most of a minute), so a first pass over the events refuses excess depth
 * early, naming the dotted path. Syntax errors are left to the loader. */
typedef struct depth_frame {
    bool map, want_key;
    size_t idx;
    char key[64];
} depth_frame;

static void depth_path(const depth_frame *f, size_t n, char *buf,
                       size_t buflen) {
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o + 1 < buflen; i++) {
        int w = f[i].map ? snprintf(buf + o, buflen - o, "%s%s", o ? "." : "",
                                    f[i].key)
                         : snprintf(buf + o, buflen - o, "[%zu]", f[i].idx);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

static int depth_check(const char *text, size_t len, size_t *line, char *msg,
                       size_t msglen) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return 0;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    depth_frame st[PYOCO_YAML_MAX_DEPTH + 1];
    size_t n = 0;
    int rc = 0;
    for (bool done = false; !done && !rc;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev))
            break;
        depth_frame *top = n ? &st[n - 1] : NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
            if (top && top->map && top->want_key &&
                ev.type == YAML_SCALAR_EVENT)
                snprintf(top->key, sizeof top->key, "%.*s",
                         (int)ev.data.scalar.length,
                         (const char *)ev.data.scalar.value);
            if (top && top->map)
                top->want_key = !top->want_key;
            else if (top)
                top->idx++;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (n == PYOCO_YAML_MAX_DEPTH + 1) {
                char path[256];
                depth_path(st, n - 1, path, sizeof path);
                *line = ev.start_mark.line + 1;
                snprintf(msg, msglen, "%s%snested deeper than %d levels", path,
                         *path ? ": " : "", PYOCO_YAML_MAX_DEPTH);
                rc = -EINVAL;
                break;
            }
            st[n++] = (depth_frame){.map = ev.type == YAML_MAPPING_START_EVENT,
                                    .want_key = true};
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (n)
                n--;
            if (n && st[n - 1].map)
                st[n - 1].want_key = !st[n - 1].want_key;
            else if (n)
                st[n - 1].idx++;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

int pyoco_yaml_load(const char *text, size_t len, yaml_document_t *doc,
                    size_t *line, char *msg, size_t msglen) {
    yaml_parser_t parser;
    *line = 0;
    int drc = depth_check(text, len, line, msg, msglen);
    if (drc)
        return drc;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(msg, msglen, "out of memory");
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, doc)) {
        *line = parser.problem_mark.line + 1;
        snprintf(msg, msglen, "YAML syntax error: %s (column %zu)",
                 parser.problem ? parser.problem : "unknown problem",
                 parser.problem_mark.column + 1);
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    /* A second document would be silently ignored: refuse it. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        *line = parser.problem_mark.line + 1;
        snprintf(msg, msglen, "YAML syntax error: %s (column %zu)",
                 parser.problem ? parser.problem : "unknown problem",
                 parser.problem_mark.column + 1);
        yaml_parser_delete(&parser);
        yaml_document_delete(doc);
        return -EINVAL;
    }
    bool more = yaml_document_get_root_node(&extra) != NULL;
    if (more)
        *line = extra.start_mark.line + 1;
    yaml_document_delete(&extra);
    yaml_parser_delete(&parser);
    if (more) {
        snprintf(msg, msglen, "more than one YAML document");
        yaml_document_delete(doc);
        return -EINVAL;
    }
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root)
        return 0;
    size_t n = (size_t)(doc->nodes.top - doc->nodes.start);
    walk w = {doc, calloc(n, 1), line, msg, msglen};
    if (!w.seen) {
        yaml_document_delete(doc);
        snprintf(msg, msglen, "out of memory");
        return -ENOMEM;
    }
    int rc = check_node(&w, root, "", 0);
    free(w.seen);
    if (rc) {
        if (rc == -ENOMEM)
            snprintf(msg, msglen, "out of memory");
        yaml_document_delete(doc);
    }
    return rc;
}

/* ---- conversion -----------------------------------------------------------
 */

typedef struct conv {
    yaml_document_t *doc;
    size_t nodes;
    size_t *line;
    char *msg;
    size_t msglen;
} conv;

static json_t *scalar_json(const yaml_node_t *node) {
    size_t len = 0;
    const char *t = pyoco_yaml_text(node, &len);
    pyoco_yaml_scalar sc;
    pyoco_yaml_classify(t, len, is_plain(node), &sc);
    switch (sc.kind) {
    case PYOCO_YAML_NULL:
        return json_null();
    case PYOCO_YAML_BOOL:
        return json_boolean(sc.b);
    case PYOCO_YAML_INT:
        return json_integer(sc.i);
    case PYOCO_YAML_FLOAT:
        /* JSON has no inf/nan: those keep their YAML text. */
        if (isfinite(sc.d))
            return json_real(sc.d);
        break;
    case PYOCO_YAML_STRING:
        break;
    }
    return json_stringn(t, len);
}

static json_t *to_json(conv *c, yaml_node_t *node, int depth) {
    if (depth > PYOCO_YAML_MAX_DEPTH || ++c->nodes > PYOCO_YAML_MAX_NODES) {
        *c->line = node_line(node);
        snprintf(c->msg, c->msglen, "value too large or nested too deep");
        return NULL;
    }
    if (node->type == YAML_SCALAR_NODE) {
        json_t *j = scalar_json(node);
        if (!j) {
            *c->line = node_line(node);
            snprintf(c->msg, c->msglen, "out of memory");
        }
        return j;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        json_t *arr = json_array();
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             arr && it < node->data.sequence.items.top; it++) {
            json_t *v =
                to_json(c, yaml_document_get_node(c->doc, *it), depth + 1);
            if (!v || json_array_append_new(arr, v)) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    json_t *obj = json_object();
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         obj && p < node->data.mapping.pairs.top; p++) {
        size_t len = 0;
        const char *k =
            pyoco_yaml_text(yaml_document_get_node(c->doc, p->key), &len);
        json_t *v =
            to_json(c, yaml_document_get_node(c->doc, p->value), depth + 1);
        if (!k || !v || json_object_setn_new(obj, k, len, v)) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *pyoco_yaml_to_json(yaml_document_t *doc, yaml_node_t *node,
                           size_t *line, char *msg, size_t msglen) {
    conv c = {doc, 0, line, msg, msglen};
    return to_json(&c, node, 0);
}

void pyoco_yaml_value_clear(pyoco_yaml_value *v) {
    free(v->str);
    json_decref(v->json);
    memset(v, 0, sizeof *v);
}

int pyoco_yaml_value_from_node(yaml_document_t *doc, yaml_node_t *node,
                               pyoco_config_type type, pyoco_yaml_value *out,
                               size_t *line, char *msg, size_t msglen) {
    memset(out, 0, sizeof *out);
    *line = node_line(node);
    if (pyoco_yaml_is_null(node))
        return 0; /* `key:` or `key: ~` means "not set here" */
    size_t len = 0;
    const char *t = pyoco_yaml_text(node, &len);
    pyoco_yaml_scalar sc = {.kind = PYOCO_YAML_STRING};
    if (t)
        pyoco_yaml_classify(t, len, is_plain(node), &sc);
    bool ok = false;
    switch (type) {
    case PYOCO_CONFIG_STRING:
        if ((ok = t != NULL)) {
            out->str = malloc(len + 1);
            out->json = json_stringn(t, len);
            if (!out->str || !out->json)
                goto nomem;
            memcpy(out->str, t, len);
            out->str[len] = '\0';
        }
        break;
    case PYOCO_CONFIG_INT:
        if ((ok = t && sc.kind == PYOCO_YAML_INT)) {
            out->i = sc.i;
            out->d = sc.d;
            out->json = json_integer(sc.i);
        }
        break;
    case PYOCO_CONFIG_DOUBLE:
        if ((ok = t &&
                  (sc.kind == PYOCO_YAML_INT || sc.kind == PYOCO_YAML_FLOAT))) {
            out->d = sc.d;
            out->json = isfinite(sc.d) ? json_real(sc.d) : json_stringn(t, len);
        }
        break;
    case PYOCO_CONFIG_BOOL:
        if ((ok = t && sc.kind == PYOCO_YAML_BOOL)) {
            out->b = sc.b;
            out->json = json_boolean(sc.b);
        }
        break;
    case PYOCO_CONFIG_LIST:
    case PYOCO_CONFIG_MAP:
        ok = node->type == (type == PYOCO_CONFIG_LIST ? YAML_SEQUENCE_NODE
                                                      : YAML_MAPPING_NODE);
        if (ok) {
            out->json = pyoco_yaml_to_json(doc, node, line, msg, msglen);
            if (!out->json)
                return -EINVAL;
        }
        break;
    }
    if (!ok) {
        char got[96];
        describe(node, got, sizeof got);
        snprintf(msg, msglen, "expected %s, got %s", pyoco_yaml_type_name(type),
                 got);
        return -EINVAL;
    }
    if (!out->json)
        goto nomem;
    out->set = true;
    return 0;
nomem:
    pyoco_yaml_value_clear(out);
    snprintf(msg, msglen, "out of memory");
    return -ENOMEM;
}

int pyoco_yaml_value_from_text(const char *text, pyoco_config_type type,
                               bool verbatim, pyoco_yaml_value *out, char *msg,
                               size_t msglen) {
    memset(out, 0, sizeof *out);
    if (verbatim && type != PYOCO_CONFIG_LIST && type != PYOCO_CONFIG_MAP) {
        /* Environment values are single scalars: typed like a plain scalar,
         * never parsed as YAML (a path with ": " must stay a path). */
        yaml_node_t fake;
        memset(&fake, 0, sizeof fake);
        fake.type = YAML_SCALAR_NODE;
        fake.data.scalar.value = (yaml_char_t *)(uintptr_t)text;
        fake.data.scalar.length = strlen(text);
        fake.data.scalar.style = type == PYOCO_CONFIG_STRING
                                     ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                     : YAML_PLAIN_SCALAR_STYLE;
        size_t line;
        return pyoco_yaml_value_from_node(NULL, &fake, type, out, &line, msg,
                                          msglen);
    }
    yaml_document_t doc;
    size_t line;
    int rc = pyoco_yaml_load(text, strlen(text), &doc, &line, msg, msglen);
    if (rc)
        return rc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root)
        rc = pyoco_yaml_value_from_node(&doc, root, type, out, &line, msg,
                                        msglen);
    else if (type == PYOCO_CONFIG_STRING && !*text) {
        /* An empty default for a string is the empty string, not unset. */
        out->str = strdup("");
        out->json = json_string("");
        out->set = out->str && out->json;
        if (!out->set) {
            pyoco_yaml_value_clear(out);
            rc = -ENOMEM;
        }
    }
    yaml_document_delete(&doc);
    return rc;
}
