/* CUnit tests of the prometheus plugin: number formatting, escaping, name
 * rules, histogram folding, label order, the cardinality cap, text and
 * OpenMetrics rendering, and the whole plugin driven through a mock host
 * (events in, /metrics out). */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_host.h"
#include "prom_family.h"
#include "prom_text.h"

const pyoco_plugin_desc *pyoco_plugin_entry(void);

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

/* Well-formed UTF-8 per RFC 3629 (an independent, simple checker). */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        static const unsigned min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
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

static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

#define ASSERT_LINE(text, line)                                                \
    do {                                                                       \
        if (!has_line(text, line))                                             \
            fprintf(stderr, "\nmissing line: %s\n--- in:\n%s---\n", line,      \
                    text);                                                     \
        CU_ASSERT_TRUE(has_line(text, line));                                  \
    } while (0)

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
        CU_ASSERT_TRUE(valid_utf8((const unsigned char *)got, strlen(got)));
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
        CU_ASSERT_TRUE(valid_utf8((const unsigned char *)got, len));
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

/* ---- families --------------------------------------------------------------
 */

/* The golden lifecycle's compat families, as the reference prints them
 * (without the optional _created series). */
static const char golden[] =
    "# HELP pyoco_runs_total Total runs observed by status transitions.\n"
    "# TYPE pyoco_runs_total counter\n"
    "pyoco_runs_total{status=\"PENDING\"} 1.0\n"
    "pyoco_runs_total{status=\"RUNNING\"} 1.0\n"
    "pyoco_runs_total{status=\"COMPLETED\"} 1.0\n"
    "# HELP pyoco_runs_in_progress Number of runs currently executing "
    "(RUNNING).\n"
    "# TYPE pyoco_runs_in_progress gauge\n"
    "pyoco_runs_in_progress 0.0\n"
    "# HELP pyoco_task_duration_seconds Observed task durations.\n"
    "# TYPE pyoco_task_duration_seconds histogram\n"
    "pyoco_task_duration_seconds_bucket{le=\"0.05\",task=\"t1\"} 0.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"0.1\",task=\"t1\"} 0.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"0.25\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"0.5\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"1.0\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"2.5\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"5.0\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"10.0\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"30.0\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"60.0\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"+Inf\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_count{task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_sum{task=\"t1\"} 0.2\n"
    "# HELP pyoco_run_duration_seconds Observed end-to-end run durations.\n"
    "# TYPE pyoco_run_duration_seconds histogram\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"0.05\"} 0.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"0.1\"} 0.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"0.25\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"0.5\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"1.0\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"2.5\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"5.0\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"10.0\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"30.0\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"60.0\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"+Inf\"} 1.0\n"
    "pyoco_run_duration_seconds_count{flow=\"demo\"} 1.0\n"
    "pyoco_run_duration_seconds_sum{flow=\"demo\"} 0.2085275650024414\n";

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
    CU_ASSERT_STRING_EQUAL(text, golden);
    /* Cached lines: a second render is identical, and a change shows up. */
    char *again = render(set, PROM_FMT_TEXT);
    CU_ASSERT_STRING_EQUAL(again, golden);
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

/* ---- the plugin through the mock host ------------------------------------ */

static pyoco_host host;
static void *state;

static int plugin_up(const char *config_json) {
    mock_host_init(&host);
    if (config_json) {
        json_decref(host.config);
        host.config = json_loads(config_json, 0, NULL);
    }
    char err[256] = "";
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    state = NULL;
    int rc = d->init(&host, &mock_api, &state, err, sizeof(err));
    if (rc == 0)
        rc = d->start(&host, state);
    else if (getenv("MOCK_VERBOSE"))
        fprintf(stderr, "init: %s\n", err);
    return rc;
}

static void plugin_down(void) {
    const pyoco_plugin_desc *d = pyoco_plugin_entry();
    if (state) {
        CU_ASSERT_EQUAL(d->stop(&host, state), 0);
        d->fini(&host, state);
    }
    state = NULL;
    mock_host_free(&host);
}

static void publish_status(const char *flow, pyoco_run_status prev,
                           pyoco_run_status now) {
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_RUN_STATUS;
    ev.run_id = "r1";
    ev.flow_name = flow;
    ev.prev_status = prev;
    ev.status = now;
    ev.task_duration_ms = -1;
    ev.run_duration_s = -1;
    mock_publish(&host, &ev);
}

static void publish_task(const char *task, double ms) {
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_TASK_UPDATED;
    ev.task = task;
    ev.task_state = "SUCCEEDED";
    ev.task_duration_ms = ms;
    ev.run_duration_s = -1;
    mock_publish(&host, &ev);
}

static void publish_finished(const char *flow, double s) {
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_RUN_FINISHED;
    ev.flow_name = flow;
    ev.status = PYOCO_STATUS_COMPLETED;
    ev.task_duration_ms = -1;
    ev.run_duration_s = s;
    mock_publish(&host, &ev);
}

static char *scrape(const char *accept, char *ctype, size_t ctlen) {
    pyoco_request req;
    mock_get(&host, accept, &req);
    CU_ASSERT_EQUAL(req.status, 200);
    if (ctype)
        snprintf(ctype, ctlen, "%s", req.content_type);
    return req.body;
}

static void test_plugin_lifecycle(void) {
    CU_ASSERT_EQUAL_FATAL(plugin_up(NULL), 0);
    CU_ASSERT_EQUAL(host.nsubs, 1);
    CU_ASSERT_EQUAL(host.sub_kind[0], PYOCO_EV_ANY);
    CU_ASSERT_STRING_EQUAL(host.route_pattern, "/metrics");
    CU_ASSERT_TRUE(host.route_methods & PYOCO_HTTP_GET);

    /* Empty server: HELP/TYPE of every compat family, in_progress 0. */
    char ct[128];
    char *t = scrape(NULL, ct, sizeof(ct));
    CU_ASSERT_STRING_EQUAL(ct, "text/plain; version=0.0.4; charset=utf-8");
    ASSERT_LINE(t, "# TYPE pyoco_runs_total counter");
    ASSERT_LINE(t, "# TYPE pyoco_task_duration_seconds histogram");
    ASSERT_LINE(t, "pyoco_runs_in_progress 0.0");
    free(t);

    /* The golden lifecycle. */
    publish_status("demo", PYOCO_STATUS_NONE, PYOCO_STATUS_PENDING);
    publish_status("demo", PYOCO_STATUS_PENDING, PYOCO_STATUS_RUNNING);
    t = scrape(NULL, NULL, 0);
    ASSERT_LINE(t, "pyoco_runs_in_progress 1.0");
    free(t);
    publish_task("t1", 200);
    publish_task("t1", -1); /* a later update without a new duration */
    publish_status("demo", PYOCO_STATUS_RUNNING, PYOCO_STATUS_COMPLETED);
    publish_finished("demo", 0.2085275650024414);
    publish_finished("demo", -1); /* a second terminal status: no observe */

    host.stats.runs_queued = 7;
    host.stats.runs_in_memory = 12;
    t = scrape(NULL, NULL, 0);
    /* The compat part is exactly the golden text, first in the output. */
    CU_ASSERT_EQUAL(strncmp(t, golden, strlen(golden)), 0);
    ASSERT_LINE(t, "pyoco_runs_queued 7.0");
    ASSERT_LINE(t, "pyoco_runs_in_memory 12.0");
    ASSERT_LINE(t, "pyoco_bus_events_total{kind=\"run_status\"} 3.0");
    ASSERT_LINE(t, "pyoco_bus_events_total{kind=\"task_updated\"} 2.0");
    ASSERT_LINE(t, "pyoco_bus_events_total{kind=\"run_finished\"} 2.0");
    ASSERT_LINE(t, "pyoco_build_info{version=\"0.1.0\"} 1.0");
    ASSERT_LINE(t, "pyoco_plugin_info{name=\"prometheus\",version=\"1.0.0\"} "
                   "1.0");
    ASSERT_LINE(t, "# TYPE process_cpu_seconds_total counter");
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nprocess_resident_memory_bytes "));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nprocess_open_fds "));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nprocess_start_time_seconds 1"));
    free(t);

    /* OpenMetrics on request. */
    t = scrape("application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
               ct, sizeof(ct));
    CU_ASSERT_STRING_EQUAL(
        ct, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    ASSERT_LINE(t, "# TYPE pyoco_runs counter");
    ASSERT_LINE(t, "# TYPE process_cpu_seconds counter");
    ASSERT_LINE(t, "pyoco_runs_total{status=\"COMPLETED\"} 1.0");
    size_t n = strlen(t);
    CU_ASSERT_TRUE(n > 6 && strcmp(t + n - 6, "# EOF\n") == 0);
    free(t);
    plugin_down();
}

static void test_plugin_events(void) {
    CU_ASSERT_EQUAL_FATAL(plugin_up(NULL), 0);
    /* Restored RUNNING counts; leaving RUNNING for CANCELLING uncounts. */
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_RUN_RESTORED;
    ev.status = PYOCO_STATUS_RUNNING;
    ev.task_duration_ms = -1;
    ev.run_duration_s = -1;
    mock_publish(&host, &ev);
    ev.status = PYOCO_STATUS_PENDING;
    mock_publish(&host, &ev);
    publish_status("f", PYOCO_STATUS_NONE, PYOCO_STATUS_PENDING);
    publish_status("f", PYOCO_STATUS_PENDING, PYOCO_STATUS_RUNNING);
    publish_status("f", PYOCO_STATUS_RUNNING, PYOCO_STATUS_CANCELLING);
    char *t = scrape(NULL, NULL, 0);
    ASSERT_LINE(t, "pyoco_runs_in_progress 1.0");
    ASSERT_LINE(t, "pyoco_runs_total{status=\"CANCELLING\"} 1.0");
    free(t);

    /* HTTP requests by route pattern and status class. */
    pyoco_event h = {0};
    h.kind = PYOCO_EV_HTTP_REQUEST;
    h.http_method = "POST";
    h.http_route = "/runs/{run_id}/heartbeat";
    h.http_status = 200;
    mock_publish(&host, &h);
    h.http_status = 201;
    mock_publish(&host, &h);
    h.http_route = NULL;
    h.http_status = 404;
    mock_publish(&host, &h);
    h.http_route = "/runs";
    h.http_status = 503;
    mock_publish(&host, &h);

    /* Hostile task and flow names come out escaped. */
    publish_task("q\"b\\n\nx", 50);
    publish_task("\xff\xfe", 10);
    publish_finished("\xe3\x83\x95\xe3\x83\xad\xe3\x83\xbc", 3);
    t = scrape(NULL, NULL, 0);
    ASSERT_LINE(t, "pyoco_http_requests_total{code=\"2xx\",route=\"/runs/"
                   "{run_id}/heartbeat\"} 2.0");
    ASSERT_LINE(t, "pyoco_http_requests_total{code=\"4xx\",route=\"unmatched\"}"
                   " 1.0");
    ASSERT_LINE(t, "pyoco_http_requests_total{code=\"5xx\",route=\"/runs\"} "
                   "1.0");
    ASSERT_LINE(t, "pyoco_task_duration_seconds_bucket{le=\"0.05\",task=\"q\\\""
                   "b\\\\n\\nx\"} 1.0");
    ASSERT_LINE(t, "pyoco_task_duration_seconds_count{task=\"\xef\xbf\xbd\xef"
                   "\xbf\xbd\"} 1.0");
    ASSERT_LINE(t, "pyoco_run_duration_seconds_sum{flow=\"\xe3\x83\x95\xe3\x83"
                   "\xad\xe3\x83\xbc\"} 3.0");
    CU_ASSERT_TRUE(valid_utf8((const unsigned char *)t, strlen(t)));
    free(t);
    plugin_down();
}

static void metric(const char *name, pyoco_metric_type type, pyoco_metric_op op,
                   double v, size_t nl, const char *const *ln,
                   const char *const *lv, const double *b, size_t nb) {
    pyoco_metric_sample m = {0};
    m.size = sizeof(m);
    m.name = name;
    m.help = "help of "
             "x";
    m.type = type;
    m.op = op;
    m.value = v;
    m.nlabels = nl;
    m.label_names = ln;
    m.label_values = lv;
    m.buckets = b;
    m.nbuckets = nb;
    pyoco_event ev = {0};
    ev.kind = PYOCO_EV_METRIC;
    ev.metric = &m;
    ev.task_duration_ms = -1;
    ev.run_duration_s = -1;
    mock_publish(&host, &ev);
}

static void test_plugin_metrics(void) {
    CU_ASSERT_EQUAL_FATAL(plugin_up(NULL), 0);
    const char *ln[] = {"outcome", "code"};
    const char *ok[] = {"delivered", "200"};
    const char *ln2[] = {"code", "outcome"};
    const char *ok2[] = {"200", "delivered"};
    metric("pyoco_webhook_deliveries_total", PYOCO_METRIC_COUNTER,
           PYOCO_METRIC_ADD, 1, 2, ln, ok, NULL, 0);
    /* Same label set in another order is the same series. */
    metric("pyoco_webhook_deliveries_total", PYOCO_METRIC_COUNTER,
           PYOCO_METRIC_ADD, 2, 2, ln2, ok2, NULL, 0);
    /* A counter without _total is exposed with it. */
    metric("pyoco_storage_commits", PYOCO_METRIC_COUNTER, PYOCO_METRIC_ADD, 4,
           0, NULL, NULL, NULL, 0);
    metric("pyoco_webhook_pending", PYOCO_METRIC_GAUGE, PYOCO_METRIC_SET, 5, 0,
           NULL, NULL, NULL, 0);
    metric("pyoco_webhook_pending", PYOCO_METRIC_GAUGE, PYOCO_METRIC_ADD, -2, 0,
           NULL, NULL, NULL, 0);
    const double b[] = {0.001, 0.01};
    metric("pyoco_storage_commit_seconds", PYOCO_METRIC_HISTOGRAM,
           PYOCO_METRIC_OBSERVE, 0.005, 0, NULL, NULL, b, 2);
    metric("pyoco_storage_batch_seconds", PYOCO_METRIC_HISTOGRAM,
           PYOCO_METRIC_OBSERVE, 0.3, 0, NULL, NULL, NULL, 0);

    /* Rejected: type change, label change, our own names, bad input. */
    metric("pyoco_webhook_pending", PYOCO_METRIC_COUNTER, PYOCO_METRIC_ADD, 1,
           0, NULL, NULL, NULL, 0);
    metric("pyoco_webhook_deliveries_total", PYOCO_METRIC_COUNTER,
           PYOCO_METRIC_ADD, 1, 1, ln, ok, NULL, 0);
    const char *st[] = {"status"}, *sv[] = {"COMPLETED"};
    metric("pyoco_runs_total", PYOCO_METRIC_COUNTER, PYOCO_METRIC_ADD, 1, 1, st,
           sv, NULL, 0);
    metric("pyoco_runs", PYOCO_METRIC_GAUGE, PYOCO_METRIC_SET, 1, 0, NULL, NULL,
           NULL, 0);
    metric("pyoco_task_duration_seconds_sum", PYOCO_METRIC_GAUGE,
           PYOCO_METRIC_SET, 1, 0, NULL, NULL, NULL, 0);
    metric("bad-name", PYOCO_METRIC_GAUGE, PYOCO_METRIC_SET, 1, 0, NULL, NULL,
           NULL, 0);
    metric("neg_total", PYOCO_METRIC_COUNTER, PYOCO_METRIC_ADD, -1, 0, NULL,
           NULL, NULL, 0);
    metric("wrong_op", PYOCO_METRIC_HISTOGRAM, PYOCO_METRIC_SET, 1, 0, NULL,
           NULL, NULL, 0);

    char *t = scrape(NULL, NULL, 0);
    ASSERT_LINE(t, "# TYPE pyoco_webhook_deliveries_total counter");
    ASSERT_LINE(t, "# HELP pyoco_webhook_deliveries_total help of x");
    ASSERT_LINE(t, "pyoco_webhook_deliveries_total{code=\"200\",outcome="
                   "\"delivered\"} 3.0");
    ASSERT_LINE(t, "pyoco_storage_commits_total 4.0");
    ASSERT_LINE(t, "pyoco_webhook_pending 3.0");
    ASSERT_LINE(t, "pyoco_storage_commit_seconds_bucket{le=\"0.001\"} 0.0");
    ASSERT_LINE(t, "pyoco_storage_commit_seconds_bucket{le=\"0.01\"} 1.0");
    ASSERT_LINE(t, "pyoco_storage_batch_seconds_bucket{le=\"0.25\"} 0.0");
    ASSERT_LINE(t, "pyoco_storage_batch_seconds_bucket{le=\"0.5\"} 1.0");
    ASSERT_LINE(t, "pyoco_metrics_rejected_samples_total{reason="
                   "\"type_mismatch\"} 1.0");
    ASSERT_LINE(t, "pyoco_metrics_rejected_samples_total{reason="
                   "\"label_mismatch\"} 1.0");
    ASSERT_LINE(t, "pyoco_metrics_rejected_samples_total{reason="
                   "\"name_clash\"} 3.0");
    ASSERT_LINE(t, "pyoco_metrics_rejected_samples_total{reason=\"invalid\"} "
                   "3.0");
    /* The compat family was not touched. */
    CU_ASSERT_PTR_NULL(strstr(t, "pyoco_runs_total{status=\"COMPLETED\"}"));
    CU_ASSERT_PTR_NULL(strstr(t, "\npyoco_runs "));
    free(t);
    plugin_down();
}

static void test_plugin_cap_and_config(void) {
    CU_ASSERT_EQUAL_FATAL(
        plugin_up("{\"max_series_per_family\": \"2\", \"path\": \"/m\","
                  " \"buckets\": [\"0.5\", 1, \"+Inf\"]}"),
        0);
    CU_ASSERT_STRING_EQUAL(host.route_pattern, "/m");
    publish_task("a", 100);
    publish_task("b", 100);
    publish_task("c", 100);
    publish_task("d", 2000);
    publish_task("a", 700);
    char *t = scrape(NULL, NULL, 0);
    ASSERT_LINE(t, "pyoco_task_duration_seconds_bucket{le=\"0.5\",task=\"a\"}"
                   " 1.0");
    ASSERT_LINE(t, "pyoco_task_duration_seconds_bucket{le=\"1.0\",task=\"a\"}"
                   " 2.0");
    ASSERT_LINE(t, "pyoco_task_duration_seconds_bucket{le=\"+Inf\",task=\"__"
                   "overflow__\"} 2.0");
    ASSERT_LINE(t, "pyoco_task_duration_seconds_sum{task=\"__overflow__\"} "
                   "2.1");
    ASSERT_LINE(t, "pyoco_metrics_label_overflow_total{family=\"pyoco_task_"
                   "duration_seconds\"} 2.0");
    CU_ASSERT_PTR_NULL(strstr(t, "task=\"c\""));
    CU_ASSERT_PTR_NULL(strstr(t, "le=\"60.0\""));
    free(t);
    plugin_down();

    /* Bad settings fail init with a message naming the key. */
    const char *bad[] = {
        "{\"max_series_per_family\": \"0\"}",
        "{\"buckets\": [1, 0.5]}",
        "{\"buckets\": [\"x\"]}",
        "{\"buckets\": []}",
        "{\"path\": \"metrics\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mock_host_init(&host);
        json_decref(host.config);
        host.config = json_loads(bad[i], 0, NULL);
        char err[256] = "";
        void *s = NULL;
        int rc =
            pyoco_plugin_entry()->init(&host, &mock_api, &s, err, sizeof(err));
        CU_ASSERT_EQUAL(rc, -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(
            strstr(err, "pyoco.yaml:7: plugins.prometheus."));
        CU_ASSERT_EQUAL(host.nsubs, 0);
        mock_host_free(&host);
    }
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("prometheus", NULL, NULL);
    CU_add_test(s, "numbers", test_numbers);
    CU_add_test(s, "escaping", test_escaping);
    CU_add_test(s, "names", test_names);
    CU_add_test(s, "render golden", test_render_golden);
    CU_add_test(s, "histogram folding", test_histogram_folding);
    CU_add_test(s, "label order", test_label_order);
    CU_add_test(s, "cardinality cap", test_cardinality_cap);
    CU_add_test(s, "plugin lifecycle", test_plugin_lifecycle);
    CU_add_test(s, "plugin events", test_plugin_events);
    CU_add_test(s, "plugin metrics", test_plugin_metrics);
    CU_add_test(s, "plugin cap and config", test_plugin_cap_and_config);
}
