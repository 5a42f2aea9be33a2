/* core/client_format.c - what `pyoco runs` prints: the shape checks that
 * keep a wrong answer from being printed as nonsense (or crashing us), the
 * runs table, one run's details and log lines. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"

enum { T_STR = 1, T_NUM = 2, T_NULL = 4, T_OBJ = 8, T_ARR = 16 };

static bool has_type(const json_t *v, unsigned mask) {
    return ((mask & T_STR) && json_is_string(v)) ||
           ((mask & T_NUM) && json_is_number(v)) ||
           ((mask & T_NULL) && json_is_null(v)) ||
           ((mask & T_OBJ) && json_is_object(v)) ||
           ((mask & T_ARR) && json_is_array(v));
}

static const char *type_words(unsigned mask) {
    if (mask & T_OBJ)
        return "an object";
    if (mask & T_ARR)
        return "an array";
    if (mask & T_NUM)
        return "a number";
    return "a string";
}

/* A field of o (where names o in the message) that must have one of the
 * types in mask when present, and be present when required. */
static int field(const json_t *o, const char *where, const char *key,
                 unsigned mask, bool required, char *err, size_t n) {
    const json_t *v = json_object_get(o, key);
    if (!v && !required)
        return 0;
    if (v && has_type(v, mask))
        return 0;
    snprintf(err, n, "%s%s%.80s is %s, expected %s%s", where, *where ? "." : "",
             key, v ? "of the wrong type" : "missing", type_words(mask),
             mask & T_NULL ? " or null" : "");
    return -EPROTO;
}

/* Every value of the object o[key] (when present) must be of mask type;
 * objects' own fields are checked by fields(). */
static int members(const json_t *o, const char *key, unsigned mask,
                   int (*fields)(const json_t *, const char *, char *, size_t),
                   char *err, size_t n) {
    const json_t *m = json_object_get(o, key);
    if (!json_is_object(m))
        return 0;
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)m, name, v) {
        char where[200];
        snprintf(where, sizeof where, "%s.%.80s", key, name);
        if (!has_type(v, mask)) {
            snprintf(err, n, "%s is of the wrong type, expected %s", where,
                     type_words(mask));
            return -EPROTO;
        }
        if (fields && fields(v, where, err, n))
            return -EPROTO;
    }
    return 0;
}

static int record_fields(const json_t *r, const char *where, char *err,
                         size_t n) {
    if (field(r, where, "state", T_STR | T_NULL, false, err, n) ||
        field(r, where, "duration_ms", T_NUM | T_NULL, false, err, n) ||
        field(r, where, "error", T_STR | T_NULL, false, err, n))
        return -EPROTO;
    return 0;
}

int pyoco_client_check_run(const json_t *run, char *err, size_t n) {
    if (!json_is_object(run)) {
        snprintf(err, n, "a run is not a JSON object");
        return -EPROTO;
    }
    static const struct {
        const char *key;
        unsigned mask;
        bool required;
    } k_fields[] = {
        {"run_id", T_STR, true},
        {"status", T_STR, true},
        {"flow_name", T_STR | T_NULL, false},
        {"start_time", T_NUM | T_NULL, false},
        {"end_time", T_NUM | T_NULL, false},
        {"run_duration_ms", T_NUM | T_NULL, false},
        {"tasks", T_OBJ | T_NULL, false},
        {"task_records", T_OBJ | T_NULL, false},
        {"task_summary", T_OBJ | T_NULL, false},
        {"metadata", T_OBJ | T_NULL, false},
        {"logs", T_ARR | T_NULL, false},
    };
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0]; i++)
        if (field(run, "", k_fields[i].key, k_fields[i].mask,
                  k_fields[i].required, err, n))
            return -EPROTO;
    if (members(run, "tasks", T_STR, NULL, err, n) ||
        members(run, "task_records", T_OBJ, record_fields, err, n) ||
        members(run, "task_summary", T_OBJ, record_fields, err, n))
        return -EPROTO;
    return 0;
}

int pyoco_client_check_log(const json_t *entry, char *err, size_t n) {
    if (!json_is_object(entry)) {
        snprintf(err, n, "a log entry is not a JSON object");
        return -EPROTO;
    }
    if (field(entry, "log entry", "task", T_STR | T_NULL, false, err, n) ||
        field(entry, "log entry", "stream", T_STR | T_NULL, false, err, n) ||
        field(entry, "log entry", "text", T_STR | T_NULL, false, err, n))
        return -EPROTO;
    return 0;
}

void pyoco_client_fmt_time(const json_t *t, char *buf, size_t n) {
    if (!json_is_number(t)) {
        snprintf(buf, n, "-");
        return;
    }
    double v = json_number_value(t);
    struct tm tm;
    /* Outside years 1970..9999 the conversion to time_t is not safe; show
     * the number the server sent. */
    if (!isfinite(v) || v < 0 || v > 253402300799.0) {
        snprintf(buf, n, "%g", v);
        return;
    }
    time_t s = (time_t)v;
    if (!gmtime_r(&s, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, n, "%.3f", v);
}

void pyoco_client_fmt_duration(double ms, char *buf, size_t n) {
    if (isnan(ms))
        snprintf(buf, n, "-");
    else if (!isfinite(ms) || ms < 0 || ms >= 1e15)
        snprintf(buf, n, "%gms", ms);
    else if (ms < 1000)
        snprintf(buf, n, "%.0fms", ms);
    else if (ms < 60000)
        snprintf(buf, n, "%.1fs", ms / 1000);
    else if (ms < 3600000) {
        long long s = (long long)(ms / 1000);
        snprintf(buf, n, "%lldm%02llds", s / 60, s % 60);
    } else {
        long long m = (long long)(ms / 60000);
        snprintf(buf, n, "%lldh%02lldm", m / 60, m % 60);
    }
}

double pyoco_client_run_duration(const json_t *run) {
    const json_t *d = json_object_get(run, "run_duration_ms");
    if (json_is_number(d))
        return json_number_value(d);
    const json_t *s = json_object_get(run, "start_time");
    const json_t *e = json_object_get(run, "end_time");
    if (json_is_number(s) && json_is_number(e))
        return (json_number_value(e) - json_number_value(s)) * 1000.0;
    return NAN;
}

/* A printable copy of s: control characters become '?', and past max
 * characters it is cut with "...". UTF-8 sequences are kept whole. */
static char *clean(const char *s, size_t max) {
    if (!s)
        s = "-";
    size_t len = strlen(s), chars = 0, i = 0;
    char *out = malloc(len + 4);
    if (!out)
        return NULL;
    size_t o = 0;
    for (; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch & 0xc0) != 0x80 && chars++ == max)
            break;
        out[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* Display width: UTF-8 code points (good enough for a table). */
static size_t width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void pad(FILE *f, const char *s, size_t w) {
    fputs(s, f);
    for (size_t i = width(s); i < w; i++)
        fputc(' ', f);
}

enum { COLS = 5 };

void pyoco_client_print_runs(FILE *f, const json_t *runs) {
    size_t rows = json_array_size(runs);
    if (!rows) {
        fprintf(f, "no runs\n");
        return;
    }
    static const char *const head[COLS] = {"RUN ID", "FLOW", "STATUS",
                                           "STARTED", "DURATION"};
    char **cell = calloc((rows + 1) * COLS, sizeof *cell);
    if (!cell) {
        fprintf(stderr, "pyoco: out of memory\n");
        return;
    }
    size_t w[COLS];
    for (int c = 0; c < COLS; c++) {
        cell[c] = strdup(head[c]);
        w[c] = strlen(head[c]);
    }
    for (size_t r = 0; r < rows; r++) {
        const json_t *run = json_array_get(runs, r);
        char when[64], dur[64];
        pyoco_client_fmt_time(json_object_get(run, "start_time"), when,
                              sizeof when);
        pyoco_client_fmt_duration(pyoco_client_run_duration(run), dur,
                                  sizeof dur);
        char **row = cell + (r + 1) * COLS;
        row[0] = clean(json_string_value(json_object_get(run, "run_id")), 64);
        row[1] =
            clean(json_string_value(json_object_get(run, "flow_name")), 40);
        row[2] = clean(json_string_value(json_object_get(run, "status")), 20);
        row[3] = strdup(when);
        row[4] = strdup(dur);
        for (int c = 0; c < COLS; c++)
            if (row[c] && width(row[c]) > w[c])
                w[c] = width(row[c]);
    }
    for (size_t r = 0; r <= rows; r++) {
        for (int c = 0; c < COLS; c++) {
            const char *s = cell[r * COLS + c] ? cell[r * COLS + c] : "?";
            if (c == COLS - 1) {
                fputs(s, f);
            } else {
                pad(f, s, w[c]);
                fputs("  ", f);
            }
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < (rows + 1) * COLS; i++)
        free(cell[i]);
    free(cell);
}

/* A JSON value on one line, cut at max characters. */
static void put_json(FILE *f, const json_t *v, size_t max) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *c = clean(s ? s : "?", max);
    fputs(c ? c : "?", f);
    free(c);
    free(s);
}

static void put_str(FILE *f, const char *s, size_t max) {
    char *c = clean(s, max);
    fputs(c ? c : "?", f);
    free(c);
}

/* The first line of a (possibly multi-line) message. */
static void put_first_line(FILE *f, const char *s) {
    const char *nl = strchr(s, '\n');
    char *line = nl ? strndup(s, (size_t)(nl - s)) : strdup(s);
    put_str(f, line ? line : "?", 300);
    free(line);
}

static void print_task(FILE *f, const json_t *run, const char *name,
                       size_t name_w) {
    const json_t *rec =
        json_object_get(json_object_get(run, "task_records"), name);
    const json_t *sum =
        json_object_get(json_object_get(run, "task_summary"), name);
    const char *state = json_string_value(json_object_get(rec, "state"));
    if (!state)
        state = json_string_value(
            json_object_get(json_object_get(run, "tasks"), name));
    if (!state)
        state = json_string_value(json_object_get(sum, "state"));
    const json_t *d = json_object_get(rec, "duration_ms");
    if (!json_is_number(d))
        d = json_object_get(sum, "duration_ms");
    char dur[64];
    pyoco_client_fmt_duration(json_is_number(d) ? json_number_value(d) : NAN,
                              dur, sizeof dur);
    char *cn = clean(name, 60), *cs = clean(state, 20);
    fputs("  ", f);
    pad(f, cn ? cn : "?", name_w);
    fputs("  ", f);
    pad(f, cs ? cs : "?", 9);
    fprintf(f, "  %s\n", dur);
    free(cn);
    free(cs);
    const char *error = json_string_value(json_object_get(rec, "error"));
    if (error) {
        fputs("      error: ", f);
        put_first_line(f, error);
        fputc('\n', f);
    }
}

void pyoco_client_print_run(FILE *f, const json_t *run) {
    char buf[64];
    fputs("Run:       ", f);
    put_str(f, json_string_value(json_object_get(run, "run_id")), 200);
    fputs("\nFlow:      ", f);
    put_str(f, json_string_value(json_object_get(run, "flow_name")), 200);
    fputs("\nStatus:    ", f);
    put_str(f, json_string_value(json_object_get(run, "status")), 60);
    pyoco_client_fmt_time(json_object_get(run, "start_time"), buf, sizeof buf);
    fprintf(f, "\nStarted:   %s\n", buf);
    pyoco_client_fmt_time(json_object_get(run, "end_time"), buf, sizeof buf);
    fprintf(f, "Ended:     %s\n", buf);
    pyoco_client_fmt_duration(pyoco_client_run_duration(run), buf, sizeof buf);
    fprintf(f, "Duration:  %s\n", buf);
    const json_t *params = json_object_get(run, "params");
    if (params) {
        fputs("Params:    ", f);
        put_json(f, params, 500);
        fputc('\n', f);
    }

    /* Tasks: those in "tasks" in the server's order, then any that only
     * have a record. */
    const json_t *tasks = json_object_get(run, "tasks");
    const json_t *recs = json_object_get(run, "task_records");
    size_t count = 0, name_w = 4;
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)tasks, name, v) {
        count++;
        if (width(name) > name_w)
            name_w = width(name);
    }
    json_object_foreach((json_t *)recs, name, v) {
        if (!json_object_get(tasks, name)) {
            count++;
            if (width(name) > name_w)
                name_w = width(name);
        }
    }
    if (name_w > 60)
        name_w = 60;
    fprintf(f, "Tasks:     %zu\n", count);
    if (count) {
        fputs("  ", f);
        pad(f, "TASK", name_w);
        fputs("  STATE      DURATION\n", f);
    }
    json_object_foreach((json_t *)tasks, name, v) {
        print_task(f, run, name, name_w);
    }
    json_object_foreach((json_t *)recs, name, v) {
        if (!json_object_get(tasks, name))
            print_task(f, run, name, name_w);
    }

    const json_t *md = json_object_get(run, "metadata");
    fputs(json_object_size(md) ? "Metadata:\n" : "Metadata:  -\n", f);
    json_object_foreach((json_t *)md, name, v) {
        fputs("  ", f);
        put_str(f, name, 60);
        fputs(": ", f);
        if (json_is_string(v))
            put_str(f, json_string_value(v), 300);
        else
            put_json(f, v, 300);
        fputc('\n', f);
    }
    const json_t *logs = json_object_get(run, "logs");
    if (logs)
        fprintf(f, "Logs:      %zu entries\n", json_array_size(logs));
}

void pyoco_client_print_log(FILE *f, const json_t *entry) {
    const char *task = json_string_value(json_object_get(entry, "task"));
    const char *stream = json_string_value(json_object_get(entry, "stream"));
    const json_t *text = json_object_get(entry, "text");
    const char *t = json_is_string(text) ? json_string_value(text) : "";
    size_t len = json_is_string(text) ? json_string_length(text) : 0;
    if (len && t[len - 1] == '\n') /* the line end is ours to add */
        len--;
    fputc('[', f);
    put_str(f, task ? task : "unknown", 200);
    fputs("] ", f);
    put_str(f, stream ? stream : "stdout", 20);
    fputs(": ", f);
    fwrite(t, 1, len, f);
    fputc('\n', f);
}
