/* prom_family.h - metric families and their series, the cardinality cap,
 * and rendering of a family set into the text format or OpenMetrics.
 *
 * A family fixes its type, help, label names and (histograms) buckets when
 * it is created. A series is found by its escaped label string, which is
 * built once when the series is created and kept; the sample lines of a
 * series are cached and rebuilt only after the series changed, so a scrape
 * is mostly copying. Pure data structure: no host calls. */
#ifndef PROM_FAMILY_H
#define PROM_FAMILY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "prom_text.h"

typedef enum prom_type {
    PROM_COUNTER = 1,
    PROM_GAUGE = 2,
    PROM_HISTOGRAM = 3,
} prom_type;

typedef enum prom_format {
    PROM_FMT_TEXT = 0,        /* text/plain; version=0.0.4 */
    PROM_FMT_OPENMETRICS = 1, /* application/openmetrics-text; version=1.0.0 */
} prom_format;

#define PROM_OVERFLOW_VALUE "__overflow__"
#define PROM_MAX_BUCKETS 64
#define PROM_MAX_LABELS 16

typedef struct prom_series prom_series;
typedef struct prom_family prom_family;
typedef struct prom_set prom_set;

/* The compat buckets: 0.05 .. 60 (+Inf is implicit). */
extern const double prom_default_buckets[10];
#define PROM_DEFAULT_NBUCKETS 10

/* max_series: the cap for capped families (>= 1). */
prom_set *prom_set_new(size_t max_series);
void prom_set_free(prom_set *set);

/* A family; `name` is the sample name (counters end in "_total": a counter
 * name without it gets it appended). label_names: nlabels entries in the
 * order the caller passes values. capped: label values come from outside
 * (workers, other plugins) and are subject to the cap. buckets: finite,
 * strictly increasing upper bounds (NULL = the defaults). Returns NULL on
 * ENOMEM or when the name is taken. */
prom_family *prom_set_add_family(prom_set *set, const char *name,
                                 const char *help, prom_type type,
                                 size_t nlabels, const char *const *label_names,
                                 const double *buckets, size_t nbuckets,
                                 bool capped);
prom_family *prom_set_find(const prom_set *set, const char *name);
size_t prom_set_family_count(const prom_set *set);

/* The series counting folded samples: pyoco_metrics_label_overflow_total
 * {family}. Set once after creating that family (may stay NULL). */
void prom_set_overflow_family(prom_set *set, prom_family *fam);

/* The series for these label values (in the family's label order; NULL
 * entries count as ""), created on first use. In a capped family that
 * already holds max_series series, a new label set folds into one series
 * whose every label value is "__overflow__", and the fold is counted.
 * NULL only on ENOMEM. */
prom_series *prom_family_series(prom_set *set, prom_family *fam,
                                const char *const *values);

void prom_series_add(prom_series *s, double v);
void prom_series_set(prom_series *s, double v);
void prom_series_observe(prom_series *s, double v);

/* An opaque tag the owner attaches to a family (e.g. who created it). */
void prom_family_set_tag(prom_family *fam, int tag);
int prom_family_tag(const prom_family *fam);

prom_type prom_family_type(const prom_family *fam);
const char *prom_family_name(const prom_family *fam);
size_t prom_family_nlabels(const prom_family *fam);
const char *prom_family_label_name(const prom_family *fam, size_t i);
size_t prom_family_series_count(const prom_family *fam);
bool prom_family_is_capped(const prom_family *fam);
double prom_series_value(const prom_series *s);
uint64_t prom_series_count(const prom_series *s);
double prom_series_sum(const prom_series *s);

/* Appends every family (HELP, TYPE, samples) in creation order; for
 * OpenMetrics counters are declared without "_total" and "# EOF" ends the
 * text. Check b->failed afterwards. */
void prom_set_render(prom_set *set, prom_buf *b, prom_format fmt);

#endif
