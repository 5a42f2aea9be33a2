/* prom_family.c - families, series, the cap, rendering. */
#include "prom_family.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const double prom_default_buckets[10] = {0.05, 0.1, 0.25, 0.5, 1,
                                         2.5,  5,   10,   30,  60};

struct prom_series {
    prom_family *fam;
    /* Escaped labels in name order, without braces: a="x",b="y". For a
     * histogram, labels[0..before) sort before "le" and labels[after..]
     * after it, so bucket lines splice le in without re-escaping. */
    char *labels;
    size_t labels_len;
    size_t before;
    size_t after;
    double value;     /* counter, gauge */
    double sum;       /* histogram */
    uint64_t count;   /* histogram */
    uint64_t *counts; /* histogram: per bucket (not cumulative), +Inf last */
    prom_buf cache;   /* the series' sample lines */
    bool dirty;
};

struct prom_family {
    char *name; /* sample name */
    char *help;
    prom_type type;
    size_t nlabels;
    char **label_names; /* caller's order */
    size_t *order;      /* label positions sorted by name */
    double *bounds;
    size_t nbounds;
    char **le; /* rendered bounds, "+Inf" last */
    bool capped;
    int tag;
    prom_series **series;
    size_t nseries;
    size_t cap;
    json_t *index; /* label string -> position in series */
    prom_series *overflow;
    char *head[2]; /* HELP and TYPE lines per prom_format */
    size_t head_len[2];
    char *suffixed[3]; /* histogram: _bucket, _count, _sum */
};

struct prom_set {
    prom_family **fams;
    size_t n;
    size_t cap;
    json_t *by_name;
    size_t max_series;
    prom_family *overflow_fam;
    prom_buf key; /* scratch for label strings */
};

/* ---- set ---------------------------------------------------------------- */

prom_set *prom_set_new(size_t max_series) {
    prom_set *set = calloc(1, sizeof(*set));
    if (!set)
        return NULL;
    set->by_name = json_object();
    if (!set->by_name) {
        free(set);
        return NULL;
    }
    set->max_series = max_series ? max_series : 1;
    prom_buf_init(&set->key);
    return set;
}

static void series_free(prom_series *s) {
    if (!s)
        return;
    free(s->labels);
    free(s->counts);
    prom_buf_free(&s->cache);
    free(s);
}

static void family_free(prom_family *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->nseries; i++)
        series_free(f->series[i]);
    series_free(f->overflow);
    free(f->series);
    json_decref(f->index);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->label_names ? f->label_names[i] : NULL);
    free(f->label_names);
    free(f->order);
    free(f->bounds);
    if (f->le)
        for (size_t i = 0; i <= f->nbounds; i++)
            free(f->le[i]);
    free(f->le);
    for (int i = 0; i < 2; i++)
        free(f->head[i]);
    for (int i = 0; i < 3; i++)
        free(f->suffixed[i]);
    free(f->name);
    free(f->help);
    free(f);
}

void prom_set_free(prom_set *set) {
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        family_free(set->fams[i]);
    free(set->fams);
    json_decref(set->by_name);
    prom_buf_free(&set->key);
    free(set);
}

prom_family *prom_set_find(const prom_set *set, const char *name) {
    json_t *v = json_object_get(set->by_name, name);
    return v ? set->fams[json_integer_value(v)] : NULL;
}

size_t prom_set_family_count(const prom_set *set) {
    return set->n;
}

void prom_set_overflow_family(prom_set *set, prom_family *fam) {
    set->overflow_fam = fam;
}

/* ---- family ------------------------------------------------------------- */

static const char *type_name(prom_type t) {
    switch (t) {
    case PROM_COUNTER:
        return "counter";
    case PROM_GAUGE:
        return "gauge";
    default:
        return "histogram";
    }
}

static char *cat(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* "# HELP <fam> <help>\n# TYPE <fam> <type>\n"; OpenMetrics names a
 * counter family without its "_total" and escapes '"' in HELP. */
static char *make_head(const prom_family *f, prom_format fmt, size_t *len) {
    prom_buf b;
    prom_buf_init(&b);
    size_t nlen = strlen(f->name);
    if (fmt == PROM_FMT_OPENMETRICS && f->type == PROM_COUNTER)
        nlen -= strlen("_total");
    prom_buf_adds(&b, "# HELP ");
    prom_buf_add(&b, f->name, nlen);
    prom_buf_addc(&b, ' ');
    prom_escape_help(&b, f->help, strlen(f->help), fmt == PROM_FMT_OPENMETRICS);
    prom_buf_adds(&b, "\n# TYPE ");
    prom_buf_add(&b, f->name, nlen);
    prom_buf_addc(&b, ' ');
    prom_buf_adds(&b, type_name(f->type));
    prom_buf_addc(&b, '\n');
    char *s = b.failed ? NULL : prom_buf_strdup(&b);
    *len = b.len;
    prom_buf_free(&b);
    return s;
}

static int cmp_label(const prom_family *f, size_t a, size_t b) {
    return strcmp(f->label_names[a], f->label_names[b]);
}

static bool family_labels(prom_family *f, size_t n, const char *const *names) {
    f->nlabels = n;
    if (n == 0)
        return true;
    if (n > PROM_MAX_LABELS) {
        f->nlabels = 0;
        return false;
    }
    f->label_names = calloc(n, sizeof(char *));
    f->order = calloc(n, sizeof(size_t));
    if (!f->label_names || !f->order)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!prom_valid_label_name(names[i]) ||
            (f->type == PROM_HISTOGRAM && strcmp(names[i], "le") == 0))
            return false;
        if (!(f->label_names[i] = strdup(names[i])))
            return false;
        f->order[i] = i;
    }
    /* Insertion sort: a handful of labels. */
    for (size_t i = 1; i < n; i++) {
        size_t k = f->order[i], j = i;
        while (j > 0 && cmp_label(f, f->order[j - 1], k) > 0) {
            f->order[j] = f->order[j - 1];
            j--;
        }
        f->order[j] = k;
    }
    for (size_t i = 1; i < n; i++)
        if (cmp_label(f, f->order[i - 1], f->order[i]) == 0)
            return false; /* duplicate label name */
    return true;
}

static bool family_buckets(prom_family *f, const double *b, size_t n) {
    if (!b || n == 0) {
        b = prom_default_buckets;
        n = PROM_DEFAULT_NBUCKETS;
    }
    if (n > PROM_MAX_BUCKETS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(b[i]) || (i && b[i] <= b[i - 1]))
            return false;
    f->nbounds = n;
    f->bounds = malloc(n * sizeof(double));
    f->le = calloc(n + 1, sizeof(char *));
    if (!f->bounds || !f->le)
        return false;
    memcpy(f->bounds, b, n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        char num[PROM_NUM_MAX];
        prom_fmt_double(num, b[i]);
        if (!(f->le[i] = strdup(num)))
            return false;
    }
    if (!(f->le[n] = strdup("+Inf")))
        return false;
    static const char *const sfx[3] = {"_bucket", "_count", "_sum"};
    for (int i = 0; i < 3; i++)
        if (!(f->suffixed[i] = cat(f->name, sfx[i])))
            return false;
    return true;
}

prom_family *prom_set_add_family(prom_set *set, const char *name,
                                 const char *help, prom_type type,
                                 size_t nlabels, const char *const *label_names,
                                 const double *buckets, size_t nbuckets,
                                 bool capped) {
    if (!prom_valid_metric_name(name) || type < PROM_COUNTER ||
        type > PROM_HISTOGRAM)
        return NULL;
    prom_family *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->type = type;
    f->capped = capped;
    f->name = (type == PROM_COUNTER && !ends_with(name, "_total"))
                  ? cat(name, "_total")
                  : strdup(name);
    f->help = strdup(help ? help : "");
    f->index = json_object();
    if (!f->name || !f->help || !f->index ||
        !family_labels(f, nlabels, label_names) ||
        (type == PROM_HISTOGRAM && !family_buckets(f, buckets, nbuckets)) ||
        json_object_get(set->by_name, f->name))
        goto fail;
    for (int i = 0; i < 2; i++)
        if (!(f->head[i] = make_head(f, (prom_format)i, &f->head_len[i])))
            goto fail;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        prom_family **p = realloc(set->fams, cap * sizeof(*p));
        if (!p)
            goto fail;
        set->fams = p;
        set->cap = cap;
    }
    if (json_object_set_new(set->by_name, f->name,
                            json_integer((json_int_t)set->n)) != 0)
        goto fail;
    set->fams[set->n++] = f;
    return f;
fail:
    family_free(f);
    return NULL;
}

void prom_family_set_tag(prom_family *f, int tag) {
    f->tag = tag;
}
int prom_family_tag(const prom_family *f) {
    return f->tag;
}

prom_type prom_family_type(const prom_family *f) {
    return f->type;
}
const char *prom_family_name(const prom_family *f) {
    return f->name;
}
size_t prom_family_nlabels(const prom_family *f) {
    return f->nlabels;
}
const char *prom_family_label_name(const prom_family *f, size_t i) {
    return i < f->nlabels ? f->label_names[i] : NULL;
}
size_t prom_family_series_count(const prom_family *f) {
    return f->nseries + (f->overflow ? 1 : 0);
}
bool prom_family_is_capped(const prom_family *f) {
    return f->capped;
}

/* ---- series ------------------------------------------------------------- */

/* Escaped label string of `values` into set->key; before and after as in
 * prom_series. */
static void build_labels(prom_set *set, const prom_family *f,
                         const char *const *values, size_t *before,
                         size_t *after) {
    prom_buf *b = &set->key;
    prom_buf_reset(b);
    *before = 0;
    *after = 0;
    bool split = false;
    for (size_t i = 0; i < f->nlabels; i++) {
        size_t k = f->order[i];
        const char *name = f->label_names[k];
        if (!split && strcmp(name, "le") > 0) {
            split = true;
            *before = b->len;
            *after = b->len ? b->len + 1 : 0;
        }
        if (i)
            prom_buf_addc(b, ',');
        prom_buf_adds(b, name);
        prom_buf_add(b, "=\"", 2);
        const char *v = values && values[k] ? values[k] : "";
        prom_escape_label(b, v, strlen(v));
        prom_buf_addc(b, '"');
    }
    if (!split) {
        *before = b->len;
        *after = b->len;
    }
}

static prom_series *series_new(prom_set *set, prom_family *f, size_t before,
                               size_t after) {
    prom_series *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->fam = f;
    s->labels = prom_buf_strdup(&set->key);
    s->labels_len = set->key.len;
    s->before = before;
    s->after = after;
    s->dirty = true;
    prom_buf_init(&s->cache);
    if (f->type == PROM_HISTOGRAM)
        s->counts = calloc(f->nbounds + 1, sizeof(uint64_t));
    if (!s->labels || (f->type == PROM_HISTOGRAM && !s->counts)) {
        series_free(s);
        return NULL;
    }
    return s;
}

static prom_series *overflow_series(prom_set *set, prom_family *f) {
    if (!f->overflow) {
        const char *v[PROM_MAX_LABELS];
        for (size_t i = 0; i < PROM_MAX_LABELS; i++)
            v[i] = PROM_OVERFLOW_VALUE;
        size_t before, after;
        build_labels(set, f, v, &before, &after);
        if (set->key.failed)
            return NULL;
        /* A worker may have sent "__overflow__" itself before the cap was
         * reached: share that series rather than print the set twice. */
        json_t *hit = json_object_getn(
            f->index, set->key.data ? set->key.data : "", set->key.len);
        if (hit)
            return f->series[json_integer_value(hit)];
        f->overflow = series_new(set, f, before, after);
    }
    return f->overflow;
}

prom_series *prom_family_series(prom_set *set, prom_family *f,
                                const char *const *values) {
    size_t before, after;
    build_labels(set, f, values, &before, &after);
    if (set->key.failed)
        return NULL;
    json_t *hit = json_object_getn(f->index, set->key.data ? set->key.data : "",
                                   set->key.len);
    if (hit)
        return f->series[json_integer_value(hit)];
    if (f->overflow && set->key.len == f->overflow->labels_len &&
        (set->key.len == 0 ||
         memcmp(set->key.data, f->overflow->labels, set->key.len) == 0))
        return f->overflow;
    if (f->capped && f->nseries >= set->max_series) {
        prom_series *o = overflow_series(set, f);
        if (o && set->overflow_fam && set->overflow_fam != f) {
            const char *fv[1] = {f->name};
            prom_series *c = prom_family_series(set, set->overflow_fam, fv);
            if (c)
                prom_series_add(c, 1);
        }
        return o;
    }
    if (f->nseries == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        prom_series **p = realloc(f->series, cap * sizeof(*p));
        if (!p)
            return NULL;
        f->series = p;
        f->cap = cap;
    }
    prom_series *s = series_new(set, f, before, after);
    if (!s)
        return NULL;
    if (json_object_setn_new_nocheck(f->index, s->labels, s->labels_len,
                                     json_integer((json_int_t)f->nseries))) {
        series_free(s);
        return NULL;
    }
    f->series[f->nseries++] = s;
    return s;
}

void prom_series_add(prom_series *s, double v) {
    s->value += v;
    s->dirty = true;
}

void prom_series_set(prom_series *s, double v) {
    if (s->value != v || isnan(v)) {
        s->value = v;
        s->dirty = true;
    }
}

void prom_series_observe(prom_series *s, double v) {
    const prom_family *f = s->fam;
    size_t i = 0;
    /* Bucket i counts v <= bounds[i]; the last slot is +Inf. */
    while (i < f->nbounds && !(v <= f->bounds[i]))
        i++;
    s->counts[i]++;
    s->count++;
    s->sum += v;
    s->dirty = true;
}

double prom_series_value(const prom_series *s) {
    return s->value;
}
uint64_t prom_series_count(const prom_series *s) {
    return s->count;
}
double prom_series_sum(const prom_series *s) {
    return s->sum;
}

/* ---- rendering ---------------------------------------------------------- */

static void add_labels(prom_buf *b, const prom_series *s) {
    if (!s->labels_len)
        return;
    prom_buf_addc(b, '{');
    prom_buf_add(b, s->labels, s->labels_len);
    prom_buf_addc(b, '}');
}

static void add_line(prom_buf *b, const char *name, const prom_series *s,
                     const char *num, size_t numlen) {
    prom_buf_adds(b, name);
    add_labels(b, s);
    prom_buf_addc(b, ' ');
    prom_buf_add(b, num, numlen);
    prom_buf_addc(b, '\n');
}

static void render_series(prom_series *s) {
    const prom_family *f = s->fam;
    prom_buf *b = &s->cache;
    char num[PROM_NUM_MAX];
    prom_buf_reset(b);
    if (f->type != PROM_HISTOGRAM) {
        add_line(b, f->name, s, num, prom_fmt_double(num, s->value));
    } else {
        uint64_t cum = 0;
        for (size_t i = 0; i <= f->nbounds; i++) {
            cum += s->counts[i];
            prom_buf_adds(b, f->suffixed[0]);
            prom_buf_addc(b, '{');
            prom_buf_add(b, s->labels, s->before);
            if (s->before)
                prom_buf_addc(b, ',');
            prom_buf_add(b, "le=\"", 4);
            prom_buf_adds(b, f->le[i]);
            prom_buf_addc(b, '"');
            if (s->after < s->labels_len) {
                prom_buf_addc(b, ',');
                prom_buf_add(b, s->labels + s->after, s->labels_len - s->after);
            }
            prom_buf_add(b, "} ", 2);
            prom_buf_add(b, num, prom_fmt_count(num, cum));
            prom_buf_addc(b, '\n');
        }
        /* _count before _sum, as the reference orders them. */
        add_line(b, f->suffixed[1], s, num, prom_fmt_count(num, s->count));
        add_line(b, f->suffixed[2], s, num, prom_fmt_double(num, s->sum));
    }
    s->dirty = b->failed;
}

static void emit(prom_buf *out, prom_series *s) {
    if (s->dirty)
        render_series(s);
    if (s->cache.failed)
        out->failed = true;
    else
        prom_buf_add(out, s->cache.data, s->cache.len);
}

void prom_set_render(prom_set *set, prom_buf *b, prom_format fmt) {
    int h = fmt == PROM_FMT_OPENMETRICS ? 1 : 0;
    for (size_t i = 0; i < set->n; i++) {
        prom_family *f = set->fams[i];
        prom_buf_add(b, f->head[h], f->head_len[h]);
        for (size_t k = 0; k < f->nseries; k++)
            emit(b, f->series[k]);
        if (f->overflow)
            emit(b, f->overflow);
    }
    if (fmt == PROM_FMT_OPENMETRICS)
        prom_buf_add(b, "# EOF\n", 6);
}
