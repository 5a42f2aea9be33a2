/* plugins/rest/validate.c - wire validation (see validate.h).
 *
 * Wording and `type` follow pydantic v1 (what FastAPI answered for the
 * reference server); msg also starts with the field path because the
 * contract asks every message to name its field. */
#include "validate.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 6

static const char *const run_statuses[] = {"PENDING", "RUNNING",    "COMPLETED",
                                           "FAILED",  "CANCELLING", "CANCELLED",
                                           NULL};
static const char *const task_states[] = {"PENDING", "RUNNING",   "SUCCEEDED",
                                          "FAILED",  "CANCELLED", NULL};

#define RUN_STATUS_MSG                                                         \
    "value is not a valid enumeration member; permitted: 'PENDING', "          \
    "'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLING', 'CANCELLED'"
#define TASK_STATE_MSG                                                         \
    "value is not a valid enumeration member; permitted: 'PENDING', "          \
    "'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'"

static int in_list(const char *s, const char *const *list) {
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

int pyoco_rest_is_run_status(const char *s) {
    return s && in_list(s, run_statuses);
}

int pyoco_rest_is_task_state(const char *s) {
    return s && in_list(s, task_states);
}

/* The location being checked: "body" then keys (or list indexes). */
typedef struct verr {
    json_t *detail; /* NULL until the first error */
    size_t count;
    int depth;
    const char *key[MAX_DEPTH]; /* NULL: use idx */
    size_t idx[MAX_DEPTH];
} verr;

static void push_key(verr *v, const char *key) {
    v->key[v->depth] = key;
    v->idx[v->depth] = 0;
    v->depth++;
}

static void push_idx(verr *v, size_t idx) {
    v->key[v->depth] = NULL;
    v->idx[v->depth] = idx;
    v->depth++;
}

static void pop(verr *v) {
    v->depth--;
}

/* Cut an incomplete UTF-8 sequence left at the end of s by truncation
 * (json_string refuses invalid UTF-8). */
static void utf8_trim(char *s) {
    size_t len = strlen(s), i = len;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (i - 1 + need > len)
        s[i - 1] = '\0';
}

static void add(verr *v, const char *msg, const char *type) {
    if (v->count++ >= PYOCO_REST_MAX_ERRORS)
        return;
    if (!v->detail)
        v->detail = json_array();
    json_t *loc = json_array();
    char path[256];
    size_t used = 0;
    int cut = 0;
    path[0] = '\0';
    json_array_append_new(loc, json_string("body"));
    for (int i = 0; i < v->depth; i++) {
        int n = 0;
        if (v->key[i]) {
            json_array_append_new(loc, json_string(v->key[i]));
            if (!cut)
                n = snprintf(path + used, sizeof path - used, "%s%s",
                             i ? "." : "", v->key[i]);
        } else {
            json_array_append_new(loc, json_integer((json_int_t)v->idx[i]));
            if (!cut)
                n = snprintf(path + used, sizeof path - used, "[%zu]",
                             v->idx[i]);
        }
        if (n < 0 || (size_t)n >= sizeof path - used) {
            /* A long key: the path in msg is cut, loc stays whole. */
            cut = 1;
            utf8_trim(path);
            used = strlen(path);
        } else {
            used += (size_t)n;
        }
    }
    char full[512];
    snprintf(full, sizeof full, "%s: %s", v->depth ? path : "body", msg);
    utf8_trim(full);
    json_t *e = json_object();
    json_object_set_new(e, "loc", loc);
    json_object_set_new(e, "msg", json_string(full));
    json_object_set_new(e, "type", json_string(type));
    json_array_append_new(v->detail, e);
}

/* Field helpers. Each returns the value when it is present and of the
 * expected JSON kind, NULL otherwise (having recorded why when needed). */

static const json_t *field(verr *v, const json_t *obj, const char *key,
                           int required) {
    const json_t *x = json_object_get(obj, key);
    if (!x) {
        if (required) {
            push_key(v, key);
            add(v, "field required", "value_error.missing");
            pop(v);
        }
        return NULL;
    }
    if (json_is_null(x)) {
        push_key(v, key);
        add(v, "none is not an allowed value", "type_error.none.not_allowed");
        pop(v);
        return NULL;
    }
    return x;
}

static void check_enum(verr *v, const json_t *x, int run_status) {
    const char *s = json_string_value(x);
    if (run_status ? !pyoco_rest_is_run_status(s)
                   : !pyoco_rest_is_task_state(s))
        add(v, run_status ? RUN_STATUS_MSG : TASK_STATE_MSG, "type_error.enum");
}

static void check_str_list(verr *v, const json_t *obj, const char *key) {
    const json_t *x = field(v, obj, key, 0);
    if (!x)
        return;
    push_key(v, key);
    if (!json_is_array(x)) {
        add(v, "value is not a valid list", "type_error.list");
    } else {
        size_t i;
        const json_t *e;
        json_array_foreach(x, i, e) {
            if (!json_is_string(e)) {
                push_idx(v, i);
                add(v, "str type expected", "type_error.str");
                pop(v);
            }
        }
    }
    pop(v);
}

static const json_t *check_object(verr *v, const json_t *obj, const char *key,
                                  int required) {
    const json_t *x = field(v, obj, key, required);
    if (x && !json_is_object(x)) {
        push_key(v, key);
        add(v, "value is not a valid dict", "type_error.dict");
        pop(v);
        return NULL;
    }
    return x;
}

static void check_string(verr *v, const json_t *obj, const char *key,
                         int required, int nonempty) {
    const json_t *x = field(v, obj, key, required);
    if (!x)
        return;
    push_key(v, key);
    if (!json_is_string(x))
        add(v, "str type expected", "type_error.str");
    else if (nonempty && json_string_length(x) == 0)
        add(v, "ensure this value has at least 1 characters",
            "value_error.any_str.min_length");
    pop(v);
}

/* Optional field that may also be null. kind: 's' string, 'f' number,
 * 't' task state, 'i' integer. */
static void check_nullable(verr *v, const json_t *obj, const char *key,
                           char kind) {
    const json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x))
        return;
    push_key(v, key);
    switch (kind) {
    case 's':
        if (!json_is_string(x))
            add(v, "str type expected", "type_error.str");
        break;
    case 'f':
        if (!json_is_number(x))
            add(v, "value is not a valid float", "type_error.float");
        break;
    case 'i':
        if (!json_is_integer(x))
            add(v, "value is not a valid integer", "type_error.integer");
        break;
    case 't':
        check_enum(v, x, 0);
        break;
    }
    pop(v);
}

static json_t *finish(verr *v) {
    return v->detail;
}

static int body_is_object(verr *v, const json_t *body) {
    if (json_is_object(body))
        return 1;
    add(v, "value is not a valid dict", "type_error.dict");
    return 0;
}

json_t *pyoco_rest_validate_submit(const json_t *body) {
    verr v = {0};
    if (body_is_object(&v, body)) {
        check_string(&v, body, "flow_name", 1, 1);
        check_object(&v, body, "params", 0);
        check_str_list(&v, body, "tags");
    }
    return finish(&v);
}

json_t *pyoco_rest_validate_poll(const json_t *body) {
    verr v = {0};
    if (body_is_object(&v, body)) {
        check_string(&v, body, "worker_id", 1, 0);
        check_str_list(&v, body, "tags");
    }
    return finish(&v);
}

static void check_task_states(verr *v, const json_t *body) {
    const json_t *ts = check_object(v, body, "task_states", 1);
    if (!ts)
        return;
    push_key(v, "task_states");
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)ts, k, x) {
        push_key(v, k);
        check_enum(v, x, 0);
        pop(v);
    }
    pop(v);
}

static void check_records(verr *v, const json_t *body) {
    const json_t *recs = check_object(v, body, "task_records", 0);
    if (!recs)
        return;
    push_key(v, "task_records");
    const char *k;
    const json_t *rec;
    json_object_foreach((json_t *)recs, k, rec) {
        push_key(v, k);
        if (!json_is_object(rec)) {
            add(v, "value is not a valid dict", "type_error.dict");
        } else {
            /* inputs, output, artifacts: any JSON, stored as given. */
            check_nullable(v, rec, "state", 't');
            check_nullable(v, rec, "started_at", 'f');
            check_nullable(v, rec, "ended_at", 'f');
            check_nullable(v, rec, "duration_ms", 'f');
            check_nullable(v, rec, "error", 's');
            check_nullable(v, rec, "traceback", 's');
        }
        pop(v);
    }
    pop(v);
}

static void check_logs(verr *v, const json_t *body) {
    const json_t *logs = field(v, body, "logs", 0);
    if (!logs)
        return;
    push_key(v, "logs");
    if (!json_is_array(logs)) {
        add(v, "value is not a valid list", "type_error.list");
        pop(v);
        return;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(logs, i, e) {
        push_idx(v, i);
        if (!json_is_object(e)) {
            add(v, "value is not a valid dict", "type_error.dict");
        } else {
            const json_t *seq = field(v, e, "seq", 1);
            if (seq && !json_is_integer(seq)) {
                push_key(v, "seq");
                add(v, "value is not a valid integer", "type_error.integer");
                pop(v);
            }
            check_nullable(v, e, "task", 's');
            check_string(v, e, "stream", 1, 0);
            check_string(v, e, "text", 1, 0);
            const json_t *ts = field(v, e, "timestamp", 0);
            if (ts && !json_is_number(ts)) {
                push_key(v, "timestamp");
                add(v, "value is not a valid float", "type_error.float");
                pop(v);
            }
        }
        pop(v);
    }
    pop(v);
}

json_t *pyoco_rest_validate_heartbeat(const json_t *body) {
    verr v = {0};
    if (body_is_object(&v, body)) {
        check_task_states(&v, body);
        check_records(&v, body);
        check_logs(&v, body);
        const json_t *rs = field(&v, body, "run_status", 1);
        if (rs) {
            push_key(&v, "run_status");
            check_enum(&v, rs, 1);
            pop(&v);
        }
    }
    return finish(&v);
}

static json_t *one_error(json_t *loc, const char *msg, const char *type) {
    return json_pack("[{s:o,s:s,s:s}]", "loc", loc, "msg", msg, "type", type);
}

/* Deepest nesting of arrays/objects in JSON text, strings skipped; stops
 * counting past max. One pass before parsing, so deep input costs nothing
 * more, and nothing comes back from /workers/poll or GET that Pyoco's
 * Python clients (recursion limit ~1000) could not decode. */
static int text_depth_over(const char *p, size_t len, int max) {
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

json_t *pyoco_rest_parse_object(const char *buf, size_t len, json_t **detail) {
    json_error_t err;
    char msg[256];
    if (buf && text_depth_over(buf, len, PYOCO_REST_MAX_DEPTH)) {
        snprintf(msg, sizeof msg, "body: nested deeper than %d levels",
                 PYOCO_REST_MAX_DEPTH);
        *detail =
            one_error(json_pack("[s]", "body"), msg, "value_error.jsondecode");
        return NULL;
    }
    json_t *body =
        json_loadb(buf ? buf : "", buf ? len : 0, JSON_REJECT_DUPLICATES, &err);
    if (!body) {
        snprintf(msg, sizeof msg, "body: invalid JSON: %s (line %d, column %d)",
                 err.text, err.line, err.column);
    } else if (!json_is_object(body)) {
        json_decref(body);
        body = NULL;
        snprintf(msg, sizeof msg, "body: expected a JSON object");
    } else {
        return body;
    }
    *detail =
        one_error(json_pack("[s]", "body"), msg, "value_error.jsondecode");
    return NULL;
}

int pyoco_rest_parse_query_int(const char *name, const char *text, long lo,
                               long hi, long *out, json_t **detail) {
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    const char *digits = p;
    long val = 0;
    int overflow = 0;
    while (isdigit((unsigned char)*p)) {
        int d = *p - '0';
        if (val > (LONG_MAX - d) / 10)
            overflow = 1;
        else
            val = val * 10 + d;
        p++;
    }
    int ndigits = (int)(p - digits);
    while (isspace((unsigned char)*p))
        p++;
    char msg[160];
    const char *type = NULL;
    if (ndigits == 0 || *p != '\0') {
        snprintf(msg, sizeof msg, "%s: value is not a valid integer", name);
        type = "type_error.integer";
    } else if (neg ? (overflow || -val < lo) : (!overflow && val < lo)) {
        snprintf(msg, sizeof msg,
                 "%s: ensure this value is greater than or equal to %ld", name,
                 lo);
        type = "value_error.number.not_ge";
    } else if (!neg && (overflow || val > hi)) {
        snprintf(msg, sizeof msg,
                 "%s: ensure this value is less than or equal to %ld", name,
                 hi);
        type = "value_error.number.not_le";
    }
    if (type) {
        *detail = one_error(json_pack("[s,s]", "query", name), msg, type);
        return -EINVAL;
    }
    *out = neg ? -val : val;
    return 0;
}
