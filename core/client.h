/* core/client.h - `pyoco runs ...`: the command-line client of the Kanban
 * API (list, show, cancel, logs [--follow]) over libcurl's easy interface.
 *
 * client.c parses the command line and runs the commands, client_http.c
 * does the requests and turns every failure into an exit code,
 * client_format.c checks answers' shapes and prints them. */
#ifndef PYOCO_CORE_CLIENT_H
#define PYOCO_CORE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "client_curl.h"
#include <jansson.h>

/* Exit codes scripts rely on (docs/cli.md). */
enum {
    PYOCO_CLIENT_EXIT_OK = 0,
    PYOCO_CLIENT_EXIT_SERVER = 1,      /* 4xx/5xx or a bad answer */
    PYOCO_CLIENT_EXIT_USAGE = 2,       /* bad command line */
    PYOCO_CLIENT_EXIT_UNREACHABLE = 3, /* refused, DNS, timeout */
    PYOCO_CLIENT_EXIT_NOT_FOUND = 4,   /* 404 for a run */
    PYOCO_CLIENT_EXIT_RUN_FAILED = 5,  /* logs --follow: FAILED/CANCELLED */
};

/* `pyoco runs SUBCOMMAND ...`: argv[0] is the subcommand. Returns the
 * process exit code; every failure has been reported on stderr. */
int pyoco_client_runs(int argc, char **argv);

/* ---- HTTP (client_http.c) ---- */

/* Answers larger than this are refused (exit 1), never buffered. */
#define PYOCO_CLIENT_MAX_ANSWER ((size_t)256 << 20)
#define PYOCO_CLIENT_CONNECT_TIMEOUT_MS 5000L

typedef struct pyoco_client_conn {
    CURL *curl;
    char *base;      /* server URL, no trailing '/' */
    long timeout_ms; /* whole request */
    char errbuf[CURL_ERROR_SIZE];
} pyoco_client_conn;

typedef struct pyoco_client_reply {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
} pyoco_client_reply;

/* 0, or an exit code (reported). server is used as given (its trailing
 * slashes dropped); it must be an http:// or https:// URL. */
int pyoco_client_http_open(pyoco_client_conn *c, const char *server,
                           double timeout_s);
void pyoco_client_http_close(pyoco_client_conn *c);
/* A request to base + path (path already escaped). A 2xx answer is left
 * in *out (free with pyoco_client_reply_free) and 0 returned. Anything
 * else is reported on stderr and its exit code returned: a 404 is
 * EXIT_NOT_FOUND when run_id is given ("run ID not found"), EXIT_SERVER
 * otherwise. */
int pyoco_client_http_call(pyoco_client_conn *c, const char *method,
                           const char *path, const char *run_id,
                           pyoco_client_reply *out);
void pyoco_client_reply_free(pyoco_client_reply *r);
/* The 2xx body as JSON (an object or an array, by want_array); 0 or
 * EXIT_SERVER (reported). */
int pyoco_client_reply_json(const pyoco_client_conn *c, const char *path,
                            const pyoco_client_reply *r, bool want_array,
                            json_t **out);
/* A percent-escaped copy of s for a path segment or query value (free()),
 * or NULL when out of memory. */
char *pyoco_client_escape(pyoco_client_conn *c, const char *s);

/* ---- Shapes and output (client_format.c) ---- */

/* Check the fields a command reads have the API's types; on a mismatch
 * write a message naming the field to err and return -EPROTO. */
int pyoco_client_check_run(const json_t *run, char *err, size_t n);
int pyoco_client_check_log(const json_t *entry, char *err, size_t n);

/* "2026-12-03T17:04:38Z" (UTC) for Unix seconds; "-" for NULL/null. */
void pyoco_client_fmt_time(const json_t *t, char *buf, size_t n);
/* "850ms", "12.3s", "4m05s", "2h07m"; "-" when unknown. */
void pyoco_client_fmt_duration(double ms, char *buf, size_t n);
/* The run's duration in ms: run_duration_ms, else end - start; NaN when
 * unknown. */
double pyoco_client_run_duration(const json_t *run);

/* Checked (pyoco_client_check_run) runs only. */
void pyoco_client_print_runs(FILE *f, const json_t *runs);
void pyoco_client_print_run(FILE *f, const json_t *run);
/* "[task] stream: text", for a checked entry. */
void pyoco_client_print_log(FILE *f, const json_t *entry);

#endif
