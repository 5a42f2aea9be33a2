/* Bus: dispatch order, kind filtering, unsubscribe (also during a dispatch
 * and by owner, as at plugin unload), free functions, payload lifetime. */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"

typedef struct {
    char log[256];
    int frees;
} rec;

static rec R;

static void rec_append(const char *s) {
    strncat(R.log, s, sizeof(R.log) - strlen(R.log) - 1);
}

static void on_a(const pyoco_event *ev, void *ud) {
    (void)ev;
    rec_append((const char *)ud);
}

static void count_free(void *ud) {
    (void)ud;
    R.frees++;
}

static void test_order_and_kinds(void) {
    memset(&R, 0, sizeof(R));
    pyoco_bus *bus = pyoco_bus_new();
    CU_ASSERT_TRUE(pyoco_bus_subscribe(bus, PYOCO_EV_RUN_STATUS, on_a, "1",
                                       NULL, NULL) > 0);
    CU_ASSERT_TRUE(
        pyoco_bus_subscribe(bus, PYOCO_EV_ANY, on_a, "2", NULL, NULL) > 0);
    CU_ASSERT_TRUE(pyoco_bus_subscribe(bus, PYOCO_EV_RUN_SUBMITTED, on_a, "3",
                                       NULL, NULL) > 0);
    CU_ASSERT_TRUE(pyoco_bus_subscribe(bus, PYOCO_EV_RUN_STATUS, on_a, "4",
                                       NULL, NULL) > 0);
    pyoco_event ev = {.kind = PYOCO_EV_RUN_STATUS};
    CU_ASSERT_EQUAL(pyoco_bus_publish(bus, &ev), 1);
    CU_ASSERT_STRING_EQUAL(R.log, "124");
    CU_ASSERT_EQUAL(ev.size, sizeof(pyoco_event));
    CU_ASSERT_TRUE(ev.time > 1e9);
    R.log[0] = 0;
    pyoco_event ev2 = {.kind = PYOCO_EV_RUN_SUBMITTED};
    CU_ASSERT_EQUAL(pyoco_bus_publish(bus, &ev2), 2);
    CU_ASSERT_STRING_EQUAL(R.log, "23");
    CU_ASSERT_EQUAL(pyoco_bus_last_seq(bus), 2);
    CU_ASSERT_EQUAL(pyoco_bus_count(bus, PYOCO_EV_RUN_STATUS), 1);
    CU_ASSERT_EQUAL(pyoco_bus_subscribe(bus, 999, on_a, "x", NULL, NULL),
                    -EINVAL);
    pyoco_bus_free(bus);
}

static void test_unsubscribe_and_free(void) {
    memset(&R, 0, sizeof(R));
    pyoco_bus *bus = pyoco_bus_new();
    int owner_a, owner_b;
    int id1 =
        pyoco_bus_subscribe(bus, PYOCO_EV_ANY, on_a, "a", count_free, &owner_a);
    pyoco_bus_subscribe(bus, PYOCO_EV_ANY, on_a, "b", count_free, &owner_b);
    pyoco_bus_subscribe(bus, PYOCO_EV_ANY, on_a, "c", count_free, &owner_a);
    CU_ASSERT_EQUAL(pyoco_bus_unsubscribe(bus, id1, &owner_b), -ENOENT);
    CU_ASSERT_EQUAL(pyoco_bus_unsubscribe(bus, id1, &owner_a), 0);
    CU_ASSERT_EQUAL(R.frees, 1);
    CU_ASSERT_EQUAL(pyoco_bus_unsubscribe(bus, id1, NULL), -ENOENT);
    pyoco_event ev = {.kind = PYOCO_EV_RUN_STATUS};
    pyoco_bus_publish(bus, &ev);
    CU_ASSERT_STRING_EQUAL(R.log, "bc");
    /* What a plugin unload does: everything the owner registered goes. */
    CU_ASSERT_EQUAL(pyoco_bus_unsubscribe_owner(bus, &owner_a), 1);
    CU_ASSERT_EQUAL(R.frees, 2);
    R.log[0] = 0;
    pyoco_bus_publish(bus, &ev);
    CU_ASSERT_STRING_EQUAL(R.log, "b");
    pyoco_bus_free(bus);
    CU_ASSERT_EQUAL(R.frees, 3);
}

/* A subscriber that removes the next one and adds a new one mid-dispatch. */
static pyoco_bus *G_bus;
static int G_victim;

static void on_meddle(const pyoco_event *ev, void *ud) {
    (void)ev;
    rec_append((const char *)ud);
    if (G_victim) {
        CU_ASSERT_EQUAL(pyoco_bus_unsubscribe(G_bus, G_victim, NULL), 0);
        G_victim = 0;
        /* Many subscriptions force the array to grow during dispatch. */
        for (int i = 0; i < 40; i++)
            pyoco_bus_subscribe(G_bus, PYOCO_EV_RUN_STATUS, on_a, "n", NULL,
                                NULL);
    }
}

static void test_change_during_dispatch(void) {
    memset(&R, 0, sizeof(R));
    G_bus = pyoco_bus_new();
    pyoco_bus_subscribe(G_bus, PYOCO_EV_ANY, on_meddle, "m", NULL, NULL);
    G_victim =
        pyoco_bus_subscribe(G_bus, PYOCO_EV_ANY, on_a, "v", count_free, NULL);
    pyoco_bus_subscribe(G_bus, PYOCO_EV_ANY, on_a, "z", NULL, NULL);
    pyoco_event ev = {.kind = PYOCO_EV_RUN_STATUS};
    pyoco_bus_publish(G_bus, &ev);
    /* The victim is skipped at once; the new ones wait for the next event. */
    CU_ASSERT_STRING_EQUAL(R.log, "mz");
    CU_ASSERT_EQUAL(R.frees, 1);
    R.log[0] = 0;
    pyoco_bus_publish(G_bus, &ev);
    CU_ASSERT_EQUAL(strlen(R.log), 2 + 40);
    pyoco_bus_free(G_bus);
}

/* Payloads are valid during the callback only: a subscriber that keeps data
 * must copy it. This checks the contract from the subscriber's side: the
 * copy survives the publisher freeing its payload. */
static char *G_kept;

static void on_keep(const pyoco_event *ev, void *ud) {
    (void)ud;
    free(G_kept);
    G_kept = strdup(ev->run_id);
}

static void test_payload_lifetime(void) {
    pyoco_bus *bus = pyoco_bus_new();
    pyoco_bus_subscribe(bus, PYOCO_EV_RUN_SUBMITTED, on_keep, NULL, NULL, NULL);
    char *id = strdup("run-123");
    pyoco_event ev = {.kind = PYOCO_EV_RUN_SUBMITTED, .run_id = id};
    pyoco_bus_publish(bus, &ev);
    memset(id, 'X', strlen(id));
    free(id);
    CU_ASSERT_STRING_EQUAL(G_kept, "run-123");
    free(G_kept);
    G_kept = NULL;
    pyoco_bus_free(bus);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("bus", NULL, NULL);
    CU_add_test(s, "order and kinds", test_order_and_kinds);
    CU_add_test(s, "unsubscribe and free", test_unsubscribe_and_free);
    CU_add_test(s, "change during dispatch", test_change_during_dispatch);
    CU_add_test(s, "payload lifetime", test_payload_lifetime);
}
