/* CUnit: the replay ring (bounded, floor, where a resume starts) and the
 * table of runs (pins, LRU cap, drops). */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sse_ring.h"

#define PLAIN(s) ((sse_id){(s), SSE_IDX_PLAIN})

static void push(sse_ring *r, sse_id id) {
    char text[64];
    int n = snprintf(text, sizeof(text), "e%llu.%u\n\n",
                     (unsigned long long)id.seq, (unsigned)id.idx);
    CU_ASSERT_EQUAL(sse_ring_push(r, id, text, (size_t)n), 0);
}

static void test_ring_bounded(void) {
    sse_ring r;
    sse_ring_init(&r, 3, PLAIN(10));
    CU_ASSERT_EQUAL(r.count, 0);
    CU_ASSERT_PTR_NULL(sse_ring_at(&r, 0));
    for (uint64_t s = 11; s <= 15; s++)
        push(&r, PLAIN(s));
    CU_ASSERT_EQUAL(r.count, 3);
    CU_ASSERT_EQUAL(sse_ring_at(&r, 0)->id.seq, 13);
    CU_ASSERT_EQUAL(sse_ring_at(&r, 2)->id.seq, 15);
    CU_ASSERT_PTR_NULL(sse_ring_at(&r, 3));
    CU_ASSERT_STRING_EQUAL(sse_ring_at(&r, 1)->text, "e14.4294967295\n\n");
    CU_ASSERT_EQUAL(sse_ring_at(&r, 1)->len, strlen("e14.4294967295\n\n"));
    /* the last dropped entry is the new floor */
    CU_ASSERT_EQUAL(r.floor.seq, 12);
    sse_ring_free(&r);
}

/* The allocation grows as entries come (8, 16, ... up to cap), keeping
 * the order across wrap-arounds. */
static void test_ring_growth(void) {
    sse_ring r;
    sse_ring_init(&r, 20, PLAIN(0));
    CU_ASSERT_EQUAL(r.alloc, 0);
    for (uint64_t s = 1; s <= 5; s++)
        push(&r, PLAIN(s));
    CU_ASSERT_EQUAL(r.alloc, 8);
    for (uint64_t s = 6; s <= 50; s++) {
        push(&r, (sse_id){s, 0});
        CU_ASSERT(r.alloc <= 20);
    }
    CU_ASSERT_EQUAL(r.alloc, 20);
    CU_ASSERT_EQUAL(r.count, 20);
    for (size_t k = 0; k < 20; k++)
        CU_ASSERT_EQUAL(sse_ring_at(&r, k)->id.seq, 31 + k);
    CU_ASSERT_EQUAL(r.floor.seq, 30);
    CU_ASSERT_EQUAL(sse_ring_resume(&r, (sse_id){40, 0}), 10);
    sse_ring_free(&r);
    CU_ASSERT_EQUAL(r.count, 0);
}

static void test_ring_resume(void) {
    sse_ring r;
    sse_ring_init(&r, 4, PLAIN(10));
    /* nothing yet: resuming from the floor replays nothing */
    CU_ASSERT_EQUAL(sse_ring_resume(&r, PLAIN(10)), 0);
    CU_ASSERT_EQUAL(sse_ring_resume(&r, PLAIN(9)), -ESTALE);
    push(&r, PLAIN(11));
    push(&r, (sse_id){12, 0});
    push(&r, (sse_id){12, 1});
    push(&r, PLAIN(14));
    CU_ASSERT_EQUAL(sse_ring_resume(&r, PLAIN(10)), 0);
    CU_ASSERT_EQUAL(sse_ring_resume(&r, PLAIN(11)), 1);
    CU_ASSERT_EQUAL(sse_ring_resume(&r, (sse_id){12, 0}), 2);
    CU_ASSERT_EQUAL(sse_ring_resume(&r, (sse_id){12, 1}), 3);
    /* an id between entries (a snapshot's) */
    CU_ASSERT_EQUAL(sse_ring_resume(&r, PLAIN(13)), 3);
    CU_ASSERT_EQUAL(sse_ring_resume(&r, PLAIN(14)), 4);
    CU_ASSERT_EQUAL(sse_ring_resume(&r, PLAIN(99)), 4);
    /* a log entry of the floor's seq that came before the floor */
    CU_ASSERT_EQUAL(sse_ring_resume(&r, (sse_id){10, 2}), -ESTALE);
    /* drop 11 and 12.0: 12.0 is the floor, 11 is too old */
    push(&r, PLAIN(15));
    push(&r, PLAIN(16));
    CU_ASSERT_EQUAL(sse_ring_resume(&r, PLAIN(11)), -ESTALE);
    CU_ASSERT_EQUAL(sse_ring_resume(&r, (sse_id){12, 0}), 0);
    CU_ASSERT_EQUAL(sse_ring_at(&r, 0)->id.idx, 1);
    sse_ring_free(&r);
}

static sse_slot *pin(sse_table *t, const char *id, bool want_created) {
    bool created = !want_created;
    sse_slot *s = sse_table_pin(t, id, PLAIN(1), &created);
    CU_ASSERT_PTR_NOT_NULL(s);
    CU_ASSERT_EQUAL(created, want_created);
    return s;
}

static void test_table_lru(void) {
    sse_table t;
    CU_ASSERT_EQUAL_FATAL(sse_table_init(&t, 3, 8), 0);
    char id[40];
    sse_slot *s[5];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "run-%d", i);
        s[i] = pin(&t, id, true);
    }
    /* pinned slots are never dropped, even over the cap */
    CU_ASSERT_EQUAL(t.count, 5);
    CU_ASSERT_PTR_EQUAL(sse_table_get(&t, "run-3"), s[3]);
    sse_table_unpin(&t, s[0]); /* 5 > 3 but s[0] is the only unpinned */
    CU_ASSERT_EQUAL(t.count, 5);
    sse_table_unpin(&t, s[1]); /* drops run-0, the least recently used */
    CU_ASSERT_EQUAL(t.count, 4);
    CU_ASSERT_PTR_NULL(sse_table_get(&t, "run-0"));
    sse_table_unpin(&t, s[2]);
    CU_ASSERT_EQUAL(t.count, 3);
    CU_ASSERT_PTR_NULL(sse_table_get(&t, "run-1"));
    /* touching run-2 makes run-3 the oldest once it is unpinned */
    sse_table_unpin(&t, s[3]);
    CU_ASSERT_EQUAL(t.count, 3);
    sse_table_touch(&t, s[2]);
    sse_table_unpin(&t, s[4]);
    CU_ASSERT_EQUAL(t.dropped, 2);
    CU_ASSERT_PTR_NOT_NULL(sse_table_get(&t, "run-2"));
    CU_ASSERT_PTR_NOT_NULL(sse_table_get(&t, "run-3"));
    CU_ASSERT_PTR_NOT_NULL(sse_table_get(&t, "run-4"));
    /* pinning again finds the same slot and its ring */
    push(&s[3]->ring, PLAIN(5));
    sse_slot *again = pin(&t, "run-3", false);
    CU_ASSERT_PTR_EQUAL(again, s[3]);
    CU_ASSERT_EQUAL(again->ring.count, 1);
    /* a new run over the cap pushes out the oldest unpinned (run-4 was
     * unpinned after run-2 was touched; run-2 is now the oldest) */
    sse_slot *n = pin(&t, "run-new", true);
    sse_table_unpin(&t, n);
    CU_ASSERT_PTR_NULL(sse_table_get(&t, "run-2"));
    CU_ASSERT_PTR_NOT_NULL(sse_table_get(&t, "run-new"));
    CU_ASSERT_EQUAL(t.count, 3);
    /* drop: only unpinned slots */
    sse_table_drop(&t, again); /* pinned: kept */
    CU_ASSERT_PTR_NOT_NULL(sse_table_get(&t, "run-3"));
    sse_table_unpin(&t, again);
    sse_table_drop(&t, again);
    CU_ASSERT_PTR_NULL(sse_table_get(&t, "run-3"));
    CU_ASSERT_EQUAL(t.count, 2);
    sse_table_free(&t);
}

static void test_table_many(void) {
    sse_table t;
    CU_ASSERT_EQUAL_FATAL(sse_table_init(&t, 1000, 2), 0);
    char id[40];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "%08d-0000-4000-8000-000000000000", i);
        sse_slot *s = pin(&t, id, true);
        push(&s->ring, PLAIN((uint64_t)i + 2));
        sse_table_unpin(&t, s);
    }
    CU_ASSERT_EQUAL(t.count, 1000);
    CU_ASSERT_EQUAL(t.dropped, 4000);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "%08d-0000-4000-8000-000000000000", i);
        sse_slot *s = sse_table_get(&t, id);
        CU_ASSERT((s != NULL) == (i >= 4000));
        if (s)
            CU_ASSERT_EQUAL(sse_ring_at(&s->ring, 0)->id.seq, (uint64_t)i + 2);
    }
    /* ids longer than a run id are refused */
    bool created;
    char longid[64];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[63] = '\0';
    CU_ASSERT_PTR_NULL(sse_table_pin(&t, longid, PLAIN(1), &created));
    sse_table_free(&t);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("sse replay ring and run table", NULL, NULL);
    CU_add_test(s, "ring is bounded", test_ring_bounded);
    CU_add_test(s, "ring growth", test_ring_growth);
    CU_add_test(s, "ring resume", test_ring_resume);
    CU_add_test(s, "table LRU and pins", test_table_lru);
    CU_add_test(s, "table with many runs", test_table_many);
}
