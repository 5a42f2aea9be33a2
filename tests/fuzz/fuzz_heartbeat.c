/* libFuzzer target: a heartbeat body (json_loadb of the input) straight into
 * pyoco_registry_heartbeat on a RUNNING run, bypassing the rest plugin's
 * validation, so the registry's own shape checks are what is tested.
 * Invariants (abort otherwise): the call returns 0 or -EINVAL; -EINVAL
 * changes nothing (the GET object is identical); the run still dumps as
 * valid JSON, and so do its logs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "registry.h"

static void fail(const char *what, int rc) {
    fprintf(stderr, "fuzz_heartbeat invariant: %s (rc %d)\n", what, rc);
    abort();
}

static json_t *get_run(pyoco_registry *reg, const char *id) {
    json_t *j = NULL;
    int rc = pyoco_registry_get(reg, id, &j);
    if (rc)
        fail("GET failed", rc);
    char *s = json_dumps(j, JSON_COMPACT);
    json_t *back = s ? json_loads(s, 0, NULL) : NULL;
    if (!back)
        fail("GET is not valid JSON", 0);
    json_decref(back);
    free(s);
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* What the rest plugin lets through to the registry (it rejects \u0000
     * and duplicate keys), except that any JSON type may arrive here. */
    json_t *body = json_loadb((const char *)data, size,
                              JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!body)
        return 0;
    /* Small limits so log truncation is reachable. */
    pyoco_registry_config cfg = {.max_run_history = 2, .max_log_bytes = 32};
    pyoco_bus *bus = pyoco_bus_new();
    pyoco_registry *reg = pyoco_registry_new(&cfg, bus);
    char id[37];
    json_t *got = NULL;
    if (!bus || !reg || pyoco_registry_submit(reg, "f", NULL, NULL, id) ||
        pyoco_registry_poll(reg, "w", NULL, &got))
        abort();
    json_decref(got);

    json_t *before = get_run(reg, id);
    bool cancel = false;
    int rc = pyoco_registry_heartbeat(reg, id, body, &cancel);
    if (rc != 0 && rc != -EINVAL)
        fail("heartbeat returned neither 0 nor -EINVAL", rc);
    json_t *after = get_run(reg, id);
    if (rc == -EINVAL && !json_equal(before, after))
        fail("-EINVAL but the run changed", rc);
    /* A second identical heartbeat must be as acceptable as the first. */
    int rc2 = pyoco_registry_heartbeat(reg, id, body, &cancel);
    if (rc2 != rc)
        fail("same heartbeat twice, different answer", rc2);
    json_t *logs = NULL;
    rc = pyoco_registry_logs(reg, id, NULL, -1, &logs);
    if (rc)
        fail("logs failed", rc);
    char *s = json_dumps(logs, JSON_COMPACT);
    if (!s)
        fail("logs cannot be dumped", 0);
    free(s);
    json_decref(logs);
    json_decref(before);
    json_decref(after);
    json_decref(body);
    pyoco_registry_free(reg);
    pyoco_bus_free(bus);
    return 0;
}
