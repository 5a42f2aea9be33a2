/* Registry heartbeats: the five rules in order, with their events —
 * status (RUNNING never undoes CANCELLING, end_time once), task states,
 * record merge, task duration once, log cap (UTF-8 boundary, "unknown"),
 * RUN_FINISHED once per distinct terminal status, invalid bodies. */
#include <errno.h>

#include "test_registry_fixture.h"

#define HB(st, rest) "{\"run_status\":\"" st "\",\"task_states\":{}" rest "}"

static void test_status_and_cancelling(void) {
    fixture *f = fx_new();
    char id[37];
    fx_submit(f, "f", NULL, NULL, id);
    fx_poll(f, "w", NULL);
    fx_clear(f);
    bool cancel = true;
    CU_ASSERT_EQUAL(fx_hb(f, id, HB("RUNNING", ""), &cancel), 0);
    CU_ASSERT_FALSE(cancel);
    CU_ASSERT_STRING_EQUAL(fx_status(f, id), "RUNNING");
    CU_ASSERT_EQUAL(f->nev, 1);
    CU_ASSERT_EQUAL(f->ev[0].kind, PYOCO_EV_RUN_STATUS);
    CU_ASSERT_EQUAL(f->ev[0].prev_status, PYOCO_STATUS_PENDING);
    CU_ASSERT_EQUAL(f->ev[0].status, PYOCO_STATUS_RUNNING);
    /* same status again: no transition */
    fx_clear(f);
    CU_ASSERT_EQUAL(fx_hb(f, id, HB("RUNNING", ""), &cancel), 0);
    CU_ASSERT_EQUAL(f->nev, 0);

    CU_ASSERT_EQUAL(pyoco_registry_cancel(f->reg, id), 0);
    fx_clear(f);
    CU_ASSERT_EQUAL(fx_hb(f, id, HB("RUNNING", ""), &cancel), 0);
    CU_ASSERT_TRUE(cancel);
    CU_ASSERT_STRING_EQUAL(fx_status(f, id), "CANCELLING");
    CU_ASSERT_EQUAL(f->nev, 0);
    /* the worker acknowledges: CANCELLED is terminal */
    fake_now = 1003;
    CU_ASSERT_EQUAL(fx_hb(f, id, HB("CANCELLED", ""), &cancel), 0);
    CU_ASSERT_FALSE(cancel);
    CU_ASSERT_EQUAL(f->ev[0].kind, PYOCO_EV_RUN_STATUS);
    CU_ASSERT_EQUAL(f->ev[0].prev_status, PYOCO_STATUS_CANCELLING);
    CU_ASSERT_EQUAL(f->ev[0].status, PYOCO_STATUS_CANCELLED);
    CU_ASSERT_DOUBLE_EQUAL(f->ev[0].end_time, 1003, 1e-9);
    CU_ASSERT_EQUAL(f->ev[1].kind, PYOCO_EV_RUN_FINISHED);
    CU_ASSERT_DOUBLE_EQUAL(f->ev[1].run_duration_s, 3.0, 1e-9);
    fx_free(f);
}

static void test_end_time_once_and_finished_per_status(void) {
    fixture *f = fx_new();
    char id[37];
    fake_now = 100;
    fx_submit(f, "f", NULL, NULL, id);
    fx_clear(f);
    fake_now = 102.5;
    CU_ASSERT_EQUAL(fx_hb(f, id, HB("COMPLETED", ""), NULL), 0);
    CU_ASSERT_EQUAL(f->nev, 2);
    CU_ASSERT_EQUAL(f->ev[1].kind, PYOCO_EV_RUN_FINISHED);
    CU_ASSERT_EQUAL(f->ev[1].status, PYOCO_STATUS_COMPLETED);
    CU_ASSERT_DOUBLE_EQUAL(f->ev[1].run_duration_s, 2.5, 1e-9);
    /* repeated: nothing */
    fx_clear(f);
    fake_now = 200;
    CU_ASSERT_EQUAL(fx_hb(f, id, HB("COMPLETED", ""), NULL), 0);
    CU_ASSERT_EQUAL(f->nev, 0);
    /* another terminal status: one more RUN_FINISHED, no duration, the
     * end_time never moves */
    CU_ASSERT_EQUAL(fx_hb(f, id, HB("FAILED", ""), NULL), 0);
    CU_ASSERT_EQUAL(f->nev, 2);
    CU_ASSERT_EQUAL(f->ev[0].kind, PYOCO_EV_RUN_STATUS);
    CU_ASSERT_EQUAL(f->ev[1].kind, PYOCO_EV_RUN_FINISHED);
    CU_ASSERT_EQUAL(f->ev[1].status, PYOCO_STATUS_FAILED);
    CU_ASSERT_EQUAL(f->ev[1].run_duration_s, -1);
    CU_ASSERT_DOUBLE_EQUAL(f->ev[1].end_time, 102.5, 1e-9);
    json_t *o = fx_get(f, id);
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(o, "end_time")),
                           102.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(
        json_real_value(json_object_get(o, "run_duration_ms")), 2500.0, 1e-6);
    json_decref(o);
    /* back to COMPLETED: already notified for that status */
    fx_clear(f);
    CU_ASSERT_EQUAL(fx_hb(f, id, HB("COMPLETED", ""), NULL), 0);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_FINISHED), 0);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_RUN_STATUS), 1);

    /* a clock going backwards: the duration is reported as -1 */
    char id2[37];
    fake_now = 300;
    fx_submit(f, "f", NULL, NULL, id2);
    fake_now = 299;
    fx_clear(f);
    CU_ASSERT_EQUAL(fx_hb(f, id2, HB("FAILED", ""), NULL), 0);
    int k = fx_find(f, PYOCO_EV_RUN_FINISHED, 0);
    CU_ASSERT_FATAL(k >= 0);
    CU_ASSERT_EQUAL(f->ev[k].run_duration_s, -1);
    fx_free(f);
}

static void test_rule_order_and_task_states(void) {
    fixture *f = fx_new();
    char id[37];
    fx_submit(f, "f", NULL, NULL, id);
    fx_clear(f);
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              "{\"run_status\":\"COMPLETED\","
              "\"task_states\":{\"b\":\"SUCCEEDED\",\"a\":\"RUNNING\"},"
              "\"task_records\":{\"a\":{\"state\":\"SUCCEEDED\"}},"
              "\"logs\":[{\"task\":\"a\",\"text\":\"x\"}]}",
              NULL),
        0);
    /* status, task states (in body order), records, logs, finished */
    uint32_t want[] = {PYOCO_EV_RUN_STATUS,    PYOCO_EV_TASK_UPDATED,
                       PYOCO_EV_TASK_UPDATED,  PYOCO_EV_TASK_UPDATED,
                       PYOCO_EV_LOGS_APPENDED, PYOCO_EV_RUN_FINISHED};
    CU_ASSERT_EQUAL_FATAL(f->nev, 6);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(f->ev[i].kind, want[i]);
        CU_ASSERT_STRING_EQUAL(f->ev[i].run_id, id);
        CU_ASSERT_EQUAL(f->ev[i].status, PYOCO_STATUS_COMPLETED);
        if (i > 0)
            CU_ASSERT_TRUE(f->ev[i].seq > f->ev[i - 1].seq);
    }
    CU_ASSERT_STRING_EQUAL(f->ev[1].task, "b");
    CU_ASSERT_STRING_EQUAL(f->ev[1].task_state, "SUCCEEDED");
    CU_ASSERT_PTR_NULL(f->ev[1].record); /* b has no record */
    CU_ASSERT_STRING_EQUAL(f->ev[2].task, "a");
    CU_ASSERT_STRING_EQUAL(f->ev[2].task_state, "RUNNING");
    CU_ASSERT_STRING_EQUAL(f->ev[3].task, "a");
    /* a record event carries the task's "tasks" state, not the record's */
    CU_ASSERT_STRING_EQUAL(f->ev[3].task_state, "RUNNING");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(f->ev[3].record, "state")),
        "SUCCEEDED");
    /* tasks keep their first-seen order; a state is overwritten in place */
    CU_ASSERT_EQUAL(fx_hb(f, id,
                          "{\"run_status\":\"COMPLETED\",\"task_states\":"
                          "{\"c\":\"PENDING\",\"b\":\"FAILED\"}}",
                          NULL),
                    0);
    json_t *o = fx_get(f, id);
    char *s = json_dumps(json_object_get(o, "tasks"), JSON_COMPACT);
    CU_ASSERT_STRING_EQUAL(
        s, "{\"b\":\"FAILED\",\"a\":\"RUNNING\",\"c\":\"PENDING\"}");
    free(s);
    /* the summary is built from the records, not from the states */
    s = json_dumps(json_object_get(o, "task_summary"), JSON_COMPACT);
    CU_ASSERT_STRING_EQUAL(
        s, "{\"a\":{\"state\":\"SUCCEEDED\",\"duration_ms\":null,"
           "\"ended_at\":null}}");
    free(s);
    json_decref(o);
    CU_ASSERT_EQUAL(fx_hb(f, "nope", HB("RUNNING", ""), NULL), -ENOENT);
    fx_free(f);
}

static void test_record_merge_and_duration_once(void) {
    fixture *f = fx_new();
    char id[37];
    fx_submit(f, "f", NULL, NULL, id);
    fx_clear(f);
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              HB("RUNNING", ",\"task_records\":{\"t\":{\"started_at\":1.5,"
                            "\"inputs\":{\"a\":1},\"duration_ms\":7}}"),
              NULL),
        0);
    int k = fx_find(f, PYOCO_EV_TASK_UPDATED, 0);
    CU_ASSERT_FATAL(k >= 0);
    /* fresh record: defaults, then the given fields; the task has no
     * "tasks" state, so the event has none */
    CU_ASSERT_STRING_EQUAL(f->ev[k].task_state, "");
    CU_ASSERT_EQUAL(f->ev[k].task_duration_ms, -1); /* no ended_at yet */
    char *s = json_dumps(f->ev[k].record, JSON_COMPACT);
    CU_ASSERT_STRING_EQUAL(
        s, "{\"state\":\"PENDING\",\"started_at\":1.5,\"ended_at\":null,"
           "\"duration_ms\":7,\"error\":null,\"traceback\":null,"
           "\"inputs\":{\"a\":1},\"output\":null,\"artifacts\":{}}");
    free(s);
    /* absent fields kept; empty or non-string state ignored; null given
     * explicitly overwrites; now both fields: duration observed */
    fx_clear(f);
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              HB("RUNNING", ",\"task_records\":{\"t\":{\"state\":\"\","
                            "\"ended_at\":9.0,\"duration_ms\":250.5,"
                            "\"inputs\":null,\"output\":[1]}}"),
              NULL),
        0);
    k = fx_find(f, PYOCO_EV_TASK_UPDATED, 0);
    CU_ASSERT_FATAL(k >= 0);
    CU_ASSERT_DOUBLE_EQUAL(f->ev[k].task_duration_ms, 250.5, 1e-9);
    s = json_dumps(f->ev[k].record, JSON_COMPACT);
    CU_ASSERT_STRING_EQUAL(
        s, "{\"state\":\"PENDING\",\"started_at\":1.5,\"ended_at\":9.0,"
           "\"duration_ms\":250.5,\"error\":null,\"traceback\":null,"
           "\"inputs\":null,\"output\":[1],\"artifacts\":{}}");
    free(s);
    /* observed once only */
    fx_clear(f);
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              HB("RUNNING", ",\"task_records\":{\"t\":{\"state\":\"SUCCEEDED\","
                            "\"duration_ms\":300.0,\"error\":\"boom\"}}"),
              NULL),
        0);
    k = fx_find(f, PYOCO_EV_TASK_UPDATED, 0);
    CU_ASSERT_EQUAL(f->ev[k].task_duration_ms, -1);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(f->ev[k].record, "state")),
        "SUCCEEDED");
    json_t *o = fx_get(f, id);
    json_t *rec = json_object_get(json_object_get(o, "task_records"), "t");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(rec, "error")),
                           "boom");
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(rec, "ended_at")),
                           9.0, 1e-9);
    json_decref(o);
    /* a negative duration marks the task observed but reports -1 */
    fx_clear(f);
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              HB("RUNNING", ",\"task_records\":{\"n\":{\"duration_ms\":-5,"
                            "\"ended_at\":1}}"),
              NULL),
        0);
    k = fx_find(f, PYOCO_EV_TASK_UPDATED, 0);
    CU_ASSERT_EQUAL(f->ev[k].task_duration_ms, -1);
    fx_clear(f);
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              HB("RUNNING", ",\"task_records\":{\"n\":{\"duration_ms\":5}}"),
              NULL),
        0);
    k = fx_find(f, PYOCO_EV_TASK_UPDATED, 0);
    CU_ASSERT_EQUAL(f->ev[k].task_duration_ms, -1);
    /* a null ended_at or a non-number duration does not count */
    fx_clear(f);
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              HB("RUNNING", ",\"task_records\":{\"m\":{\"duration_ms\":\"5\","
                            "\"ended_at\":1},\"z\":{\"duration_ms\":5,"
                            "\"ended_at\":null}}"),
              NULL),
        0);
    CU_ASSERT_EQUAL(
        f->ev[fx_find(f, PYOCO_EV_TASK_UPDATED, 0)].task_duration_ms, -1);
    CU_ASSERT_EQUAL(
        f->ev[fx_find(f, PYOCO_EV_TASK_UPDATED, 1)].task_duration_ms, -1);
    fx_free(f);
}

static const char *text_at(const json_t *logs, size_t i) {
    return json_string_value(json_object_get(json_array_get(logs, i), "text"));
}

static void test_log_cap(void) {
    fixture *f = fx_new_cfg(1000, 10, NULL);
    char id[37];
    fx_submit(f, "f", NULL, NULL, id);
    fx_clear(f);
    /* a: 6 bytes fit, the next crosses the cap (4 left), later dropped;
     * b has its own budget; no task and null task count as "unknown" */
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              HB("RUNNING",
                 ",\"logs\":[{\"seq\":0,\"task\":\"a\",\"stream\":\"stdout\","
                 "\"text\":\"abcdef\",\"timestamp\":1.0,\"extra\":true},"
                 "{\"seq\":1,\"task\":\"a\",\"text\":\"ghijklmn\"},"
                 "{\"seq\":2,\"task\":\"a\",\"text\":\"dropped\"},"
                 "{\"seq\":3,\"task\":\"b\",\"text\":\"0123456789\"},"
                 "{\"seq\":4,\"text\":\"uuuuuuu\"},"
                 "{\"seq\":5,\"task\":null,\"text\":\"vvvvv\"},"
                 "{\"seq\":6,\"task\":\"b\",\"text\":\"\"}]"),
              NULL),
        0);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_LOGS_APPENDED), 1);
    int k = fx_find(f, PYOCO_EV_LOGS_APPENDED, 0);
    CU_ASSERT_FATAL(k >= 0);
    json_t *l = f->ev[k].logs;
    CU_ASSERT_EQUAL_FATAL(json_array_size(l), 6);
    CU_ASSERT_STRING_EQUAL(text_at(l, 0), "abcdef");
    CU_ASSERT_TRUE(
        json_is_true(json_object_get(json_array_get(l, 0), "extra")));
    CU_ASSERT_TRUE(
        json_is_real(json_object_get(json_array_get(l, 0), "timestamp")));
    CU_ASSERT_STRING_EQUAL(text_at(l, 1), "ghij\n[log truncated]");
    CU_ASSERT_STRING_EQUAL(text_at(l, 2), "0123456789"); /* exactly the cap */
    CU_ASSERT_STRING_EQUAL(text_at(l, 3), "uuuuuuu");
    CU_ASSERT_STRING_EQUAL(text_at(l, 4), "vvv\n[log truncated]");
    CU_ASSERT_STRING_EQUAL(text_at(l, 5), ""); /* empty still fits */
    json_t *o = fx_get(f, id);
    CU_ASSERT_TRUE(json_equal(json_object_get(o, "logs"), l));
    json_decref(o);
    /* b is full: its next byte is cut to nothing plus the marker */
    fx_clear(f);
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              HB("RUNNING", ",\"logs\":[{\"task\":\"b\",\"text\":\"x\"},"
                            "{\"task\":\"b\",\"text\":\"y\"},"
                            "{\"task\":\"a\",\"text\":\"z\"}]"),
              NULL),
        0);
    k = fx_find(f, PYOCO_EV_LOGS_APPENDED, 0);
    CU_ASSERT_FATAL(k >= 0);
    CU_ASSERT_EQUAL(json_array_size(f->ev[k].logs), 1);
    CU_ASSERT_STRING_EQUAL(text_at(f->ev[k].logs, 0), "\n[log truncated]");
    /* nothing stored: no event */
    fx_clear(f);
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              HB("RUNNING", ",\"logs\":[{\"task\":\"a\",\"text\":\"z\"}]"),
              NULL),
        0);
    CU_ASSERT_EQUAL(fx_count(f, PYOCO_EV_LOGS_APPENDED), 0);
    json_t *out = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_logs(f->reg, id, NULL, -1, &out), 0);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(out, "logs")), 7);
    json_decref(out);
    fx_free(f);
}

static void test_log_cap_utf8(void) {
    fixture *f = fx_new_cfg(1000, 10, NULL);
    char id[37];
    fx_submit(f, "f", NULL, NULL, id);
    fx_clear(f);
    /* "aaaaaaaa" (8) + "é" (2 bytes) = 10 fits exactly; then for task c
     * "aaaaaaaaa" (9) leaves 1 byte, and "é" must not be split: cut to 0
     * bytes; for task d 7 bytes leave 3, "€" (3 bytes) + "x" -> "€" */
    CU_ASSERT_EQUAL(
        fx_hb(f, id,
              HB("RUNNING",
                 ",\"logs\":[{\"task\":\"b\",\"text\":\"aaaaaaaa\\u00e9\"},"
                 "{\"task\":\"c\",\"text\":\"aaaaaaaaa\"},"
                 "{\"task\":\"c\",\"text\":\"\\u00e9\"},"
                 "{\"task\":\"d\",\"text\":\"aaaaaaa\"},"
                 "{\"task\":\"d\",\"text\":\"\\u20acx\"},"
                 "{\"task\":\"e\",\"text\":\"aaaaaaaa\"},"
                 "{\"task\":\"e\",\"text\":\"\\u20ac\"}]"),
              NULL),
        0);
    int k = fx_find(f, PYOCO_EV_LOGS_APPENDED, 0);
    CU_ASSERT_FATAL(k >= 0);
    json_t *l = f->ev[k].logs;
    CU_ASSERT_EQUAL_FATAL(json_array_size(l), 7);
    CU_ASSERT_STRING_EQUAL(text_at(l, 0), "aaaaaaaa\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(text_at(l, 2), "\n[log truncated]");
    CU_ASSERT_STRING_EQUAL(text_at(l, 4), "\xe2\x82\xac\n[log truncated]");
    /* 2 bytes left for a 3-byte character: nothing of it kept */
    CU_ASSERT_STRING_EQUAL(text_at(l, 6), "\n[log truncated]");
    fx_free(f);
}

static void test_invalid_bodies_change_nothing(void) {
    fixture *f = fx_new();
    char id[37];
    fx_submit(f, "f", NULL, NULL, id);
    json_t *before = fx_get(f, id);
    fx_clear(f);
    const char *bad[] = {
        "[]",
        "{\"run_status\":\"RUNNING\"}",
        "{\"run_status\":\"RUNNING\",\"task_states\":[]}",
        "{\"run_status\":\"RUNNING\",\"task_states\":{\"t\":1}}",
        "{\"task_states\":{}}",
        "{\"run_status\":5,\"task_states\":{}}",
        "{\"run_status\":\"DONE\",\"task_states\":{}}",
        "{\"run_status\":\"COMPLETED\",\"task_states\":{\"t\":\"SUCCEEDED\"},"
        "\"task_records\":{\"t\":1}}",
        "{\"run_status\":\"COMPLETED\",\"task_states\":{\"t\":\"SUCCEEDED\"},"
        "\"task_records\":[]}",
        "{\"run_status\":\"COMPLETED\",\"task_states\":{\"t\":\"SUCCEEDED\"},"
        "\"logs\":[{\"text\":\"a\"},\"b\"]}",
        "{\"run_status\":\"COMPLETED\",\"task_states\":{\"t\":\"SUCCEEDED\"},"
        "\"logs\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool cancel = false;
        CU_ASSERT_EQUAL(fx_hb(f, id, bad[i], &cancel), -EINVAL);
    }
    CU_ASSERT_EQUAL(pyoco_registry_heartbeat(f->reg, id, NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(f->nev, 0);
    json_t *after = fx_get(f, id);
    CU_ASSERT_TRUE(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    /* an invalid body is refused even for an unknown run (validation
     * comes first, as with the HTTP layer's 422) */
    CU_ASSERT_EQUAL(fx_hb(f, "nope", "[]", NULL), -EINVAL);
    fx_free(f);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("registry heartbeat", NULL, NULL);
    CU_add_test(s, "status and CANCELLING", test_status_and_cancelling);
    CU_add_test(s, "end_time once, RUN_FINISHED per terminal status",
                test_end_time_once_and_finished_per_status);
    CU_add_test(s, "rule order and task states",
                test_rule_order_and_task_states);
    CU_add_test(s, "record merge and task duration once",
                test_record_merge_and_duration_once);
    CU_add_test(s, "log cap", test_log_cap);
    CU_add_test(s, "log cap at UTF-8 boundaries", test_log_cap_utf8);
    CU_add_test(s, "invalid bodies change nothing",
                test_invalid_bodies_change_nothing);
}
