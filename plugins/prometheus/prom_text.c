/* prom_text.c - output buffer, number formatting, escaping. */
#include "prom_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prom_buf_init(prom_buf *b) {
    memset(b, 0, sizeof(*b));
}

void prom_buf_free(prom_buf *b) {
    free(b->data);
    prom_buf_init(b);
}

void prom_buf_reset(prom_buf *b) {
    b->len = 0;
    b->failed = false;
}

bool prom_buf_reserve(prom_buf *b, size_t n) {
    if (b->failed)
        return false;
    if (b->cap - b->len > n)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void prom_buf_add(prom_buf *b, const void *p, size_t n) {
    if (n == 0 || !prom_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void prom_buf_adds(prom_buf *b, const char *s) {
    prom_buf_add(b, s, strlen(s));
}

void prom_buf_addc(prom_buf *b, char c) {
    if (!prom_buf_reserve(b, 1))
        return;
    b->data[b->len++] = c;
}

char *prom_buf_strdup(const prom_buf *b) {
    char *s = malloc(b->len + 1);
    if (!s)
        return NULL;
    if (b->len)
        memcpy(s, b->data, b->len);
    s[b->len] = '\0';
    return s;
}

/* ---- numbers ------------------------------------------------------------ */

size_t prom_fmt_count(char *out, uint64_t n) {
    char tmp[24];
    size_t i = 0;
    do {
        tmp[i++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    size_t len = 0;
    while (i)
        out[len++] = tmp[--i];
    out[len++] = '.';
    out[len++] = '0';
    out[len] = '\0';
    return len;
}

size_t prom_fmt_double(char out[PROM_NUM_MAX], double v) {
    if (isnan(v)) {
        memcpy(out, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    /* Integral values below 2^53 are exact as integers: no printf needed
     * (the hot path for counters and counts). */
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        if (v < 0 || (v == 0 && signbit(v))) {
            out[0] = '-';
            return 1 + prom_fmt_count(out + 1, (uint64_t)-v);
        }
        return prom_fmt_count(out, (uint64_t)v);
    }
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, PROM_NUM_MAX, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
    /* "%g" of an integral value has neither '.' nor an exponent: make it
     * read as a float, like the reference ("1e+20" stays as it is). */
    if (!strpbrk(out, ".en") && n + 2 < PROM_NUM_MAX) {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    return (size_t)n;
}

/* ---- escaping ----------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0 when it is malformed. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

static void escape(prom_buf *b, const char *str, size_t len, bool quote) {
    static const char fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0; /* run: start of bytes copied verbatim */
    /* Worst case every byte becomes U+FFFD: reserve once. */
    if (len > (SIZE_MAX - 16) / 3 || !prom_buf_reserve(b, len * 3))
        return;
    while (i < len) {
        unsigned char c = s[i];
        const char *rep = NULL;
        size_t replen = 0, adv = 1;
        if (c >= 0x80) {
            adv = utf8_seq_len(s + i, len - i);
            if (adv) {
                i += adv;
                continue;
            }
            adv = 1;
            rep = fffd;
            replen = 3;
        } else if (c == '\\') {
            rep = "\\\\";
            replen = 2;
        } else if (c == '\n') {
            rep = "\\n";
            replen = 2;
        } else if (c == '"' && quote) {
            rep = "\\\"";
            replen = 2;
        } else {
            i++;
            continue;
        }
        prom_buf_add(b, s + run, i - run);
        prom_buf_add(b, rep, replen);
        i += adv;
        run = i;
    }
    prom_buf_add(b, s + run, i - run);
}

void prom_escape_label(prom_buf *b, const char *s, size_t len) {
    escape(b, s, len, true);
}

void prom_escape_help(prom_buf *b, const char *s, size_t len, bool quote) {
    escape(b, s, len, quote);
}

/* ---- names -------------------------------------------------------------- */

static bool name_chars(const char *s, bool colon) {
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '_' || (colon && c == ':') ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

bool prom_valid_metric_name(const char *s) {
    return name_chars(s, true);
}

bool prom_valid_label_name(const char *s) {
    return name_chars(s, false) && strncmp(s, "__", 2) != 0;
}
