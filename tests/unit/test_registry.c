/* Registry: submit, get (shape, key order, number kinds), list, cancel,
 * poll (FIFO, tag routing, metadata), logs queries, stats, status names,
 * restore round-trip. Each test checks the state and the events. */
#include <errno.h>

#include "test_registry_fixture.h"

static void test_submit_defaults_and_events(void) {
    fixture *f = fx_new();
    fake_now = 1234.5;
    char id[37];
    fx_submit(f, "demo", NULL, NULL, id);
    CU_ASSERT_EQUAL(strlen(id), 36);
    CU_ASSERT_EQUAL(id[14], '4'); /* uuid version 4 */
    CU_ASSERT_PTR_NOT_NULL(strchr("89ab", id[19]));

    json_t *o = fx_get(f, id);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "status")),
                           "PENDING");
    CU_ASSERT_EQUAL(json_object_size(json_object_get(o, "params")), 0);
    CU_ASSERT_TRUE(json_is_object(json_object_get(o, "params")));
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(o, "start_time")),
                           1234.5, 1e-9);
    CU_ASSERT_TRUE(json_is_null(json_object_get(o, "end_time")));
    CU_ASSERT_TRUE(json_is_null(json_object_get(o, "run_duration_ms")));
    json_decref(o);

    CU_ASSERT_EQUAL(f->nev, 2);
    CU_ASSERT_EQUAL(f->ev[0].kind, PYOCO_EV_RUN_SUBMITTED);
    CU_ASSERT_STRING_EQUAL(f->ev[0].run_id, id);
    CU_ASSERT_STRING_EQUAL(f->ev[0].flow_name, "demo");
    CU_ASSERT_EQUAL(json_array_size(f->ev[0].tags), 0);
    CU_ASSERT_EQUAL(f->ev[1].kind, PYOCO_EV_RUN_STATUS);
    CU_ASSERT_EQUAL(f->ev[1].prev_status, PYOCO_STATUS_NONE);
    CU_ASSERT_EQUAL(f->ev[1].status, PYOCO_STATUS_PENDING);
    CU_ASSERT_DOUBLE_EQUAL(f->ev[1].start_time, 1234.5, 1e-9);
    CU_ASSERT_EQUAL(f->ev[1].end_time, 0);

    /* params and tags are copied; bad input is refused */
    char id2[37];
    fx_submit(f, "demo", "{\"x\": 1}", "[\"gpu\"]", id2);
    CU_ASSERT_STRING_NOT_EQUAL(id, id2);
    int i = fx_find(f, PYOCO_EV_RUN_SUBMITTED, 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(f->ev[i].params, "x")),
                    1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(f->ev[i].tags, 0)),
                           "gpu");
    json_t *bad = J("[1]");
    CU_ASSERT_EQUAL(pyoco_registry_submit(f->reg, "", NULL, NULL, id2),
                    -EINVAL);
    CU_ASSERT_EQUAL(pyoco_registry_submit(f->reg, "x", bad, NULL, id2),
                    -EINVAL);
    CU_ASSERT_EQUAL(pyoco_registry_submit(f->reg, "x", NULL, bad, id2),
                    -EINVAL);
    json_decref(bad);
    CU_ASSERT_EQUAL(f->nev, 4);
    fx_free(f);
}

static void test_get_shape_order_floats(void) {
    fixture *f = fx_new();
    fake_now = 100.0;
    char id[37];
    fx_submit(f, "demo", "{\"x\": 1}", NULL, id);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w1", NULL), id);
    fake_now = 100.25;
    CU_ASSERT_EQUAL(
        fx_hb(
            f, id,
            "{\"run_status\":\"RUNNING\",\"task_states\":{\"t1\":\"RUNNING\"},"
            "\"logs\":[{\"seq\":0,\"task\":\"t1\",\"stream\":\"stdout\","
            "\"text\":\"hello\"}]}",
            NULL),
        0);
    fake_now = 100.5;
    CU_ASSERT_EQUAL(
        fx_hb(
            f, id,
            "{\"run_status\":\"COMPLETED\",\"task_states\":{\"t1\":"
            "\"SUCCEEDED\"},\"task_records\":{\"t1\":{\"state\":\"SUCCEEDED\","
            "\"started_at\":5.0,\"ended_at\":1000.2,\"duration_ms\":200.0,"
            "\"inputs\":{\"x\":1},\"output\":42,\"bogus\":1}}}",
            NULL),
        0);
    json_t *o = fx_get(f, id);
    static const char *const keys[] = {
        "run_id",     "flow_name", "params",          "status",
        "start_time", "end_time",  "tasks",           "task_records",
        "logs",       "metadata",  "run_duration_ms", "task_summary"};
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        CU_ASSERT_FATAL(k < 12);
        CU_ASSERT_STRING_EQUAL(key, keys[k]);
        k++;
    }
    CU_ASSERT_EQUAL(k, 12);
    json_t *rec = json_object_get(json_object_get(o, "task_records"), "t1");
    static const char *const rkeys[] = {
        "state",     "started_at", "ended_at", "duration_ms", "error",
        "traceback", "inputs",     "output",   "artifacts"};
    k = 0;
    json_object_foreach(rec, key, v) {
        CU_ASSERT_FATAL(k < 9);
        CU_ASSERT_STRING_EQUAL(key, rkeys[k]);
        k++;
    }
    CU_ASSERT_EQUAL(k, 9); /* "bogus" ignored */
    /* 5.0 stays a real, 42 stays an integer */
    CU_ASSERT_TRUE(json_is_real(json_object_get(rec, "started_at")));
    CU_ASSERT_TRUE(json_is_real(json_object_get(rec, "duration_ms")));
    CU_ASSERT_TRUE(json_is_integer(json_object_get(rec, "output")));
    char *dump = json_dumps(rec, JSON_COMPACT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dump, "\"started_at\":5.0"));
    free(dump);
    CU_ASSERT_TRUE(json_is_null(json_object_get(rec, "error")));
    CU_ASSERT_EQUAL(json_object_size(json_object_get(rec, "artifacts")), 0);

    json_t *sum = json_object_get(json_object_get(o, "task_summary"), "t1");
    k = 0;
    static const char *const skeys[] = {"state", "duration_ms", "ended_at"};
    json_object_foreach(sum, key, v) {
        CU_ASSERT_FATAL(k < 3);
        CU_ASSERT_STRING_EQUAL(key, skeys[k]);
        k++;
    }
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(sum, "duration_ms")),
                           200.0, 1e-9);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_object_get(o, "tasks"), "t1")),
        "SUCCEEDED");
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(o, "end_time")),
                           100.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(
        json_real_value(json_object_get(o, "run_duration_ms")), 500.0, 1e-6);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "logs")), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                               json_object_get(o, "metadata"), "worker_id")),
                           "w1");
    json_decref(o);
    json_t *none = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_get(f->reg, "nope", &none), -ENOENT);
    fx_free(f);
}

static void test_list_order_filter_limit(void) {
    fixture *f = fx_new();
    char a[37], b[37], c[37], d[37];
    fake_now = 10;
    fx_submit(f, "f1", NULL, NULL, a);
    fake_now = 20;
    fx_submit(f, "f2", NULL, NULL, b);
    fx_submit(f, "f1", NULL, NULL, c); /* same start_time as b */
    fake_now = 30;
    fx_submit(f, "f1", NULL, NULL, d);
    CU_ASSERT_EQUAL(fx_hb(f, a,
                          "{\"run_status\":\"COMPLETED\","
                          "\"task_states\":{}}",
                          NULL),
                    0);
    json_t *l = NULL;
    CU_ASSERT_EQUAL_FATAL(pyoco_registry_list(f->reg, NULL, NULL, 10, &l), 0);
    CU_ASSERT_EQUAL_FATAL(json_array_size(l), 4);
    /* newest first; equal start times keep submission order (stable) */
    const char *want[] = {d, b, c, a};
    for (int i = 0; i < 4; i++)
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(json_array_get(l, i), "run_id")),
            want[i]);
    json_decref(l);
    CU_ASSERT_EQUAL(pyoco_registry_list(f->reg, NULL, "f1", 2, &l), 0);
    CU_ASSERT_EQUAL(json_array_size(l), 2);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_array_get(l, 0), "run_id")), d);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_array_get(l, 1), "run_id")), c);
    json_decref(l);
    CU_ASSERT_EQUAL(pyoco_registry_list(f->reg, "COMPLETED", NULL, 10, &l), 0);
    CU_ASSERT_EQUAL(json_array_size(l), 1);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_array_get(l, 0), "run_id")), a);
    json_decref(l);
    CU_ASSERT_EQUAL(pyoco_registry_list(f->reg, "RUNNING", NULL, 10, &l), 0);
    CU_ASSERT_EQUAL(json_array_size(l), 0);
    json_decref(l);
    l = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_list(f->reg, "DONE", NULL, 10, &l), -EINVAL);
    CU_ASSERT_PTR_NULL(l);
    fx_free(f);
}

static void test_cancel_transitions_and_queue(void) {
    fixture *f = fx_new();
    char a[37], b[37], c[37];
    fx_submit(f, "f", NULL, NULL, a);
    fx_submit(f, "f", NULL, NULL, b);
    fx_submit(f, "f", NULL, NULL, c);
    fx_clear(f);
    CU_ASSERT_EQUAL(pyoco_registry_cancel(f->reg, a), 0);
    CU_ASSERT_STRING_EQUAL(fx_status(f, a), "CANCELLING");
    CU_ASSERT_EQUAL(f->nev, 1);
    CU_ASSERT_EQUAL(f->ev[0].kind, PYOCO_EV_RUN_STATUS);
    CU_ASSERT_EQUAL(f->ev[0].prev_status, PYOCO_STATUS_PENDING);
    CU_ASSERT_EQUAL(f->ev[0].status, PYOCO_STATUS_CANCELLING);
    pyoco_registry_stats st = {.size = sizeof st};
    pyoco_registry_get_stats(f->reg, &st);
    CU_ASSERT_EQUAL(st.runs_queued, 2);

    /* RUNNING -> CANCELLING too */
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w", NULL), b);
    CU_ASSERT_EQUAL(
        fx_hb(f, b, "{\"run_status\":\"RUNNING\",\"task_states\":{}}", NULL),
        0);
    fx_clear(f);
    CU_ASSERT_EQUAL(pyoco_registry_cancel(f->reg, b), 0);
    CU_ASSERT_STRING_EQUAL(fx_status(f, b), "CANCELLING");
    CU_ASSERT_EQUAL(f->nev, 1);
    CU_ASSERT_EQUAL(f->ev[0].prev_status, PYOCO_STATUS_RUNNING);

    /* cancelling again, or a terminal run: unchanged, no event */
    fx_clear(f);
    CU_ASSERT_EQUAL(pyoco_registry_cancel(f->reg, b), 0);
    CU_ASSERT_EQUAL(
        fx_hb(f, c, "{\"run_status\":\"COMPLETED\",\"task_states\":{}}", NULL),
        0);
    fx_clear(f);
    CU_ASSERT_EQUAL(pyoco_registry_cancel(f->reg, c), 0);
    CU_ASSERT_STRING_EQUAL(fx_status(f, c), "COMPLETED");
    CU_ASSERT_EQUAL(f->nev, 0);
    CU_ASSERT_EQUAL(pyoco_registry_cancel(f->reg, "nope"), -ENOENT);
    /* the cancelled run a is never handed out; c left the queue when it
     * stopped being PENDING */
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w", NULL), "");
    pyoco_registry_get_stats(f->reg, &st);
    CU_ASSERT_EQUAL(st.runs_queued, 0);
    CU_ASSERT_EQUAL(st.runs_by_status[PYOCO_STATUS_CANCELLING], 2);
    CU_ASSERT_EQUAL(st.runs_by_status[PYOCO_STATUS_COMPLETED], 1);
    fx_free(f);
}

static void test_poll_fifo_and_metadata(void) {
    fixture *f = fx_new();
    char ids[5][37];
    for (int i = 0; i < 5; i++) {
        fake_now = 10 + i;
        fx_submit(f, "f", "{\"k\": \"v\"}", NULL, ids[i]);
    }
    fx_clear(f);
    fake_now = 50.5;
    json_t *out = NULL;
    CU_ASSERT_EQUAL_FATAL(pyoco_registry_poll(f->reg, "w1", NULL, &out), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(out, "run_id")),
                           ids[0]);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(out, "flow_name")),
                           "f");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_object_get(out, "params"), "k")),
        "v");
    json_decref(out);
    /* assignment recorded, event published, status still PENDING */
    CU_ASSERT_EQUAL(f->nev, 1);
    CU_ASSERT_EQUAL(f->ev[0].kind, PYOCO_EV_RUN_ASSIGNED);
    CU_ASSERT_STRING_EQUAL(f->ev[0].worker_id, "w1");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(f->ev[0].metadata, "worker_id")),
        "w1");
    json_t *o = fx_get(f, ids[0]);
    json_t *md = json_object_get(o, "metadata");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(md, "worker_id")),
                           "w1");
    CU_ASSERT_TRUE(json_is_real(json_object_get(md, "assigned_at")));
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(md, "assigned_at")),
                           50.5, 1e-9);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "status")),
                           "PENDING");
    json_decref(o);
    /* other runs' metadata untouched (the shared empty {} is not written) */
    o = fx_get(f, ids[1]);
    CU_ASSERT_EQUAL(json_object_size(json_object_get(o, "metadata")), 0);
    json_decref(o);
    for (int i = 1; i < 5; i++)
        CU_ASSERT_STRING_EQUAL(fx_poll(f, "w2", NULL), ids[i]);
    /* empty queue: all three null */
    CU_ASSERT_EQUAL(pyoco_registry_poll(f->reg, "w1", NULL, &out), 0);
    CU_ASSERT_TRUE(json_is_null(json_object_get(out, "run_id")));
    CU_ASSERT_TRUE(json_is_null(json_object_get(out, "flow_name")));
    CU_ASSERT_TRUE(json_is_null(json_object_get(out, "params")));
    CU_ASSERT_EQUAL(json_object_size(out), 3);
    json_decref(out);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_ASSIGNED), 5);
    fx_free(f);
}

static void test_tag_routing(void) {
    fixture *f = fx_new();
    char gpu[37], plain[37], gpu_big[37], plain2[37], dup[37];
    fx_submit(f, "f", NULL, "[\"gpu\"]", gpu);
    fx_submit(f, "f", NULL, NULL, plain);
    fx_submit(f, "f", NULL, "[\"big\", \"gpu\"]", gpu_big);
    fx_submit(f, "f", NULL, "[]", plain2);
    fx_submit(f, "f", NULL, "[\"gpu\", \"big\", \"gpu\"]", dup);
    /* a worker without tags gets only untagged runs, in order */
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w0", NULL), plain);
    /* a gpu worker: the oldest run whose tags it has (gpu, then untagged) */
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w1", "[\"gpu\", \"x\"]"), gpu);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w1", "[\"gpu\", \"x\"]"), plain2);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w1", "[\"gpu\", \"x\"]"), "");
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w0", "[]"), "");
    /* order inside a tag set is independent of how tags were spelled */
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w2", "[\"big\", \"gpu\"]"), gpu_big);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w2", "[\"gpu\", \"big\"]"), dup);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w2", "[\"gpu\", \"big\"]"), "");
    json_t *bad = J("[1]"), *out = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_poll(f->reg, "w", bad, &out), -EINVAL);
    CU_ASSERT_EQUAL(pyoco_registry_poll(f->reg, NULL, NULL, &out), -EINVAL);
    json_decref(bad);
    fx_free(f);
}

static void test_logs_task_and_tail(void) {
    fixture *f = fx_new();
    char id[37];
    fx_submit(f, "f", NULL, NULL, id);
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              "{\"run_status\":\"RUNNING\",\"task_states\":{},\"logs\":["
              "{\"seq\":0,\"task\":\"a\",\"text\":\"a0\"},"
              "{\"seq\":1,\"task\":\"b\",\"text\":\"b0\"},"
              "{\"seq\":2,\"task\":\"a\",\"text\":\"a1\"},"
              "{\"seq\":3,\"text\":\"u0\"},"
              "{\"seq\":4,\"task\":\"a\",\"text\":\"a2\"}]}",
              NULL),
        0);
    json_t *out = NULL;
    CU_ASSERT_EQUAL_FATAL(pyoco_registry_logs(f->reg, id, NULL, -1, &out), 0);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(out, "run_status")), "RUNNING");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(out, "logs")), 5);
    json_decref(out);
    CU_ASSERT_EQUAL(pyoco_registry_logs(f->reg, id, "a", -1, &out), 0);
    json_t *l = json_object_get(out, "logs");
    CU_ASSERT_EQUAL(json_array_size(l), 3);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_array_get(l, 2), "text")), "a2");
    json_decref(out);
    CU_ASSERT_EQUAL(pyoco_registry_logs(f->reg, id, "a", 2, &out), 0);
    l = json_object_get(out, "logs");
    CU_ASSERT_EQUAL(json_array_size(l), 2);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_array_get(l, 0), "text")), "a1");
    json_decref(out);
    CU_ASSERT_EQUAL(pyoco_registry_logs(f->reg, id, NULL, 0, &out), 0);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(out, "logs")), 0);
    json_decref(out);
    CU_ASSERT_EQUAL(pyoco_registry_logs(f->reg, id, NULL, 100, &out), 0);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(out, "logs")), 5);
    json_decref(out);
    /* "unknown" is only a counting bucket: the entry has no task key */
    CU_ASSERT_EQUAL(pyoco_registry_logs(f->reg, id, "unknown", -1, &out), 0);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(out, "logs")), 0);
    json_decref(out);
    CU_ASSERT_EQUAL(pyoco_registry_logs(f->reg, "nope", NULL, -1, &out),
                    -ENOENT);
    fx_free(f);
}

static void test_status_parse_and_stats(void) {
    CU_ASSERT_EQUAL(pyoco_registry_status_parse("PENDING"),
                    PYOCO_STATUS_PENDING);
    CU_ASSERT_EQUAL(pyoco_registry_status_parse("CANCELLED"),
                    PYOCO_STATUS_CANCELLED);
    CU_ASSERT_EQUAL(pyoco_registry_status_parse("pending"), PYOCO_STATUS_NONE);
    CU_ASSERT_EQUAL(pyoco_registry_status_parse(""), PYOCO_STATUS_NONE);
    CU_ASSERT_EQUAL(pyoco_registry_status_parse(NULL), PYOCO_STATUS_NONE);

    fixture *f = fx_new();
    char a[37], b[37];
    fx_submit(f, "f", NULL, NULL, a);
    fx_submit(f, "f", NULL, NULL, b);
    fx_poll(f, "w", NULL);
    CU_ASSERT_EQUAL(
        fx_hb(f, a, "{\"run_status\":\"RUNNING\",\"task_states\":{}}", NULL),
        0);
    pyoco_registry_stats st = {.size = sizeof st};
    pyoco_registry_get_stats(f->reg, &st);
    CU_ASSERT_EQUAL(st.runs_in_memory, 2);
    CU_ASSERT_EQUAL(st.runs_queued, 1);
    CU_ASSERT_EQUAL(st.runs_by_status[PYOCO_STATUS_PENDING], 1);
    CU_ASSERT_EQUAL(st.runs_by_status[PYOCO_STATUS_RUNNING], 1);
    CU_ASSERT_EQUAL(st.runs_evicted, 0);
    CU_ASSERT_EQUAL(st.events_published, f->nev);
    CU_ASSERT_EQUAL(st.events_published, pyoco_bus_last_seq(f->bus));
    fx_free(f);
}

static void test_restore_round_trip(void) {
    fixture *f = fx_new_cfg(1000, 10, NULL);
    char a[37], b[37], c[37], d[37];
    fake_now = 10;
    fx_submit(f, "f", "{\"p\": 1.5}", "[\"gpu\"]", a);
    fake_now = 11;
    fx_submit(f, "g", NULL, NULL, b);
    fake_now = 12;
    fx_submit(f, "f", NULL, "[\"gpu\"]", c);
    fake_now = 13;
    fx_submit(f, "f", NULL, NULL, d);
    CU_ASSERT_STRING_EQUAL(fx_poll(f, "w", NULL), b);
    fake_now = 14;
    CU_ASSERT_EQUAL(
        fx_hb(f, b,
              "{\"run_status\":\"COMPLETED\",\"task_states\":{\"t\":"
              "\"SUCCEEDED\","
              "\"u\":\"FAILED\"},\"task_records\":{\"u\":{\"duration_ms\":3.0,"
              "\"ended_at\":2.0},\"t\":{\"state\":\"SUCCEEDED\"}},\"logs\":["
              "{\"seq\":0,\"task\":\"t\",\"text\":\"0123456789abc\"},"
              "{\"seq\":1,\"task\":\"u\",\"text\":\"xyz\",\"timestamp\":1.0}]}",
              NULL),
        0);

    fixture *g = fx_new_cfg(1000, 10, NULL);
    json_t *runs[4];
    const char *ids[] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        runs[i] = fx_get(f, ids[i]);
        json_t *r = json_deep_copy(runs[i]);
        /* what storage adds: the tags and whether it waits in the queue */
        json_object_set_new(r, "tags",
                            i == 0 || i == 2 ? J("[\"gpu\"]") : json_array());
        json_object_set_new(r, "queued", json_boolean(i != 1));
        CU_ASSERT_EQUAL(pyoco_registry_restore(g->reg, r), 0);
        CU_ASSERT_EQUAL(pyoco_registry_restore(g->reg, r), -EEXIST);
        int k = fx_find(g, PYOCO_EV_RUN_RESTORED, i);
        CU_ASSERT_FATAL(k >= 0);
        CU_ASSERT_TRUE(json_equal(g->ev[k].data, r));
        CU_ASSERT_STRING_EQUAL(g->ev[k].run_id, ids[i]);
        json_decref(r);
    }
    CU_ASSERT_EQUAL(g->nev, 4); /* only RUN_RESTORED */
    for (int i = 0; i < 4; i++) {
        json_t *o = fx_get(g, ids[i]);
        CU_ASSERT_TRUE(json_equal(o, runs[i]));
        char *x = json_dumps(o, JSON_COMPACT),
             *y = json_dumps(runs[i], JSON_COMPACT);
        CU_ASSERT_STRING_EQUAL(x, y); /* key order and number kinds too */
        free(x);
        free(y);
        json_decref(o);
        json_decref(runs[i]);
    }
    /* queue order and tags survive */
    CU_ASSERT_STRING_EQUAL(fx_poll(g, "w", "[\"gpu\"]"), a);
    CU_ASSERT_STRING_EQUAL(fx_poll(g, "w", NULL), d);
    CU_ASSERT_STRING_EQUAL(fx_poll(g, "w", "[\"gpu\"]"), c);
    CU_ASSERT_STRING_EQUAL(fx_poll(g, "w", "[\"gpu\"]"), "");
    /* the list order is by start_time */
    json_t *l = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_list(g->reg, NULL, NULL, 0, &l), 0);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_array_get(l, 0), "run_id")), d);
    json_decref(l);
    /* the cap state came back: task t is capped, u has room for 7 bytes;
     * the terminal run reports nothing twice */
    fx_clear(g);
    CU_ASSERT_EQUAL(
        fx_hb(
            g, b,
            "{\"run_status\":\"COMPLETED\",\"task_states\":{},\"task_records\":"
            "{\"u\":{\"duration_ms\":4.0}},\"logs\":["
            "{\"task\":\"t\",\"text\":\"more\"},{\"task\":\"u\",\"text\":"
            "\"123456789\"}]}",
            NULL),
        0);
    int k = fx_find(g, PYOCO_EV_LOGS_APPENDED, 0);
    CU_ASSERT_FATAL(k >= 0);
    CU_ASSERT_EQUAL(json_array_size(g->ev[k].logs), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                               json_array_get(g->ev[k].logs, 0), "text")),
                           "1234567\n[log truncated]");
    k = fx_find(g, PYOCO_EV_TASK_UPDATED, 0);
    CU_ASSERT_EQUAL(g->ev[k].task_duration_ms, -1);
    CU_ASSERT_EQUAL(fx_count(g, PYOCO_EV_RUN_FINISHED), 0);
    CU_ASSERT_EQUAL(fx_count(g, PYOCO_EV_RUN_STATUS), 0);

    /* bad shapes */
    const char *bad[] = {
        "[]",
        "{\"flow_name\":\"f\",\"status\":\"PENDING\",\"start_time\":1}",
        "{\"run_id\":\"x\",\"flow_name\":\"f\",\"status\":\"NOPE\",\"start_"
        "time\":1}",
        "{\"run_id\":\"x\",\"flow_name\":\"f\",\"status\":\"PENDING\"}",
        "{\"run_id\":\"x\",\"flow_name\":\"f\",\"status\":\"PENDING\",\"start_"
        "time\":1,"
        "\"logs\":[1]}",
        "{\"run_id\":\"x\",\"flow_name\":\"f\",\"status\":\"PENDING\",\"start_"
        "time\":1,"
        "\"tags\":[1]}",
        "{\"run_id\":\"x\",\"flow_name\":\"f\",\"status\":\"PENDING\",\"start_"
        "time\":1,"
        "\"task_records\":{\"t\":1}}",
        "{\"run_id\":\"../"
        "x\",\"flow_name\":\"f\",\"status\":\"PENDING\",\"start_time\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *r = J(bad[i]);
        CU_ASSERT_EQUAL(pyoco_registry_restore(g->reg, r), -EINVAL);
        json_decref(r);
    }
    json_t *ok =
        J("{\"run_id\":\"x\",\"flow_name\":\"f\",\"status\":\"PENDING\","
          "\"start_time\":1}");
    CU_ASSERT_EQUAL(pyoco_registry_restore(g->reg, ok), 0);
    json_decref(ok);
    fx_free(g);
    fx_free(f);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("registry", NULL, NULL);
    CU_add_test(s, "submit defaults and events",
                test_submit_defaults_and_events);
    CU_add_test(s, "get shape, key order, floats", test_get_shape_order_floats);
    CU_add_test(s, "list order, filter, limit, bad status",
                test_list_order_filter_limit);
    CU_add_test(s, "cancel transitions and queue removal",
                test_cancel_transitions_and_queue);
    CU_add_test(s, "poll FIFO and metadata", test_poll_fifo_and_metadata);
    CU_add_test(s, "tag routing", test_tag_routing);
    CU_add_test(s, "logs task and tail", test_logs_task_and_tail);
    CU_add_test(s, "status names and stats", test_status_parse_and_stats);
    CU_add_test(s, "restore round trip", test_restore_round_trip);
}
