/* core/client.c - `pyoco runs list|show|cancel|logs`: the command line
 * (flags as in Pyoco's Python CLI) and the four commands. Requests and
 * their failures are client_http.c's; shapes and printing client_format.c's.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "client.h"

#define DEFAULT_SERVER "http://127.0.0.1:8000"
#define DEFAULT_TIMEOUT_S 30.0
#define FOLLOW_INTERVAL_MS 1000L

enum {
    F_SERVER = 1 << 0,
    F_JSON = 1 << 1,
    F_TIMEOUT = 1 << 2,
    F_STATUS = 1 << 3,
    F_FLOW = 1 << 4,
    F_LIMIT = 1 << 5,
    F_TASK = 1 << 6,
    F_TAIL = 1 << 7,
    F_FOLLOW = 1 << 8,
    F_COMMON = F_SERVER | F_JSON | F_TIMEOUT,
};

static const struct flag {
    const char *name;
    unsigned bit;
    bool has_value;
} k_flags[] = {
    {"--server", F_SERVER, true},   {"--json", F_JSON, false},
    {"--timeout", F_TIMEOUT, true}, {"--status", F_STATUS, true},
    {"--flow", F_FLOW, true},       {"--limit", F_LIMIT, true},
    {"--task", F_TASK, true},       {"--tail", F_TAIL, true},
    {"--follow", F_FOLLOW, false},
};

typedef struct opts {
    const char *server;
    double timeout;
    bool json, follow;
    const char *status, *flow, *task;
    long limit, tail; /* -1: not given */
    const char *run_id;
} opts;

typedef int (*command_fn)(pyoco_client_conn *c, const opts *o);

static const char *const k_statuses[] = {"PENDING", "RUNNING",    "COMPLETED",
                                         "FAILED",  "CANCELLING", "CANCELLED"};

static void usage(FILE *f) {
    fputs("usage:\n"
          "  pyoco runs list   [--status S] [--flow F] [--limit N] [options]\n"
          "  pyoco runs show   RUN_ID [options]\n"
          "  pyoco runs cancel RUN_ID [options]\n"
          "  pyoco runs logs   RUN_ID [--task T] [--tail N] [--follow] "
          "[options]\n"
          "options:\n"
          "  --server URL       the Kanban server (default $PYOCO_SERVER or\n"
          "                     " DEFAULT_SERVER ")\n"
          "  --json             machine output (the server's JSON)\n"
          "  --timeout SECONDS  per request (default 30; connecting at most "
          "5)\n"
          "exit status: 0 ok, 1 server error or bad answer, 2 usage error,\n"
          "  3 server unreachable, 4 run not found,\n"
          "  5 logs --follow: the run ended FAILED or CANCELLED\n"
          "See docs/cli.md.\n",
          f);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt,
                                                             ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("pyoco: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    return PYOCO_CLIENT_EXIT_USAGE;
}

static bool parse_long(const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Store one flag's value in o; 0 or EXIT_USAGE (reported). */
static int set_flag(opts *o, unsigned bit, const char *name, const char *v) {
    switch (bit) {
    case F_SERVER:
        if (!*v)
            return usage_error("%s: needs a URL", name);
        o->server = v;
        break;
    case F_TIMEOUT: {
        char *end = NULL;
        double t = strtod(v, &end);
        if (!*v || *end || !isfinite(t) || t <= 0 || t > 1e6)
            return usage_error("%s: expected a number of seconds > 0, got "
                               "'%s'",
                               name, v);
        o->timeout = t;
        break;
    }
    case F_STATUS:
        o->status = NULL;
        for (size_t i = 0; i < sizeof k_statuses / sizeof *k_statuses; i++)
            if (!strcasecmp(v, k_statuses[i]))
                o->status = k_statuses[i];
        if (!o->status)
            return usage_error("%s: expected PENDING, RUNNING, COMPLETED, "
                               "FAILED, CANCELLING or CANCELLED, got '%s'",
                               name, v);
        break;
    case F_FLOW:
    case F_TASK:
        if (!*v)
            return usage_error("%s: needs a name", name);
        *(bit == F_FLOW ? &o->flow : &o->task) = v;
        break;
    case F_LIMIT:
        /* The API's own range (GET /runs answers 422 outside it). */
        if (!parse_long(v, 1, 200, &o->limit))
            return usage_error("%s: expected an integer 1..200, got '%s'", name,
                               v);
        break;
    case F_TAIL:
        if (!parse_long(v, 0, 1000000000L, &o->tail))
            return usage_error("%s: expected an integer >= 0, got '%s'", name,
                               v);
        break;
    }
    return 0;
}

/* argv[0] is the subcommand; flags may come before or after RUN_ID, as
 * --flag VALUE or --flag=VALUE; "--" ends the flags. */
static int parse(int argc, char **argv, unsigned allowed, bool needs_id,
                 opts *o) {
    bool flags_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!flags_done && !strcmp(a, "--")) {
            flags_done = true;
            continue;
        }
        if (!flags_done && a[0] == '-' && a[1] != '\0') {
            const struct flag *fl = NULL;
            size_t nl = 0;
            for (size_t k = 0; k < sizeof k_flags / sizeof *k_flags; k++) {
                nl = strlen(k_flags[k].name);
                if (!strncmp(a, k_flags[k].name, nl) &&
                    (a[nl] == '\0' || a[nl] == '=')) {
                    fl = &k_flags[k];
                    break;
                }
            }
            if (!fl || !(fl->bit & allowed))
                return usage_error("unknown option '%s' for 'runs %s'", a,
                                   argv[0]);
            if (!fl->has_value) {
                if (a[nl] == '=')
                    return usage_error("%s takes no value", fl->name);
                if (fl->bit == F_JSON)
                    o->json = true;
                else
                    o->follow = true;
                continue;
            }
            const char *v;
            if (a[nl] == '=')
                v = a + nl + 1;
            else if (i + 1 < argc)
                v = argv[++i];
            else
                return usage_error("%s needs a value", fl->name);
            int rc = set_flag(o, fl->bit, fl->name, v);
            if (rc)
                return rc;
            continue;
        }
        if (!needs_id || o->run_id)
            return usage_error("unexpected argument '%s' for 'runs %s'", a,
                               argv[0]);
        if (!*a)
            return usage_error("RUN_ID is empty");
        o->run_id = a;
    }
    if (needs_id && !o->run_id)
        return usage_error("'runs %s' needs a RUN_ID", argv[0]);
    return 0;
}

/* ---- building request paths ---- */

typedef struct path_buf {
    char *buf;
    size_t len;
    FILE *f;
    char sep; /* '?' before the first query parameter, then '&' */
} path_buf;

static bool path_begin(path_buf *p) {
    memset(p, 0, sizeof *p);
    p->sep = '?';
    p->f = open_memstream(&p->buf, &p->len);
    return p->f != NULL;
}

static void path_add(path_buf *p, pyoco_client_conn *c, const char *literal,
                     const char *segment) {
    fputs(literal, p->f);
    if (segment) {
        char *e = pyoco_client_escape(c, segment);
        fputs(e ? e : "", p->f);
        free(e);
    }
}

static void path_query(path_buf *p, pyoco_client_conn *c, const char *name,
                       const char *value) {
    if (!value)
        return;
    char *e = pyoco_client_escape(c, value);
    fprintf(p->f, "%c%s=%s", p->sep, name, e ? e : "");
    free(e);
    p->sep = '&';
}

static char *path_end(path_buf *p) {
    if (fclose(p->f))
        return NULL;
    return p->buf;
}

/* ---- output ---- */

/* The server's JSON exactly as it came, on its own line(s). */
static void put_raw(const pyoco_client_reply *r) {
    fwrite(r->body, 1, r->len, stdout);
    if (!r->len || r->body[r->len - 1] != '\n')
        fputc('\n', stdout);
}

static int bad_shape(const pyoco_client_conn *c, const char *path,
                     const char *what, const char *err) {
    fprintf(stderr, "pyoco: bad answer from %s%s: %s%s\n", c->base, path, what,
            err);
    return PYOCO_CLIENT_EXIT_SERVER;
}

/* GET/POST path and decode the JSON answer; 0 or an exit code. */
static int fetch(pyoco_client_conn *c, const char *method, const char *path,
                 const char *run_id, bool want_array, pyoco_client_reply *r,
                 json_t **doc) {
    int rc = pyoco_client_http_call(c, method, path, run_id, r);
    if (rc)
        return rc;
    rc = pyoco_client_reply_json(c, path, r, want_array, doc);
    if (rc)
        pyoco_client_reply_free(r);
    return rc;
}

/* ---- the commands ---- */

static int cmd_list(pyoco_client_conn *c, const opts *o) {
    path_buf p;
    if (!path_begin(&p))
        return PYOCO_CLIENT_EXIT_SERVER;
    path_add(&p, c, "/runs", NULL);
    path_query(&p, c, "status", o->status);
    path_query(&p, c, "flow", o->flow);
    char limit[32];
    snprintf(limit, sizeof limit, "%ld", o->limit);
    path_query(&p, c, "limit", o->limit > 0 ? limit : NULL);
    char *url = path_end(&p);
    if (!url)
        return PYOCO_CLIENT_EXIT_SERVER;
    pyoco_client_reply r;
    json_t *runs = NULL;
    int rc = fetch(c, "GET", url, NULL, true, &r, &runs);
    if (rc) {
        free(url);
        return rc;
    }
    size_t i;
    json_t *run;
    char err[256], where[64];
    json_array_foreach(runs, i, run) {
        if (pyoco_client_check_run(run, err, sizeof err)) {
            snprintf(where, sizeof where, "runs[%zu]: ", i);
            rc = bad_shape(c, url, where, err);
            break;
        }
    }
    if (!rc) {
        if (o->json)
            put_raw(&r);
        else
            pyoco_client_print_runs(stdout, runs);
    }
    json_decref(runs);
    pyoco_client_reply_free(&r);
    free(url);
    return rc;
}

static char *run_path(pyoco_client_conn *c, const char *run_id,
                      const char *suffix) {
    path_buf p;
    if (!path_begin(&p))
        return NULL;
    path_add(&p, c, "/runs/", run_id);
    path_add(&p, c, suffix, NULL);
    return path_end(&p);
}

static int cmd_show(pyoco_client_conn *c, const opts *o) {
    char *url = run_path(c, o->run_id, "");
    if (!url)
        return PYOCO_CLIENT_EXIT_SERVER;
    pyoco_client_reply r;
    json_t *run = NULL;
    int rc = fetch(c, "GET", url, o->run_id, false, &r, &run);
    if (!rc) {
        char err[256];
        if (pyoco_client_check_run(run, err, sizeof err))
            rc = bad_shape(c, url, "", err);
        else if (o->json)
            put_raw(&r);
        else
            pyoco_client_print_run(stdout, run);
        json_decref(run);
        pyoco_client_reply_free(&r);
    }
    free(url);
    return rc;
}

static bool terminal(const char *status) {
    return !strcmp(status, "COMPLETED") || !strcmp(status, "FAILED") ||
           !strcmp(status, "CANCELLED");
}

static int cmd_cancel(pyoco_client_conn *c, const opts *o) {
    char *url = run_path(c, o->run_id, "/cancel");
    if (!url)
        return PYOCO_CLIENT_EXIT_SERVER;
    pyoco_client_reply r;
    json_t *ans = NULL;
    int rc = fetch(c, "POST", url, o->run_id, false, &r, &ans);
    if (rc) {
        free(url);
        return rc;
    }
    const char *status = json_string_value(json_object_get(ans, "status"));
    if (!status) {
        rc = bad_shape(c, url, "", "status is missing or not a string");
    } else if (o->json) {
        put_raw(&r);
    } else {
        /* The API answers CANCELLING even for a run that had already
         * ended (and is left as it was): read the run back to say which. */
        char *get = run_path(c, o->run_id, "");
        pyoco_client_reply gr;
        json_t *run = NULL;
        const char *now = NULL;
        if (get && !fetch(c, "GET", get, o->run_id, false, &gr, &run)) {
            now = json_string_value(json_object_get(run, "status"));
            pyoco_client_reply_free(&gr);
        }
        free(get);
        if (now && terminal(now))
            printf("run %s: %s (already ended; not cancelled)\n", o->run_id,
                   now);
        else
            printf("run %s: %s\n", o->run_id, now ? now : status);
        json_decref(run);
    }
    json_decref(ans);
    pyoco_client_reply_free(&r);
    free(url);
    return rc;
}

/* One GET of the logs: the entries array and run_status, checked. */
static int get_logs(pyoco_client_conn *c, const char *url, const opts *o,
                    pyoco_client_reply *r, json_t **doc, json_t **logs,
                    const char **status) {
    int rc = fetch(c, "GET", url, o->run_id, false, r, doc);
    if (rc)
        return rc;
    *logs = json_object_get(*doc, "logs");
    *status = json_string_value(json_object_get(*doc, "run_status"));
    char err[256] = "";
    if (!json_is_array(*logs))
        snprintf(err, sizeof err, "logs is missing or not an array");
    else if (!*status)
        snprintf(err, sizeof err, "run_status is missing or not a string");
    size_t i;
    json_t *e;
    json_array_foreach(*logs, i, e) {
        if (*err || pyoco_client_check_log(e, err, sizeof err))
            break;
    }
    if (!*err)
        return 0;
    json_decref(*doc);
    *doc = NULL;
    pyoco_client_reply_free(r);
    return bad_shape(c, url, "", err);
}

static void put_entry(const opts *o, const json_t *e) {
    if (o->json) {
        char *s = json_dumps(e, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
    } else {
        pyoco_client_print_log(stdout, e);
    }
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* --follow: poll about every second, print the entries past the count
 * already seen, stop when the run is terminal. */
static int follow(pyoco_client_conn *c, const opts *o, const char *url) {
    size_t seen = 0;
    for (bool first = true;; first = false) {
        pyoco_client_reply r;
        json_t *doc = NULL, *logs = NULL;
        const char *status = NULL;
        int rc = get_logs(c, url, o, &r, &doc, &logs, &status);
        if (rc)
            return rc;
        size_t n = json_array_size(logs), from = seen;
        if (first && o->tail > 0 && (size_t)o->tail < n)
            from = n - (size_t)o->tail;
        for (size_t i = from; i < n; i++)
            put_entry(o, json_array_get(logs, i));
        seen = n; /* a shorter list (the run was reloaded) resets the count */
        fflush(stdout);
        bool done = terminal(status);
        bool ok = !strcmp(status, "COMPLETED");
        json_decref(doc);
        pyoco_client_reply_free(&r);
        if (done)
            return ok ? PYOCO_CLIENT_EXIT_OK : PYOCO_CLIENT_EXIT_RUN_FAILED;
        sleep_ms(FOLLOW_INTERVAL_MS);
    }
}

static int cmd_logs(pyoco_client_conn *c, const opts *o) {
    path_buf p;
    if (!path_begin(&p))
        return PYOCO_CLIENT_EXIT_SERVER;
    path_add(&p, c, "/runs/", o->run_id);
    path_add(&p, c, "/logs", NULL);
    path_query(&p, c, "task", o->task);
    char tail[32];
    snprintf(tail, sizeof tail, "%ld", o->tail);
    /* --follow counts entries, so it needs every one; it cuts --tail
     * itself. */
    path_query(&p, c, "tail", o->tail > 0 && !o->follow ? tail : NULL);
    char *url = path_end(&p);
    if (!url)
        return PYOCO_CLIENT_EXIT_SERVER;
    int rc;
    if (o->follow) {
        rc = follow(c, o, url);
    } else {
        pyoco_client_reply r;
        json_t *doc = NULL, *logs = NULL;
        const char *status = NULL;
        rc = get_logs(c, url, o, &r, &doc, &logs, &status);
        if (!rc) {
            if (o->json) {
                put_raw(&r);
            } else {
                size_t i;
                json_t *e;
                json_array_foreach(logs, i, e) {
                    pyoco_client_print_log(stdout, e);
                }
            }
            json_decref(doc);
            pyoco_client_reply_free(&r);
        }
    }
    free(url);
    return rc;
}

static const struct command {
    const char *name;
    unsigned flags;
    bool needs_id;
    command_fn run;
} k_commands[] = {
    {"list", F_COMMON | F_STATUS | F_FLOW | F_LIMIT, false, cmd_list},
    {"show", F_COMMON, true, cmd_show},
    {"cancel", F_COMMON, true, cmd_cancel},
    {"logs", F_COMMON | F_TASK | F_TAIL | F_FOLLOW, true, cmd_logs},
};

int pyoco_client_runs(int argc, char **argv) {
    if (argc < 1) {
        usage(stderr);
        return PYOCO_CLIENT_EXIT_USAGE;
    }
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return PYOCO_CLIENT_EXIT_OK;
        }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof k_commands / sizeof *k_commands; i++)
        if (!strcmp(argv[0], k_commands[i].name))
            cmd = &k_commands[i];
    if (!cmd)
        return usage_error("unknown command 'runs %s'", argv[0]);
    opts o = {.timeout = DEFAULT_TIMEOUT_S, .limit = -1, .tail = -1};
    const char *env = getenv("PYOCO_SERVER");
    o.server = env && *env ? env : DEFAULT_SERVER;
    int rc = parse(argc, argv, cmd->flags, cmd->needs_id, &o);
    if (rc)
        return rc;
    char why[512];
    if (!pyoco_curl_load(why, sizeof(why))) {
        fprintf(stderr, "pyoco: %s\n", why);
        return PYOCO_CLIENT_EXIT_SERVER;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
        fprintf(stderr, "pyoco: libcurl failed to initialise\n");
        return PYOCO_CLIENT_EXIT_SERVER;
    }
    pyoco_client_conn c;
    rc = pyoco_client_http_open(&c, o.server, o.timeout);
    if (!rc) {
        rc = cmd->run(&c, &o);
        pyoco_client_http_close(&c);
    }
    curl_global_cleanup();
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "pyoco: writing the output failed\n");
        if (!rc)
            rc = PYOCO_CLIENT_EXIT_SERVER;
    }
    return rc;
}
