/* CUnit tests of the prometheus plugin's pure parts: number formatting,
 * escaping, name rules, histogram folding, label order, the cardinality
 * cap, text and OpenMetrics rendering of a family set. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_test_util.h"
#include "prom_family.h"
#include "prom_text.h"

/* ---- helpers ------------------------------------------------------------ */

static char *fmt(double v) {
    static char out[PROM_NUM_MAX];
    size_t n = prom_fmt_double(out, v);
    CU_ASSERT_EQUAL(n, strlen(out));
    return out;
}

static char *esc(const char *s, size_t len) {
    static char out[4096];
    prom_buf b;
    prom_buf_init(&b);
    prom_escape_label(&b, s, len);
    CU_ASSERT_FALSE(b.failed);
    snprintf(out, sizeof(out), "%.*s", (int)b.len, b.data ? b.data : "");
    prom_buf_free(&b);
    return out;
}

static char *render(prom_set *set, prom_format f) {
    prom_buf b;
    prom_buf_init(&b);
    prom_set_render(set, &b, f);
    CU_ASSERT_FALSE(b.failed);
    char *s = prom_buf_strdup(&b);
    prom_buf_free(&b);
    return s;
}

/* ---- numbers ------------------------------------------------------------- */

static void test_numbers(void) {
    CU_ASSERT_STRING_EQUAL(fmt(1), "1.0");
    CU_ASSERT_STRING_EQUAL(fmt(0), "0.0");
    CU_ASSERT_STRING_EQUAL(fmt(-3), "-3.0");
    CU_ASSERT_STRING_EQUAL(fmt(0.05), "0.05");
    CU_ASSERT_STRING_EQUAL(fmt(0.1), "0.1");
    CU_ASSERT_STRING_EQUAL(fmt(0.2), "0.2");
    CU_ASSERT_STRING_EQUAL(fmt(2.5), "2.5");
    CU_ASSERT_STRING_EQUAL(fmt(60), "60.0");
    CU_ASSERT_STRING_EQUAL(fmt(0.2085275650024414), "0.2085275650024414");
    CU_ASSERT_STRING_EQUAL(fmt(0.1 + 0.2), "0.30000000000000004");
    CU_ASSERT_STRING_EQUAL(fmt(1e20), "1e+20");
    CU_ASSERT_STRING_EQUAL(fmt(1.5e-7), "1.5e-07");
    CU_ASSERT_STRING_EQUAL(fmt(INFINITY), "+Inf");
    CU_ASSERT_STRING_EQUAL(fmt(-INFINITY), "-Inf");
    CU_ASSERT_STRING_EQUAL(fmt(NAN), "NaN");
    CU_ASSERT_STRING_EQUAL(fmt(-0.0), "-0.0");
    CU_ASSERT_STRING_EQUAL(fmt(9007199254740992.0), "9007199254740992.0");
    /* Every value reads back exactly. */
    unsigned seed = 12345;
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = 0;
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            bits = (bits << 16) | ((seed >> 8) & 0xFFFF);
        }
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (!isfinite(v))
            continue;
        char *s = fmt(v);
        CU_ASSERT_EQUAL(strtod(s, NULL), v);
        CU_ASSERT_PTR_NOT_NULL(strpbrk(s, ".e"));
    }
    char out[PROM_NUM_MAX];
    prom_fmt_count(out, 0);
    CU_ASSERT_STRING_EQUAL(out, "0.0");
    prom_fmt_count(out, UINT64_MAX);
    CU_ASSERT_STRING_EQUAL(out, "18446744073709551615.0");
}

/* ---- escaping ------------------------------------------------------------ */

static void test_escaping(void) {
    CU_ASSERT_STRING_EQUAL(esc("t1", 2), "t1");
    const char *hostile = "a\"b\\c\nd";
    CU_ASSERT_STRING_EQUAL(esc(hostile, strlen(hostile)), "a\\\"b\\\\c\\nd");
    /* Well-formed non-ASCII passes through untouched. */
    const char *jp =
        "\xe3\x82\xbf\xe3\x82\xb9\xe3\x82\xaf \xc3\xa9 \xf0\x9f\x8e\x89";
    CU_ASSERT_STRING_EQUAL(esc(jp, strlen(jp)), jp);
    /* Malformed bytes become U+FFFD, one per bad byte. */
    struct {
        const char *in;
        const char *out;
    } bad[] = {
        {"\xff", "\xef\xbf\xbd"},
        {"x\xc3", "x\xef\xbf\xbd"},               /* truncated */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong */
        {"\xed\xa0\x80",
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xf4\x90\x80\x80",
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
        {"a\x80"
         "b",
         "a\xef\xbf\xbd"
         "b"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *got = esc(bad[i].in, strlen(bad[i].in));
        CU_ASSERT_STRING_EQUAL(got, bad[i].out);
        CU_ASSERT_TRUE(
            prom_valid_utf8((const unsigned char *)got, strlen(got)));
    }
    /* Random bytes always come out as valid UTF-8 without a raw newline or
     * an unescaped quote. */
    unsigned seed = 7;
    for (int round = 0; round < 2000; round++) {
        char in[64];
        size_t n = 1 + round % 63;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)((seed >> 16) & 0xFF);
            if (!in[i])
                in[i] = '"';
        }
        char *got = esc(in, n);
        size_t len = strlen(got);
        CU_ASSERT_TRUE(prom_valid_utf8((const unsigned char *)got, len));
        CU_ASSERT_PTR_NULL(memchr(got, '\n', len));
        for (size_t i = 0; i < len; i++)
            if (got[i] == '\\') {
                CU_ASSERT_TRUE(got[i + 1] == '\\' || got[i + 1] == '"' ||
                               got[i + 1] == 'n');
                i++;
            } else {
                CU_ASSERT_NOT_EQUAL(got[i], '"');
            }
    }
    /* HELP: text 0.0.4 leaves quotes alone, OpenMetrics escapes them. */
    prom_buf b;
    prom_buf_init(&b);
    prom_escape_help(&b, "a\"b\\\n", 5, false);
    CU_ASSERT_EQUAL(b.len, strlen("a\"b\\\\\\n"));
    CU_ASSERT_NSTRING_EQUAL(b.data, "a\"b\\\\\\n", b.len);
    prom_buf_reset(&b);
    prom_escape_help(&b, "a\"b", 3, true);
    CU_ASSERT_NSTRING_EQUAL(b.data, "a\\\"b", b.len);
    prom_buf_free(&b);
}

static void test_names(void) {
    CU_ASSERT_TRUE(prom_valid_metric_name("pyoco_runs_total"));
    CU_ASSERT_TRUE(prom_valid_metric_name("a:b_c9"));
    CU_ASSERT_FALSE(prom_valid_metric_name("9abc"));
    CU_ASSERT_FALSE(prom_valid_metric_name("a-b"));
    CU_ASSERT_FALSE(prom_valid_metric_name(""));
    CU_ASSERT_FALSE(prom_valid_metric_name(NULL));
    CU_ASSERT_TRUE(prom_valid_label_name("task"));
    CU_ASSERT_FALSE(prom_valid_label_name("a:b"));
    CU_ASSERT_FALSE(prom_valid_label_name("__name__"));
    CU_ASSERT_FALSE(prom_valid_label_name("x y"));
}

static void test_render_golden(void) {
    prom_set *set = prom_set_new(1000);
    const char *st[] = {"status"}, *tk[] = {"task"}, *fl[] = {"flow"};
    prom_family *runs = prom_set_add_family(
        set, "pyoco_runs_total", "Total runs observed by status transitions.",
        PROM_COUNTER, 1, st, NULL, 0, false);
    prom_family *prog =
        prom_set_add_family(set, "pyoco_runs_in_progress",
                            "Number of runs currently executing (RUNNING).",
                            PROM_GAUGE, 0, NULL, NULL, 0, false);
    prom_family *task = prom_set_add_family(
        set, "pyoco_task_duration_seconds", "Observed task durations.",
        PROM_HISTOGRAM, 1, tk, NULL, 0, true);
    prom_family *run = prom_set_add_family(
        set, "pyoco_run_duration_seconds", "Observed end-to-end run durations.",
        PROM_HISTOGRAM, 1, fl, prom_default_buckets, 10, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(runs && prog && task && run);
    /* Same name twice is refused. */
    CU_ASSERT_PTR_NULL(prom_set_add_family(set, "pyoco_runs_in_progress", "",
                                           PROM_GAUGE, 0, NULL, NULL, 0,
                                           false));
    const char *v[1];
    v[0] = "PENDING";
    prom_series_add(prom_family_series(set, runs, v), 1);
    prom_series *p = prom_family_series(set, prog, NULL);
    prom_series_add(p, 1);
    v[0] = "RUNNING";
    prom_series_add(prom_family_series(set, runs, v), 1);
    v[0] = "t1";
    prom_series_observe(prom_family_series(set, task, v), 0.2);
    v[0] = "COMPLETED";
    prom_series_add(prom_family_series(set, runs, v), 1);
    prom_series_add(p, -1);
    v[0] = "demo";
    prom_series_observe(prom_family_series(set, run, v), 0.2085275650024414);

    char *text = render(set, PROM_FMT_TEXT);
    CU_ASSERT_STRING_EQUAL(text, prom_golden);
    /* Cached lines: a second render is identical, and a change shows up. */
    char *again = render(set, PROM_FMT_TEXT);
    CU_ASSERT_STRING_EQUAL(again, prom_golden);
    prom_series_add(p, 2);
    char *changed = render(set, PROM_FMT_TEXT);
    ASSERT_LINE(changed, "pyoco_runs_in_progress 2.0");

    char *om = render(set, PROM_FMT_OPENMETRICS);
    ASSERT_LINE(om, "# TYPE pyoco_runs counter");
    ASSERT_LINE(om, "# HELP pyoco_runs Total runs observed by status "
                    "transitions.");
    ASSERT_LINE(om, "pyoco_runs_total{status=\"PENDING\"} 1.0");
    ASSERT_LINE(om, "# TYPE pyoco_task_duration_seconds histogram");
    CU_ASSERT_PTR_NULL(strstr(om, "# TYPE pyoco_runs_total"));
    size_t n = strlen(om);
    CU_ASSERT_TRUE(n > 6 && strcmp(om + n - 6, "# EOF\n") == 0);
    CU_ASSERT_PTR_NULL(strstr(text, "# EOF"));
    free(text);
    free(again);
    free(changed);
    free(om);
    prom_set_free(set);
}

static void test_histogram_folding(void) {
    prom_set *set = prom_set_new(10);
    const double b[] = {1, 2, 5};
    prom_family *h = prom_set_add_family(set, "x_seconds", "h", PROM_HISTOGRAM,
                                         0, NULL, b, 3, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    prom_series *s = prom_family_series(set, h, NULL);
    /* A value equal to a bound belongs to that bucket (le = "<="). */
    const double obs[] = {0.5, 1, 1.5, 2, 4.99, 5, 7, 100};
    double sum = 0;
    for (size_t i = 0; i < 8; i++) {
        prom_series_observe(s, obs[i]);
        sum += obs[i];
    }
    CU_ASSERT_EQUAL(prom_series_count(s), 8);
    CU_ASSERT_DOUBLE_EQUAL(prom_series_sum(s), sum, 1e-12);
    char *t = render(set, PROM_FMT_TEXT);
    ASSERT_LINE(t, "x_seconds_bucket{le=\"1.0\"} 2.0");
    ASSERT_LINE(t, "x_seconds_bucket{le=\"2.0\"} 4.0");
    ASSERT_LINE(t, "x_seconds_bucket{le=\"5.0\"} 6.0");
    ASSERT_LINE(t, "x_seconds_bucket{le=\"+Inf\"} 8.0");
    ASSERT_LINE(t, "x_seconds_count 8.0");
    char line[64];
    snprintf(line, sizeof(line), "x_seconds_sum %s", fmt(sum));
    ASSERT_LINE(t, line);
    free(t);
    /* Bad bucket lists are refused. */
    const double dec[] = {1, 0.5};
    const double inf[] = {1, INFINITY};
    CU_ASSERT_PTR_NULL(prom_set_add_family(set, "y", "", PROM_HISTOGRAM, 0,
                                           NULL, dec, 2, false));
    CU_ASSERT_PTR_NULL(prom_set_add_family(set, "z", "", PROM_HISTOGRAM, 0,
                                           NULL, inf, 2, false));
    const char *le[] = {"le"};
    CU_ASSERT_PTR_NULL(prom_set_add_family(set, "w", "", PROM_HISTOGRAM, 1, le,
                                           NULL, 0, false));
    prom_set_free(set);
}

static void test_label_order(void) {
    prom_set *set = prom_set_new(10);
    const char *http[] = {"route", "code"};
    prom_family *c = prom_set_add_family(set, "req", "r", PROM_COUNTER, 2, http,
                                         NULL, 0, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(prom_family_name(c), "req_total");
    const char *v[] = {"/runs", "2xx"};
    prom_series_add(prom_family_series(set, c, v), 3);
    const char *zl[] = {"zone", "a"};
    const double b[] = {1};
    prom_family *h = prom_set_add_family(set, "lat", "l", PROM_HISTOGRAM, 2, zl,
                                         b, 1, false);
    const char *hv[] = {"z\"1", "a1"};
    prom_series_observe(prom_family_series(set, h, hv), 0.5);
    const char *dup[] = {"a", "a"};
    CU_ASSERT_PTR_NULL(
        prom_set_add_family(set, "d", "", PROM_GAUGE, 2, dup, NULL, 0, false));
    char *t = render(set, PROM_FMT_TEXT);
    ASSERT_LINE(t, "req_total{code=\"2xx\",route=\"/runs\"} 3.0");
    ASSERT_LINE(t, "lat_bucket{a=\"a1\",le=\"1.0\",zone=\"z\\\"1\"} 1.0");
    ASSERT_LINE(t, "lat_bucket{a=\"a1\",le=\"+Inf\",zone=\"z\\\"1\"} 1.0");
    ASSERT_LINE(t, "lat_count{a=\"a1\",zone=\"z\\\"1\"} 1.0");
    ASSERT_LINE(t, "lat_sum{a=\"a1\",zone=\"z\\\"1\"} 0.5");
    free(t);
    prom_set_free(set);
}

static void test_cardinality_cap(void) {
    prom_set *set = prom_set_new(3);
    const char *tk[] = {"task"}, *fm[] = {"family"};
    prom_family *h = prom_set_add_family(set, "task_seconds", "t",
                                         PROM_HISTOGRAM, 1, tk, NULL, 0, true);
    prom_family *u = prom_set_add_family(set, "uncapped", "u", PROM_GAUGE, 1,
                                         tk, NULL, 0, false);
    prom_family *o = prom_set_add_family(set, "overflow_total", "o",
                                         PROM_COUNTER, 1, fm, NULL, 0, false);
    prom_set_overflow_family(set, o);
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        const char *v[] = {name};
        prom_series_observe(prom_family_series(set, h, v), 1);
        prom_series_set(prom_family_series(set, u, v), i);
    }
    /* Known series keep counting after the cap is reached. */
    const char *t0[] = {"t0"};
    prom_series_observe(prom_family_series(set, h, t0), 1);
    CU_ASSERT_EQUAL(prom_family_series_count(h), 4); /* 3 + __overflow__ */
    CU_ASSERT_EQUAL(prom_family_series_count(u), 10);
    char *t = render(set, PROM_FMT_TEXT);
    ASSERT_LINE(t, "task_seconds_count{task=\"t0\"} 2.0");
    ASSERT_LINE(t, "task_seconds_count{task=\"t2\"} 1.0");
    ASSERT_LINE(t, "task_seconds_count{task=\"__overflow__\"} 7.0");
    CU_ASSERT_PTR_NULL(strstr(t, "task_seconds_count{task=\"t3\""));
    ASSERT_LINE(t, "overflow_total{family=\"task_seconds\"} 7.0");
    ASSERT_LINE(t, "uncapped{task=\"t9\"} 9.0");
    free(t);
    prom_set_free(set);

    /* A worker naming a task "__overflow__" before the cap: one series. */
    set = prom_set_new(2);
    h = prom_set_add_family(set, "c", "", PROM_COUNTER, 1, tk, NULL, 0, true);
    const char *a[] = {"__overflow__"}, *b[] = {"b"}, *c[] = {"c"};
    prom_series_add(prom_family_series(set, h, a), 1);
    prom_series_add(prom_family_series(set, h, b), 1);
    prom_series_add(prom_family_series(set, h, c), 1);
    t = render(set, PROM_FMT_TEXT);
    ASSERT_LINE(t, "c_total{task=\"__overflow__\"} 2.0");
    CU_ASSERT_EQUAL(prom_family_series_count(h), 2);
    free(t);
    prom_set_free(set);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("prometheus text and families", NULL, NULL);
    CU_add_test(s, "numbers", test_numbers);
    CU_add_test(s, "escaping", test_escaping);
    CU_add_test(s, "names", test_names);
    CU_add_test(s, "render golden", test_render_golden);
    CU_add_test(s, "histogram folding", test_histogram_folding);
    CU_add_test(s, "label order", test_label_order);
    CU_add_test(s, "cardinality cap", test_cardinality_cap);
}
