/* prom_check.c - a strict checker of one Prometheus exposition (text 0.0.4
 * or OpenMetrics 1.0), written for the metrics fuzz target: every line
 * must parse, the text must be valid UTF-8, samples must belong to the
 * family their TYPE line declared, no series may repeat, and histogram
 * buckets must be cumulative with le="+Inf" equal to _count. */
#include "prom_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define MAX_NAME 512

typedef struct checker {
    bool om;
    char family[MAX_NAME];
    char type[16];
    json_t *families; /* names TYPE'd so far */
    json_t *series;   /* name + raw labels seen */
    /* the histogram series being read */
    char hkey[4096];
    double last_le;
    double last_count;
    bool saw_inf;
    bool in_hist;
    char *err;
    size_t errlen;
} checker;

static bool bad(checker *c, const char *line, size_t n, const char *why) {
    snprintf(c->err, c->errlen, "%s: \"%.*s\"", why, (int)(n > 200 ? 200 : n),
             line);
    return false;
}

static bool utf8_valid(const char *s, size_t n) {
    /* jansson validates UTF-8 when making a string of a given length. */
    json_t *j = json_stringn(s, n);
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

static bool name_char(char ch, bool first, bool metric) {
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_')
        return true;
    if (metric && ch == ':')
        return true;
    return !first && ch >= '0' && ch <= '9';
}

/* Length of the name at s (0 when none). */
static size_t name_len(const char *s, size_t n, bool metric) {
    size_t i = 0;
    while (i < n && name_char(s[i], i == 0, metric))
        i++;
    return i;
}

static bool parse_value(const char *s, size_t n, double *out) {
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!strcmp(buf, "+Inf")) {
        *out = INFINITY;
        return true;
    }
    if (!strcmp(buf, "-Inf")) {
        *out = -INFINITY;
        return true;
    }
    if (!strcmp(buf, "NaN")) {
        *out = NAN;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789.eE+-", buf[i]))
            return false;
    char *end;
    *out = strtod(buf, &end);
    return *end == '\0';
}

/* HELP text: escapes \\ and \n (and \" in OpenMetrics) only. */
static bool help_ok(checker *c, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' && c->om)
            return false;
        if (s[i] != '\\')
            continue;
        if (++i == n)
            return false;
        if (s[i] != '\\' && s[i] != 'n' && !(c->om && s[i] == '"'))
            return false;
    }
    return true;
}

static bool suffix_of(const char *name, size_t nlen, const char *fam,
                      const char *sfx) {
    size_t fl = strlen(fam), sl = strlen(sfx);
    return nlen == fl + sl && !memcmp(name, fam, fl) &&
           !memcmp(name + fl, sfx, sl);
}

/* Does sample `name` belong to the current family? */
static bool belongs(checker *c, const char *name, size_t n, const char **sfx) {
    *sfx = "";
    if (!c->family[0])
        return false;
    if (!strcmp(c->type, "histogram")) {
        static const char *const s[] = {"_bucket", "_sum", "_count",
                                        "_created"};
        for (size_t i = 0; i < 4; i++)
            if (suffix_of(name, n, c->family, s[i])) {
                *sfx = s[i];
                return c->om || i < 3;
            }
        return false;
    }
    if (!strcmp(c->type, "counter") && c->om) {
        if (suffix_of(name, n, c->family, "_total")) {
            *sfx = "_total";
            return true;
        }
        return suffix_of(name, n, c->family, "_created");
    }
    return suffix_of(name, n, c->family, "");
}

static bool end_hist(checker *c, const char *line, size_t n) {
    if (c->in_hist && !c->saw_inf)
        return bad(c, line, n, "histogram buckets without le=\"+Inf\"");
    c->in_hist = false;
    return true;
}

static bool sample(checker *c, const char *line, size_t n) {
    size_t nl = name_len(line, n, true);
    if (nl == 0 || nl >= MAX_NAME)
        return bad(c, line, n, "bad metric name");
    const char *sfx;
    if (!belongs(c, line, nl, &sfx))
        return bad(c, line, n, "sample outside its family's TYPE");
    size_t i = nl;
    char hkey[sizeof c->hkey];
    size_t hk = 0;
    double le = NAN;
    bool has_le = false;
    struct {
        const char *p;
        size_t n;
    } names[32];
    size_t nnames = 0;
    if (i < n && line[i] == '{') {
        i++;
        while (i < n && line[i] != '}') {
            size_t ln = name_len(line + i, n - i, false);
            if (ln == 0)
                return bad(c, line, n, "bad label name");
            /* "le" is the bucket bound only in a histogram; elsewhere it
             * is an ordinary label. */
            bool is_le = ln == 2 && !memcmp(line + i, "le", 2) &&
                         !strcmp(c->type, "histogram");
            for (size_t k = 0; k < nnames; k++)
                if (names[k].n == ln && !memcmp(names[k].p, line + i, ln))
                    return bad(c, line, n, "label name repeated");
            if (nnames < sizeof names / sizeof names[0]) {
                names[nnames].p = line + i;
                names[nnames++].n = ln;
            }
            size_t lstart = i;
            i += ln;
            if (i + 1 >= n || line[i] != '=' || line[i + 1] != '"')
                return bad(c, line, n, "label without =\"");
            i += 2;
            size_t vstart = i;
            while (i < n && line[i] != '"') {
                if (line[i] == '\\') {
                    if (i + 1 >= n || !strchr("\\\"n", line[i + 1]))
                        return bad(c, line, n, "bad escape in label value");
                    i++;
                }
                i++;
            }
            if (i >= n)
                return bad(c, line, n, "unterminated label value");
            if (is_le) {
                has_le = true;
                if (!parse_value(line + vstart, i - vstart, &le))
                    return bad(c, line, n, "le is not a number");
            } else if (hk + (i + 1 - lstart) + 1 < sizeof hkey) {
                memcpy(hkey + hk, line + lstart, i + 1 - lstart);
                hk += i + 1 - lstart;
                hkey[hk++] = ',';
            }
            i++;
            if (i < n && line[i] == ',')
                i++;
            else if (i < n && line[i] != '}')
                return bad(c, line, n, "expected , or } after a label");
        }
        if (i >= n)
            return bad(c, line, n, "unterminated label set");
        i++;
    }
    hkey[hk] = '\0';
    char *skey = strndup(line, i);
    if (!skey)
        return bad(c, line, n, "out of memory");
    if (json_object_get(c->series, skey)) {
        free(skey);
        return bad(c, line, n, "duplicate series");
    }
    json_object_set_new(c->series, skey, json_true());
    free(skey);
    if (i >= n || line[i] != ' ')
        return bad(c, line, n, "no space before the value");
    i++;
    const char *v = line + i;
    const char *sp = memchr(v, ' ', n - i);
    size_t vn = sp ? (size_t)(sp - v) : n - i;
    double value;
    if (!parse_value(v, vn, &value))
        return bad(c, line, n, "bad sample value");
    if (sp) {
        double ts;
        if (!parse_value(sp + 1, n - i - vn - 1, &ts))
            return bad(c, line, n, "bad timestamp");
    }
    if (!strcmp(c->type, "counter") && !(value >= 0))
        return bad(c, line, n, "counter below zero or NaN");
    if (!strcmp(sfx, "_bucket")) {
        if (!has_le)
            return bad(c, line, n, "bucket without le");
        if (!c->in_hist || strcmp(hkey, c->hkey) != 0) {
            if (!end_hist(c, line, n))
                return false;
            snprintf(c->hkey, sizeof c->hkey, "%s", hkey);
            c->in_hist = true;
            c->saw_inf = false;
            c->last_le = -INFINITY;
            c->last_count = 0;
        } else if (c->saw_inf) {
            return bad(c, line, n, "bucket after le=\"+Inf\"");
        }
        if (!(le > c->last_le))
            return bad(c, line, n, "le not increasing");
        if (value < c->last_count)
            return bad(c, line, n, "bucket counts not cumulative");
        c->last_le = le;
        c->last_count = value;
        c->saw_inf = isinf(le) && le > 0;
    } else if (!strcmp(sfx, "_count")) {
        if (!c->in_hist || strcmp(hkey, c->hkey) != 0 || !c->saw_inf)
            return bad(c, line, n, "_count without its buckets");
        if (value != c->last_count)
            return bad(c, line, n, "_count differs from le=\"+Inf\"");
    } else if (has_le) {
        return bad(c, line, n, "le label outside _bucket");
    }
    return true;
}

static bool comment(checker *c, const char *line, size_t n) {
    bool help = n > 7 && !memcmp(line, "# HELP ", 7);
    bool type = n > 7 && !memcmp(line, "# TYPE ", 7);
    if (!help && !type)
        return bad(c, line, n, "unknown comment line");
    const char *name = line + 7;
    size_t rest = n - 7;
    size_t nl = name_len(name, rest, true);
    if (nl == 0 || nl >= MAX_NAME || nl == rest || name[nl] != ' ')
        return bad(c, line, n, "bad name in HELP/TYPE");
    const char *arg = name + nl + 1;
    size_t an = rest - nl - 1;
    if (help) {
        if (!help_ok(c, arg, an))
            return bad(c, line, n, "bad HELP escape");
        /* HELP comes first in our output: it opens the family. */
        if (!end_hist(c, line, n))
            return false;
        memcpy(c->family, name, nl);
        c->family[nl] = '\0';
        c->type[0] = '\0';
        return true;
    }
    if (nl != strlen(c->family) || memcmp(name, c->family, nl))
        return bad(c, line, n, "TYPE does not follow its HELP");
    static const char *const types[] = {"counter", "gauge", "histogram",
                                        "summary", "untyped"};
    bool known = false;
    for (size_t i = 0; i < 5; i++)
        if (an == strlen(types[i]) && !memcmp(arg, types[i], an))
            known = true;
    if (!known)
        return bad(c, line, n, "unknown TYPE");
    if (json_object_get(c->families, c->family))
        return bad(c, line, n, "family declared twice");
    json_object_set_new(c->families, c->family, json_true());
    memcpy(c->type, arg, an);
    c->type[an] = '\0';
    return true;
}

bool prom_check(const char *text, size_t len, bool openmetrics, char *err,
                size_t errlen) {
    checker c = {.om = openmetrics,
                 .families = json_object(),
                 .series = json_object(),
                 .err = err,
                 .errlen = errlen};
    bool ok = true;
    bool eof = false;
    if (!utf8_valid(text, len)) {
        ok = bad(&c, "", 0, "not valid UTF-8");
        goto out;
    }
    if (len == 0 || text[len - 1] != '\n') {
        ok = bad(&c, "", 0, "does not end with a newline");
        goto out;
    }
    for (size_t i = 0; i < len && ok;) {
        const char *line = text + i;
        const char *nlp = memchr(line, '\n', len - i);
        size_t n = (size_t)(nlp - line);
        i += n + 1;
        if (eof)
            ok = bad(&c, line, n, "line after # EOF");
        else if (n == 0)
            ok = bad(&c, line, n, "empty line");
        else if (c.om && n == 5 && !memcmp(line, "# EOF", 5))
            ok = eof = end_hist(&c, line, n);
        else if (line[0] == '#')
            ok = comment(&c, line, n);
        else
            ok = sample(&c, line, n);
    }
    if (ok && c.om && !eof)
        ok = bad(&c, "", 0, "OpenMetrics without # EOF");
    if (ok && !c.om)
        ok = end_hist(&c, "", 0);
out:
    json_decref(c.families);
    json_decref(c.series);
    return ok;
}
