/* The serialized reads: get_text and list_text always equal the dumped
 * get/list, whatever changed in between (the per-run text cache must be
 * dropped by every change). */
#include "test_registry_fixture.h"

static void expect_same(fixture *f, const char *id) {
    json_t *o = fx_get(f, id);
    char *want = json_dumps(o, JSON_COMPACT), *got = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(pyoco_registry_get_text(f->reg, id, &got, &len), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, want);
    CU_ASSERT_EQUAL(len, strlen(want));
    free(got);
    free(want);
    json_decref(o);

    json_t *l = NULL;
    CU_ASSERT_EQUAL(pyoco_registry_list(f->reg, NULL, NULL, 0, &l), 0);
    want = json_dumps(l, JSON_COMPACT);
    CU_ASSERT_EQUAL(pyoco_registry_list_text(f->reg, NULL, NULL, 0, &got, &len),
                    0);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
    free(want);
    json_decref(l);
}

static void test_text_tracks_every_change(void) {
    fixture *f = fx_new();
    char a[37], b[37];
    fx_submit(f, "demo", "{\"x\":1.5}", "[\"gpu\"]", a);
    expect_same(f, a);
    fake_now += 1;
    fx_submit(f, "other", NULL, NULL, b);
    expect_same(f, a); /* cached a, then list */
    fx_poll(f, "w1", "[\"gpu\"]");
    expect_same(f, a); /* metadata.worker_id */
    fx_hb(f, a,
          "{\"task_states\":{\"t1\":\"RUNNING\"},\"task_records\":{\"t1\":"
          "{\"started_at\":1.0}},\"logs\":[{\"seq\":0,\"task\":\"t1\","
          "\"stream\":\"stdout\",\"text\":\"hi\"}],\"run_status\":\"RUNNING\"}",
          NULL);
    expect_same(f, a);
    CU_ASSERT_EQUAL(pyoco_registry_cancel(f->reg, a), 0);
    expect_same(f, a);
    fx_hb(
        f, a,
        "{\"task_states\":{\"t1\":\"CANCELLED\"},\"run_status\":\"CANCELLED\"}",
        NULL);
    expect_same(f, a);
    expect_same(f, b);
    char *t = NULL;
    size_t n;
    CU_ASSERT_EQUAL(pyoco_registry_get_text(f->reg, "nope", &t, &n), -ENOENT);
    CU_ASSERT_EQUAL(pyoco_registry_list_text(f->reg, "BOGUS", NULL, 0, &t, &n),
                    -EINVAL);
    CU_ASSERT_EQUAL(
        pyoco_registry_list_text(f->reg, "PENDING", NULL, 5, &t, &n), 0);
    json_t *pending = json_loads(t, 0, NULL);
    CU_ASSERT_EQUAL(json_array_size(pending), 1);
    json_decref(pending);
    free(t);
    fx_free(f);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("registry text", NULL, NULL);
    CU_add_test(s, "text tracks every change", test_text_tracks_every_change);
}
