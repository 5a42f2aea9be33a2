/* Stuck runs: assignment lease (a polled run nobody starts goes back to the
 * queue, in its old place) and heartbeat timeout (a silent RUNNING run
 * fails with the reason in metadata), with their events; both off by
 * default. */
#include "test_registry_fixture.h"

static fixture *watch_new(double lease, double timeout) {
    fixture *f = calloc(1, sizeof *f);
    f->record = 1;
    fake_now = 1000.0;
    f->bus = pyoco_bus_new();
    pyoco_bus_subscribe(f->bus, PYOCO_EV_ANY, on_event, f, NULL, NULL);
    pyoco_registry_config cfg = {.max_run_history = 1000,
                                 .max_log_bytes = 1048576,
                                 .now = fake_clock,
                                 .assignment_lease = lease,
                                 .heartbeat_timeout = timeout};
    f->reg = pyoco_registry_new(&cfg, f->bus);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->reg);
    return f;
}

static const char *md_str(fixture *f, const char *id, const char *key) {
    static char buf[256];
    json_t *o = fx_get(f, id);
    const char *v =
        json_string_value(json_object_get(json_object_get(o, "metadata"), key));
    snprintf(buf, sizeof buf, "%s", v ? v : "");
    json_decref(o);
    return buf;
}

static void test_off_by_default(void) {
    fixture *f = watch_new(0, 0);
    char id[37];
    fx_submit(f, "demo", NULL, NULL, id);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w1", NULL), id);
    fake_now += 1e6;
    CU_ASSERT_EQUAL(pyoco_registry_sweep(f->reg, fake_now), 0);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w2", NULL), "");
    CU_ASSERT_STRING_EQUAL(fx_status(f, id), "PENDING");
    fx_free(f);
}

static void test_lease_requeues_in_place(void) {
    fixture *f = watch_new(30, 0);
    char a[37], b[37], c[37];
    fx_submit(f, "demo", NULL, NULL, a);
    fx_submit(f, "demo", NULL, NULL, b);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w1", NULL), a);
    fx_submit(f, "demo", NULL, NULL, c);
    fake_now += 29;
    double next = pyoco_registry_sweep(f->reg, fake_now);
    CU_ASSERT_DOUBLE_EQUAL(next, 1030.0, 1e-9);
    fx_clear(f);
    fake_now += 2;
    pyoco_registry_sweep(f->reg, fake_now);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_REQUEUED), 1);
    int i = fx_find(f, PYOCO_EV_RUN_REQUEUED, 0);
    CU_ASSERT_STRING_EQUAL(f->ev[i].run_id, a);
    CU_ASSERT_STRING_EQUAL(md_str(f, a, "lease_expired_worker_id"), "w1");
    CU_ASSERT_STRING_EQUAL(md_str(f, a, "worker_id"), "");
    /* a is older than b and c: it is handed out first again */
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w2", NULL), a);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w2", NULL), b);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w2", NULL), c);
    fx_free(f);
}

static void test_heartbeat_ends_lease(void) {
    fixture *f = watch_new(10, 0);
    char a[37];
    fx_submit(f, "demo", NULL, NULL, a);
    fx_poll(f, "w1", NULL);
    fake_now += 5;
    CU_ASSERT_EQUAL(
        fx_hb(f, a, "{\"task_states\":{},\"run_status\":\"RUNNING\"}", NULL),
        0);
    fake_now += 100;
    fx_clear(f);
    pyoco_registry_sweep(f->reg, fake_now);
    CU_ASSERT_EQUAL(f->nev, 0);
    CU_ASSERT_STRING_EQUAL(fx_status(f, a), "RUNNING");
    fx_free(f);
}

static void test_lease_of_cancelled_run(void) {
    fixture *f = watch_new(10, 0);
    char a[37];
    fx_submit(f, "demo", NULL, NULL, a);
    fx_poll(f, "w1", NULL);
    CU_ASSERT_EQUAL(pyoco_registry_cancel(f->reg, a), 0);
    fake_now += 11;
    fx_clear(f);
    pyoco_registry_sweep(f->reg, fake_now);
    CU_ASSERT_STRING_EQUAL(fx_status(f, a), "CANCELLED");
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_FINISHED), 1);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w2", NULL), "");
    fx_free(f);
}

static void test_heartbeat_timeout_fails_run(void) {
    fixture *f = watch_new(0, 60);
    char a[37], b[37];
    fx_submit(f, "demo", NULL, NULL, a);
    fx_submit(f, "demo", NULL, NULL, b);
    fx_poll(f, "w1", NULL);
    fx_poll(f, "w1", NULL);
    const char *hb = "{\"task_states\":{\"t\":\"RUNNING\"},\"run_status\":"
                     "\"RUNNING\"}";
    fx_hb(f, a, hb, NULL);
    fx_hb(f, b, hb, NULL);
    fake_now += 50;
    fx_hb(f, b, hb, NULL); /* b keeps talking */
    fake_now += 20;
    fx_clear(f);
    pyoco_registry_sweep(f->reg, fake_now);
    CU_ASSERT_STRING_EQUAL(fx_status(f, a), "FAILED");
    CU_ASSERT_STRING_EQUAL(fx_status(f, b), "RUNNING");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(md_str(f, a, "failure_reason"), "heartbeat timeout"));
    /* the usual events: a status change and a finish with its duration */
    int s = fx_find(f, PYOCO_EV_RUN_STATUS, 0);
    CU_ASSERT_TRUE(s >= 0);
    CU_ASSERT_EQUAL(f->ev[s].prev_status, PYOCO_STATUS_RUNNING);
    CU_ASSERT_EQUAL(f->ev[s].status, PYOCO_STATUS_FAILED);
    int fin = fx_find(f, PYOCO_EV_RUN_FINISHED, 0);
    CU_ASSERT_TRUE(fin >= 0);
    CU_ASSERT_DOUBLE_EQUAL(f->ev[fin].run_duration_s, 70.0, 1e-6);
    /* a late heartbeat after the timeout changes nothing terminal-wise */
    fake_now += 1000;
    fx_clear(f);
    pyoco_registry_sweep(f->reg, fake_now);
    CU_ASSERT_STRING_EQUAL(fx_status(f, b), "FAILED");
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_FINISHED), 1);
    fx_free(f);
}

static void test_terminal_leaves_watch(void) {
    fixture *f = watch_new(0, 5);
    char a[37];
    fx_submit(f, "demo", NULL, NULL, a);
    fx_poll(f, "w1", NULL);
    fx_hb(f, a, "{\"task_states\":{},\"run_status\":\"RUNNING\"}", NULL);
    fx_hb(f, a, "{\"task_states\":{},\"run_status\":\"COMPLETED\"}", NULL);
    fake_now += 100;
    CU_ASSERT_EQUAL(pyoco_registry_sweep(f->reg, fake_now), 0);
    CU_ASSERT_STRING_EQUAL(fx_status(f, a), "COMPLETED");
    fx_free(f);
}

static void test_set_limits_turns_off(void) {
    fixture *f = watch_new(10, 10);
    char a[37];
    fx_submit(f, "demo", NULL, NULL, a);
    fx_poll(f, "w1", NULL);
    pyoco_registry_set_limits(f->reg, 0, 0, 0, 0);
    fake_now += 100;
    CU_ASSERT_EQUAL(pyoco_registry_sweep(f->reg, fake_now), 0);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w2", NULL), "");
    fx_free(f);
}

/* Many runs, few expiring: each sweep only touches the expired ones. */
static void test_scale(void) {
    fixture *f = watch_new(0, 60);
    f->record = 0;
    enum { N = 100000 };
    static char ids[N][37];
    for (int i = 0; i < N; i++) {
        fx_submit(f, "demo", NULL, NULL, ids[i]);
        fx_poll(f, "w", NULL);
        fx_hb(f, ids[i], "{\"task_states\":{},\"run_status\":\"RUNNING\"}",
              NULL);
    }
    for (int s = 0; s < 1000; s++)
        pyoco_registry_sweep(f->reg, fake_now + 1);
    fake_now += 61;
    pyoco_registry_sweep(f->reg, fake_now);
    pyoco_registry_stats st = {.size = sizeof st};
    pyoco_registry_get_stats(f->reg, &st);
    /* all failed; retention (1000) evicted the oldest of them */
    CU_ASSERT_EQUAL(st.runs_by_status[PYOCO_STATUS_FAILED] + st.runs_evicted,
                    N);
    CU_ASSERT_EQUAL(st.runs_in_memory, 1000);
    fx_free(f);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("registry watch", NULL, NULL);
    CU_add_test(s, "off by default", test_off_by_default);
    CU_add_test(s, "lease requeues in place", test_lease_requeues_in_place);
    CU_add_test(s, "heartbeat ends the lease", test_heartbeat_ends_lease);
    CU_add_test(s, "lease of a cancelled run", test_lease_of_cancelled_run);
    CU_add_test(s, "heartbeat timeout fails the run",
                test_heartbeat_timeout_fails_run);
    CU_add_test(s, "terminal runs leave the watch", test_terminal_leaves_watch);
    CU_add_test(s, "set_limits turns watches off", test_set_limits_turns_off);
    CU_add_test(s, "scale", test_scale);
}
