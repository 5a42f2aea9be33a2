/* prom_text.h - the exposition's text primitives: a growing output buffer,
 * round-trip number formatting and the escaping rules of the Prometheus
 * text format (0.0.4) and OpenMetrics 1.0. Pure functions, no host calls. */
#ifndef PROM_TEXT_H
#define PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One contiguous buffer, reused across scrapes so that steady-state
 * rendering does not allocate. On allocation failure `failed` is set and
 * further appends are ignored; the caller checks it once at the end. */
typedef struct prom_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} prom_buf;

void prom_buf_init(prom_buf *b);
void prom_buf_free(prom_buf *b);
void prom_buf_reset(prom_buf *b);
/* Makes room for n more bytes; false (and failed set) on ENOMEM. */
bool prom_buf_reserve(prom_buf *b, size_t n);
void prom_buf_add(prom_buf *b, const void *p, size_t n);
void prom_buf_adds(prom_buf *b, const char *s);
void prom_buf_addc(prom_buf *b, char c);
/* Copies the bytes into a new NUL-terminated string (NULL on ENOMEM). */
char *prom_buf_strdup(const prom_buf *b);

/* Longest text prom_fmt_double can write, plus the NUL. */
#define PROM_NUM_MAX 40

/* Shortest decimal that reads back as exactly `v` (%.15g, %.16g or
 * %.17g), with ".0" appended to integral values ("1.0", "0.05", "+Inf",
 * "-Inf", "NaN"), as the reference prints them. Returns the length. */
size_t prom_fmt_double(char out[PROM_NUM_MAX], double v);
/* A count, "<n>.0" (what the reference prints for bucket counts); out
 * holds PROM_NUM_MAX bytes. */
size_t prom_fmt_count(char *out, uint64_t n);

/* Label value: `\` -> `\\`, `"` -> `\"`, newline -> `\n`; any byte that
 * is not part of a well-formed UTF-8 sequence becomes U+FFFD, so a
 * scraper always gets valid UTF-8. */
void prom_escape_label(prom_buf *b, const char *s, size_t len);
/* HELP text: `\` and newline escaped; with `quote` (OpenMetrics) `"` too.
 * Invalid UTF-8 replaced as for labels. */
void prom_escape_help(prom_buf *b, const char *s, size_t len, bool quote);

/* Metric name [a-zA-Z_:][a-zA-Z0-9_:]* and label name [a-zA-Z_][a-zA-Z0-9_]*
 * (labels starting with "__" are reserved by Prometheus). */
bool prom_valid_metric_name(const char *s);
bool prom_valid_label_name(const char *s);

#endif
