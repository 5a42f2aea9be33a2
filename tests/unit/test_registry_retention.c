/* Registry retention and scale: the oldest terminal run is evicted (event
 * while still readable, archive file = its GET object), non-terminal runs
 * never are; 200 000 queued runs plus 1 000 completions and a 1 000 000-run
 * FIFO drain finish inside the ctest timeout (this catches O(n^2) paths;
 * no timing assertion). */
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test_registry_fixture.h"

#define HB_DONE "{\"run_status\":\"COMPLETED\",\"task_states\":{}}"

/* On RUN_EVICTED: the run must still be readable; keep its GET object. */
typedef struct evict_probe {
    pyoco_registry **reg;
    json_t *seen[8];
    int n;
} evict_probe;

static void on_evicted(const pyoco_event *ev, void *ud) {
    evict_probe *p = ud;
    json_t *o = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_get(*p->reg, ev->run_id, &o), 0);
    if (p->n < 8)
        p->seen[p->n++] = o;
    else
        json_decref(o);
}

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pyoco-reg-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpdir));
}

static void rm_rf(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static json_t *load_archive(const char *dir, const char *id) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    json_error_t err;
    return json_load_file(path, 0, &err);
}

static void test_evicts_oldest_terminal_and_archives(void) {
    make_tmpdir();
    char dir[300];
    snprintf(dir, sizeof dir, "%s/a/b", tmpdir); /* created on demand */
    fixture *f = fx_new_cfg(3, 1048576, dir);
    evict_probe probe = {.reg = &f->reg};
    pyoco_bus_subscribe(f->bus, PYOCO_EV_RUN_EVICTED, on_evicted, &probe, NULL,
                        NULL);
    char a[37], b[37], c[37], d[37], e[37];
    fx_submit(f, "f", "{\"x\": 2.0}", NULL, a);
    fx_submit(f, "f", NULL, NULL, b);
    fx_submit(f, "f", NULL, NULL, c);
    fx_submit(f, "f", NULL, NULL, d); /* 4 > 3 but nothing is terminal */
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_EVICTED), 0);

    /* c finishes: it is the only terminal run, so it goes */
    CU_ASSERT_EQUAL(
        fx_hb(f, c,
              "{\"run_status\":\"COMPLETED\",\"task_states\":{\"t\":"
              "\"SUCCEEDED\"},"
              "\"task_records\":{\"t\":{\"duration_ms\":1.0,\"ended_at\":3.0}},"
              "\"logs\":[{\"task\":\"t\",\"text\":\"hi\"}]}",
              NULL),
        0);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_EVICTED), 1);
    int k = fx_find(f, PYOCO_EV_RUN_EVICTED, 0);
    CU_ASSERT_STRING_EQUAL(f->ev[k].run_id, c);
    CU_ASSERT_EQUAL(f->ev[k].status, PYOCO_STATUS_COMPLETED);
    /* it came after the run's own finish events */
    CU_ASSERT_TRUE(k > fx_find(f, PYOCO_EV_RUN_FINISHED, 0));
    CU_ASSERT_EQUAL_FATAL(probe.n, 1);
    json_t *o = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_get(f->reg, c, &o), -ENOENT);

    /* b then a finish: a is the oldest submitted, so a new submit evicts a */
    CU_ASSERT_EQUAL(fx_hb(f, b, HB_DONE, NULL), 0);
    CU_ASSERT_EQUAL(fx_hb(f, a, HB_DONE, NULL), 0);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_EVICTED), 1); /* 3 in memory */
    fx_submit(f, "f", NULL, NULL, e);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_EVICTED), 2);
    CU_ASSERT_STRING_EQUAL(f->ev[fx_find(f, PYOCO_EV_RUN_EVICTED, 1)].run_id,
                           a);
    CU_ASSERT_EQUAL(pyoco_registry_get(f->reg, a, &o), -ENOENT);
    CU_ASSERT_EQUAL(pyoco_registry_get(f->reg, b, &o), 0);
    json_decref(o);
    pyoco_registry_stats st = {.size = sizeof st};
    pyoco_registry_get_stats(f->reg, &st);
    CU_ASSERT_EQUAL(st.runs_in_memory, 3);
    CU_ASSERT_EQUAL(st.runs_evicted, 2);
    CU_ASSERT_EQUAL(st.runs_by_status[PYOCO_STATUS_COMPLETED], 1);

    /* the archive files are the GET objects, pretty-printed */
    pyoco_registry_archive_flush(f->reg);
    CU_ASSERT_EQUAL(pyoco_registry_archive_errors(f->reg), 0);
    const char *ids[] = {c, a};
    for (int i = 0; i < 2; i++) {
        json_t *file = load_archive(dir, ids[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(file);
        CU_ASSERT_TRUE(json_equal(file, probe.seen[i]));
        char *x = json_dumps(file, JSON_COMPACT);
        char *y = json_dumps(probe.seen[i], JSON_COMPACT);
        CU_ASSERT_STRING_EQUAL(x, y); /* key order and 2.0 kept */
        free(x);
        free(y);
        json_decref(file);
    }
    json_t *fc = load_archive(dir, c);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(
            json_array_get(json_object_get(fc, "logs"), 0), "text")),
        "hi");
    json_decref(fc);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", dir, c);
    FILE *fp = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    char head[16] = {0};
    CU_ASSERT_TRUE(fread(head, 1, 5, fp) > 0);
    fclose(fp);
    CU_ASSERT_EQUAL(strncmp(head, "{\n  \"", 5), 0);
    for (int i = 0; i < probe.n; i++)
        json_decref(probe.seen[i]);
    fx_free(f);
    rm_rf(tmpdir);
}

static void test_never_evicts_non_terminal(void) {
    fixture *f = fx_new_cfg(2, 1048576, NULL);
    char ids[6][37];
    for (int i = 0; i < 6; i++)
        fx_submit(f, "f", NULL, NULL, ids[i]);
    fx_poll(f, "w", NULL);
    CU_ASSERT_EQUAL(fx_hb(f, ids[0],
                          "{\"run_status\":\"RUNNING\",\"task_states\":{}}",
                          NULL),
                    0);
    CU_ASSERT_EQUAL(pyoco_registry_cancel(f->reg, ids[1]), 0);
    fx_submit(f, "f", NULL, NULL, ids[5]);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_EVICTED), 0);
    pyoco_registry_stats st = {.size = sizeof st};
    pyoco_registry_get_stats(f->reg, &st);
    CU_ASSERT_EQUAL(st.runs_in_memory, 7);
    /* one finishes: it alone goes; the rest stay above the limit */
    CU_ASSERT_EQUAL(fx_hb(f, ids[3], HB_DONE, NULL), 0);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_EVICTED), 1);
    /* a run that went back from terminal to RUNNING is not terminal */
    CU_ASSERT_EQUAL(fx_hb(f, ids[4], HB_DONE, NULL), 0);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_EVICTED), 2);
    pyoco_registry_get_stats(f->reg, &st);
    CU_ASSERT_EQUAL(st.runs_in_memory, 5);
    CU_ASSERT_EQUAL(st.runs_evicted, 2);
    fx_free(f);

    /* terminal -> RUNNING -> still not evictable */
    f = fx_new_cfg(1, 1048576, NULL);
    char x[37], y[37];
    fx_submit(f, "f", NULL, NULL, x);
    CU_ASSERT_EQUAL(fx_hb(f, x, HB_DONE, NULL), 0);
    CU_ASSERT_EQUAL(
        fx_hb(f, x, "{\"run_status\":\"RUNNING\",\"task_states\":{}}", NULL),
        0);
    fx_submit(f, "f", NULL, NULL, y);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_EVICTED), 0);
    fx_free(f);
}

static void test_archive_errors_counted(void) {
    make_tmpdir();
    char file[300], dir[320];
    snprintf(file, sizeof file, "%s/file", tmpdir);
    FILE *fp = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fclose(fp);
    snprintf(dir, sizeof dir, "%s/sub", file); /* under a regular file */
    fixture *f = fx_new_cfg(1, 1048576, dir);
    char a[37];
    fx_submit(f, "f", NULL, NULL, a);
    CU_ASSERT_EQUAL(fx_hb(f, a, HB_DONE, NULL), 0);
    fx_submit(f, "f", NULL, NULL, a);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_EVICTED), 1);
    pyoco_registry_archive_flush(f->reg);
    CU_ASSERT_EQUAL(pyoco_registry_archive_errors(f->reg), 1);
    fx_free(f);
    rm_rf(tmpdir);
}

/* Subscribers that call back into the registry while it publishes. */
typedef struct reenter {
    fixture *f;
    int left; /* how many more times to act */
    char made[4][37];
    int nmade;
} reenter;

static void submit_and_finish(reenter *re) {
    char id[37];
    if (re->left-- <= 0)
        return;
    fx_submit(re->f, "nested", NULL, NULL, id);
    CU_ASSERT_EQUAL(fx_hb(re->f, id, HB_DONE, NULL), 0);
    if (re->nmade < 4)
        memcpy(re->made[re->nmade++], id, 37);
}

static void on_finished_submit(const pyoco_event *ev, void *ud) {
    reenter *re = ud;
    char id[37];
    (void)ev;
    if (re->left-- > 0) {
        fx_submit(re->f, "follow-up", NULL, NULL, id);
        memcpy(re->made[re->nmade++], id, 37);
    }
}

static void on_assigned_finish(const pyoco_event *ev, void *ud) {
    reenter *re = ud;
    if (re->left <= 0)
        return;
    /* the worker's heartbeat "arrives" during the assignment event */
    CU_ASSERT_EQUAL(fx_hb(re->f, ev->run_id, HB_DONE, NULL), 0);
    submit_and_finish(re);
}

static void on_evicted_submit(const pyoco_event *ev, void *ud) {
    (void)ev;
    submit_and_finish(ud);
}

static void test_reentrant_subscribers(void) {
    /* RUN_FINISHED -> submit: the finishing run is evicted only after its
     * own heartbeat is done with it */
    fixture *f = fx_new_cfg(1, 1048576, NULL);
    reenter re = {.f = f, .left = 1};
    pyoco_bus_subscribe(f->bus, PYOCO_EV_RUN_FINISHED, on_finished_submit, &re,
                        NULL, NULL);
    char a[37];
    fx_submit(f, "f", NULL, NULL, a);
    bool cancel = true;
    CU_ASSERT_EQUAL(fx_hb(f, a, HB_DONE, &cancel), 0);
    CU_ASSERT_FALSE(cancel);
    CU_ASSERT_EQUAL(re.nmade, 1);
    json_t *o = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_get(f->reg, a, &o), -ENOENT);
    CU_ASSERT_EQUAL(pyoco_registry_get(f->reg, re.made[0], &o), 0);
    json_decref(o);
    int fin = fx_find(f, PYOCO_EV_RUN_FINISHED, 0);
    int ev = fx_find(f, PYOCO_EV_RUN_EVICTED, 0);
    CU_ASSERT_TRUE(fin >= 0 && ev > fin);
    CU_ASSERT_STRING_EQUAL(f->ev[ev].run_id, a);
    fx_free(f);

    /* RUN_ASSIGNED -> the run finishes and another run finishes: the poll
     * still answers with the run it handed out */
    f = fx_new_cfg(1, 1048576, NULL);
    re = (reenter){.f = f, .left = 1};
    pyoco_bus_subscribe(f->bus, PYOCO_EV_RUN_ASSIGNED, on_assigned_finish, &re,
                        NULL, NULL);
    fx_submit(f, "f", NULL, NULL, a);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w", NULL), a);
    pyoco_registry_stats st = {.size = sizeof st};
    pyoco_registry_get_stats(f->reg, &st);
    CU_ASSERT_EQUAL(st.runs_in_memory, 1);
    CU_ASSERT_EQUAL(st.runs_evicted, 1);
    fx_free(f);

    /* RUN_EVICTED -> submit and finish more runs: nested retention waits
     * for the outer loop, which still ends within the limit */
    f = fx_new_cfg(2, 1048576, NULL);
    re = (reenter){.f = f, .left = 3};
    pyoco_bus_subscribe(f->bus, PYOCO_EV_RUN_EVICTED, on_evicted_submit, &re,
                        NULL, NULL);
    char ids[3][37];
    for (int i = 0; i < 3; i++) {
        fx_submit(f, "f", NULL, NULL, ids[i]);
        CU_ASSERT_EQUAL(fx_hb(f, ids[i], HB_DONE, NULL), 0);
    }
    pyoco_registry_get_stats(f->reg, &st);
    CU_ASSERT_EQUAL(st.runs_in_memory, 2);
    CU_ASSERT_EQUAL(st.runs_evicted, 4); /* 6 runs, all terminal */
    CU_ASSERT_EQUAL(re.nmade, 3);
    fx_free(f);
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_scale_queued_plus_completing(void) {
    fixture *f = fx_new_cfg(50, 1048576, NULL);
    f->record = 0;
    double t0 = mono();
    char id[37];
    for (int i = 0; i < 200000; i++) {
        fake_now += 0.001;
        fx_submit(f, "bulk", NULL, i % 3 ? NULL : "[\"gpu\"]", id);
    }
    for (int i = 0; i < 1000; i++) {
        fake_now += 0.001;
        fx_submit(f, "quick", NULL, NULL, id);
        CU_ASSERT_EQUAL(fx_hb(f, id, HB_DONE, NULL), 0);
    }
    pyoco_registry_stats st = {.size = sizeof st};
    pyoco_registry_get_stats(f->reg, &st);
    CU_ASSERT_EQUAL(st.runs_in_memory, 200000);
    CU_ASSERT_EQUAL(st.runs_queued, 200000);
    CU_ASSERT_EQUAL(st.runs_evicted, 1000);
    CU_ASSERT_EQUAL(st.runs_by_status[PYOCO_STATUS_PENDING], 200000);
    /* list walks from the newest and stops at the limit */
    json_t *l = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_list(f->reg, "PENDING", "bulk", 5, &l), 0);
    CU_ASSERT_EQUAL(json_array_size(l), 5);
    json_decref(l);
    fprintf(stderr, "\n  200k queued + 1k completing: %.2fs\n", mono() - t0);
    fx_free(f);
}

static void test_scale_million_fifo(void) {
    enum { N = 1000000 };
    fixture *f = fx_new_cfg(50, 1048576, NULL);
    f->record = 0;
    char(*ids)[37] = malloc((size_t)N * 37);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    double t0 = mono();
    for (int i = 0; i < N; i++) {
        fake_now += 0.0001;
        CU_ASSERT_EQUAL_FATAL(
            pyoco_registry_submit(f->reg, "bulk", NULL, NULL, ids[i]), 0);
    }
    double t1 = mono();
    int bad = 0;
    for (int i = 0; i < N; i++) {
        json_t *out = NULL;
        pyoco_registry_poll(f->reg, "w", NULL, &out);
        const char *got = json_string_value(json_object_get(out, "run_id"));
        bad += !got || strcmp(got, ids[i]) != 0;
        json_decref(out);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w", NULL), "");
    pyoco_registry_stats st = {.size = sizeof st};
    pyoco_registry_get_stats(f->reg, &st);
    CU_ASSERT_EQUAL(st.runs_queued, 0);
    CU_ASSERT_EQUAL(st.runs_in_memory, N);
    fprintf(stderr, "  1M submit %.2fs, drain %.2fs\n", t1 - t0, mono() - t1);
    free(ids);
    fx_free(f);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("registry retention", NULL, NULL);
    CU_add_test(s, "evicts the oldest terminal run, archive file",
                test_evicts_oldest_terminal_and_archives);
    CU_add_test(s, "never evicts non-terminal runs",
                test_never_evicts_non_terminal);
    CU_add_test(s, "archive errors counted", test_archive_errors_counted);
    CU_add_test(s, "subscribers calling back in", test_reentrant_subscribers);
    CU_add_test(s, "200k queued + 1k completing",
                test_scale_queued_plus_completing);
    CU_add_test(s, "1M-run queue drains in FIFO order",
                test_scale_million_fifo);
}
