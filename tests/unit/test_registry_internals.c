/* The registry's building blocks on their own: the id hash table under
 * churn (backward-shift deletion), the tag-set FIFOs, uuid4 format and
 * uniqueness, and the archive writer (files, flush, drop mode). */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "registry_internal.h"
#include "uuid.h"

static void test_run_table_churn(void) {
    enum { N = 20000 };
    pyoco_run *runs = calloc(N, sizeof *runs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(runs);
    pyoco_run_table t;
    pyoco_run_table_init(&t);
    for (int i = 0; i < N; i++) {
        snprintf(runs[i].id, sizeof runs[i].id, "run-%d", i);
        CU_ASSERT_EQUAL(pyoco_run_table_put(&t, &runs[i]), 0);
    }
    CU_ASSERT_EQUAL(t.count, N);
    pyoco_run dup = {0};
    snprintf(dup.id, sizeof dup.id, "run-7");
    CU_ASSERT_EQUAL(pyoco_run_table_put(&t, &dup), -EEXIST);
    /* delete every third, in a scattered order, then re-add some */
    char gone[N] = {0};
    for (int k = 0; k < N; k++) {
        int i = (int)(((unsigned)k * 7919u) % N);
        if (i % 3 == 0) {
            pyoco_run_table_del(&t, &runs[i]);
            gone[i] = 1;
        }
    }
    pyoco_run_table_del(&t, &dup); /* not in the table: no-op */
    int bad = 0;
    for (int i = 0; i < N; i++) {
        pyoco_run *r = pyoco_run_table_get(&t, runs[i].id);
        bad += gone[i] ? r != NULL : r != &runs[i];
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (int i = 0; i < N; i += 6) {
        CU_ASSERT_EQUAL(pyoco_run_table_put(&t, &runs[i]), 0);
        gone[i] = 0;
    }
    bad = 0;
    for (int i = 0; i < N; i++) {
        pyoco_run *r = pyoco_run_table_get(&t, runs[i].id);
        bad += gone[i] ? r != NULL : r != &runs[i];
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_PTR_NULL(pyoco_run_table_get(&t, "nope"));
    pyoco_run_table_fini(&t);
    free(runs);
}

static void test_run_queue_sets(void) {
    pyoco_run_queue q;
    CU_ASSERT_EQUAL_FATAL(pyoco_run_queue_init(&q), 0);
    pyoco_run r[6];
    memset(r, 0, sizeof r);
    const char *tags[] = {NULL, "[\"a\"]", "[\"b\",\"a\"]", "[\"a\",\"b\"]",
                          "[]", "[\"a\"]"};
    for (int i = 0; i < 6; i++) {
        r[i].seq = (uint64_t)i + 1;
        json_t *t = tags[i] ? json_loads(tags[i], 0, NULL) : NULL;
        CU_ASSERT_EQUAL(pyoco_run_queue_push(&q, &r[i], t), 0);
        json_decref(t);
    }
    CU_ASSERT_EQUAL(q.count, 6);
    CU_ASSERT_EQUAL(q.nsets, 3); /* {}, {a}, {a,b} */
    json_t *bad = json_loads("[1]", 0, NULL);
    pyoco_run x = {0};
    CU_ASSERT_EQUAL(pyoco_run_queue_push(&q, &x, bad), -EINVAL);
    json_decref(bad);
    /* removing the middle of a FIFO keeps the rest in order */
    pyoco_run_queue_remove(&q, &r[4]);
    CU_ASSERT_PTR_NULL(r[4].queue);
    pyoco_run_queue_remove(&q, &r[4]); /* not queued: no-op */
    json_t *ab = json_loads("[\"b\",\"a\",\"c\"]", 0, NULL);
    CU_ASSERT_PTR_EQUAL(pyoco_run_queue_pop(&q, ab), &r[0]);
    CU_ASSERT_PTR_EQUAL(pyoco_run_queue_pop(&q, NULL), NULL);
    CU_ASSERT_EQUAL(q.nsets, 2); /* the empty set's FIFO is gone */
    CU_ASSERT_PTR_EQUAL(pyoco_run_queue_pop(&q, ab), &r[1]);
    CU_ASSERT_PTR_EQUAL(pyoco_run_queue_pop(&q, ab), &r[2]);
    CU_ASSERT_PTR_EQUAL(pyoco_run_queue_pop(&q, ab), &r[3]);
    CU_ASSERT_EQUAL(q.nsets, 1);
    /* a set that came back after being dropped works again */
    pyoco_run y = {.seq = 10};
    json_t *t = json_loads("[\"a\",\"b\"]", 0, NULL);
    CU_ASSERT_EQUAL(pyoco_run_queue_push(&q, &y, t), 0);
    json_decref(t);
    CU_ASSERT_PTR_EQUAL(pyoco_run_queue_pop(&q, ab), &r[5]);
    CU_ASSERT_PTR_EQUAL(pyoco_run_queue_pop(&q, ab), &y);
    CU_ASSERT_PTR_NULL(pyoco_run_queue_pop(&q, ab));
    CU_ASSERT_EQUAL(q.count, 0);
    CU_ASSERT_EQUAL(q.nsets, 0);
    json_decref(ab);
    pyoco_run_queue_fini(&q);
}

static void test_uuid4(void) {
    char a[37], b[37];
    for (int i = 0; i < 1000; i++) {
        CU_ASSERT_EQUAL(pyoco_uuid4(a), 0);
        CU_ASSERT_EQUAL(pyoco_uuid4(b), 0);
        CU_ASSERT_STRING_NOT_EQUAL(a, b);
        CU_ASSERT_EQUAL(strlen(a), 36);
        CU_ASSERT_TRUE(a[8] == '-' && a[13] == '-' && a[18] == '-' &&
                       a[23] == '-');
        CU_ASSERT_EQUAL(a[14], '4');
        CU_ASSERT_PTR_NOT_NULL(strchr("89ab", a[19]));
        CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef-"), 36);
    }
}

static void test_archive_writer(void) {
    char dir[64] = "/tmp/pyoco-arch-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof sub, "%s/x/y", dir);
    pyoco_archive *a = pyoco_archive_new(sub);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        CU_ASSERT_EQUAL(pyoco_archive_put(
                            a, name, json_pack("{s:i, s:f}", "i", i, "f", 1.0)),
                        0);
    }
    CU_ASSERT_EQUAL(pyoco_archive_put(a, "../evil", json_object()), -EINVAL);
    CU_ASSERT_EQUAL(pyoco_archive_put(a, "", json_object()), -EINVAL);
    pyoco_archive_flush(a);
    CU_ASSERT_EQUAL(pyoco_archive_written(a), 50);
    CU_ASSERT_EQUAL(pyoco_archive_errors(a), 2);
    char path[192];
    snprintf(path, sizeof path, "%s/r49.json", sub);
    json_t *j = json_load_file(path, 0, NULL);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "i")), 49);
    CU_ASSERT_TRUE(json_is_real(json_object_get(j, "f")));
    json_decref(j);
    /* free writes what is still pending */
    CU_ASSERT_EQUAL(pyoco_archive_put(a, "last", json_object()), 0);
    pyoco_archive_free(a);
    snprintf(path, sizeof path, "%s/last.json", sub);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
    /* no directory: everything dropped, no thread, no files */
    a = pyoco_archive_new("");
    CU_ASSERT_EQUAL(pyoco_archive_put(a, "r", json_object()), 0);
    pyoco_archive_flush(a);
    CU_ASSERT_EQUAL(pyoco_archive_written(a), 0);
    pyoco_archive_free(a);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("registry internals", NULL, NULL);
    CU_add_test(s, "run table under churn", test_run_table_churn);
    CU_add_test(s, "tag-set FIFOs", test_run_queue_sets);
    CU_add_test(s, "uuid4", test_uuid4);
    CU_add_test(s, "archive writer", test_archive_writer);
}
