/* core/registry.c - the run registry: lifecycle, submit, cancel, poll,
 * queries, retention and the events they publish. Heartbeats and restores
 * are in registry_heartbeat.c, rendering in registry_json.c. */
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry_internal.h"
#include "uuid.h"

#define DEFAULT_MAX_RUN_HISTORY 50
#define DEFAULT_MAX_LOG_BYTES 1048576

static double wall_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double pyoco_registry_now(const pyoco_registry *reg) {
    return reg->cfg.now ? reg->cfg.now() : wall_clock();
}

pyoco_run_status pyoco_registry_status_parse(const char *name) {
    if (!name)
        return PYOCO_STATUS_NONE;
    for (int s = 1; s < PYOCO_STATUS_COUNT; s++)
        if (strcmp(name, pyoco_status_name((pyoco_run_status)s)) == 0)
            return (pyoco_run_status)s;
    return PYOCO_STATUS_NONE;
}

pyoco_registry *pyoco_registry_new(const pyoco_registry_config *cfg,
                                   pyoco_bus *bus) {
    pyoco_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return NULL;
    if (cfg)
        reg->cfg = *cfg;
    if (!reg->cfg.max_run_history)
        reg->cfg.max_run_history = DEFAULT_MAX_RUN_HISTORY;
    if (!reg->cfg.max_log_bytes)
        reg->cfg.max_log_bytes = DEFAULT_MAX_LOG_BYTES;
    reg->cfg.archive_dir = NULL; /* the archive keeps its own copy */
    reg->bus = bus;
    reg->next_seq = 1;
    pyoco_run_table_init(&reg->table);
    reg->archive = pyoco_archive_new(cfg ? cfg->archive_dir : NULL);
    reg->empty_object = json_object();
    reg->empty_array = json_array();
    if (!reg->archive || !reg->empty_object || !reg->empty_array ||
        pyoco_run_queue_init(&reg->queue) < 0) {
        pyoco_registry_free(reg);
        return NULL;
    }
    return reg;
}

void pyoco_registry_run_free(pyoco_run *run) {
    for (uint32_t i = 0; i < run->ntasks; i++) {
        free(run->tasks[i].name);
        json_decref(run->tasks[i].state);
        json_decref(run->tasks[i].record);
    }
    free(run->tasks);
    json_decref(run->task_index);
    free(run->state_order);
    free(run->record_order);
    free(run->flow_name);
    json_decref(run->params);
    json_decref(run->tags);
    json_decref(run->metadata);
    json_decref(run->logs);
    free(run->text);
    free(run);
}

void pyoco_registry_free(pyoco_registry *reg) {
    if (!reg)
        return;
    pyoco_archive_free(reg->archive); /* writes what is pending */
    if (reg->queue.index)
        pyoco_run_queue_fini(&reg->queue);
    for (pyoco_run *r = reg->all_head, *next; r; r = next) {
        next = r->all_next;
        pyoco_registry_run_free(r);
    }
    pyoco_run_table_fini(&reg->table);
    json_decref(reg->empty_object);
    json_decref(reg->empty_array);
    free(reg);
}

/* ---- run helpers ---------------------------------------------------- */

pyoco_task *pyoco_run_task(pyoco_run *run, const char *name, bool create) {
    json_t *idx =
        run->task_index ? json_object_get(run->task_index, name) : NULL;
    if (idx)
        return &run->tasks[json_integer_value(idx)];
    if (!create)
        return NULL;
    if (!run->task_index && !(run->task_index = json_object()))
        return NULL;
    if (run->ntasks == run->cap_tasks) {
        uint32_t nc = run->cap_tasks ? run->cap_tasks * 2 : 4;
        pyoco_task *nt = realloc(run->tasks, nc * sizeof *nt);
        if (!nt)
            return NULL;
        run->tasks = nt;
        run->cap_tasks = nc;
    }
    pyoco_task *t = &run->tasks[run->ntasks];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name)))
        return NULL;
    if (json_object_set_new(run->task_index, name, json_integer(run->ntasks)) !=
        0) {
        free(t->name);
        return NULL;
    }
    run->ntasks++;
    return t;
}

int pyoco_run_order_add(uint32_t **order, uint32_t *n, uint32_t *cap,
                        uint32_t idx) {
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 4;
        uint32_t *no = realloc(*order, nc * sizeof *no);
        if (!no)
            return -ENOMEM;
        *order = no;
        *cap = nc;
    }
    (*order)[(*n)++] = idx;
    return 0;
}

/* All runs are kept by start_time (ties: registration order); submits
 * arrive in time order, so the scan back from the tail is O(1) then. */
static void all_insert(pyoco_registry *reg, pyoco_run *run) {
    pyoco_run *after = reg->all_tail;
    while (after && after->start_time > run->start_time)
        after = after->all_prev;
    run->all_prev = after;
    run->all_next = after ? after->all_next : reg->all_head;
    if (run->all_next)
        run->all_next->all_prev = run;
    else
        reg->all_tail = run;
    if (after)
        after->all_next = run;
    else
        reg->all_head = run;
}

static void all_remove(pyoco_registry *reg, pyoco_run *run) {
    if (run->all_prev)
        run->all_prev->all_next = run->all_next;
    else
        reg->all_head = run->all_next;
    if (run->all_next)
        run->all_next->all_prev = run->all_prev;
    else
        reg->all_tail = run->all_prev;
    run->all_prev = run->all_next = NULL;
}

/* Terminal runs by submission order; runs mostly finish in about the
 * order they came, so the scan back from the tail is short. */
static void term_insert(pyoco_registry *reg, pyoco_run *run) {
    if (run->in_term)
        return;
    pyoco_run *after = reg->term_tail;
    while (after && after->seq > run->seq)
        after = after->term_prev;
    run->term_prev = after;
    run->term_next = after ? after->term_next : reg->term_head;
    if (run->term_next)
        run->term_next->term_prev = run;
    else
        reg->term_tail = run;
    if (after)
        after->term_next = run;
    else
        reg->term_head = run;
    run->in_term = true;
}

static void term_remove(pyoco_registry *reg, pyoco_run *run) {
    if (!run->in_term)
        return;
    if (run->term_prev)
        run->term_prev->term_next = run->term_next;
    else
        reg->term_head = run->term_next;
    if (run->term_next)
        run->term_next->term_prev = run->term_prev;
    else
        reg->term_tail = run->term_prev;
    run->term_prev = run->term_next = NULL;
    run->in_term = false;
}

void pyoco_registry_set_status(pyoco_registry *reg, pyoco_run *run,
                               pyoco_run_status st) {
    if (run->status == st)
        return;
    reg->by_status[run->status]--;
    reg->by_status[st]++;
    run->status = st;
    /* only PENDING runs wait; a cancelled one leaves at once */
    if (st != PYOCO_STATUS_PENDING)
        pyoco_run_queue_remove(&reg->queue, run);
    if (pyoco_status_is_terminal(st)) {
        if (!run->has_end) {
            run->has_end = true;
            run->end_time = pyoco_registry_now(reg);
        }
        term_insert(reg, run);
    } else {
        term_remove(reg, run); /* a worker may move a run back */
    }
}

void pyoco_registry_event(pyoco_registry *reg, const pyoco_run *run,
                          pyoco_event *ev, uint32_t kind) {
    /* Every change of a run is followed by its event: the one place to
     * drop the run's cached text (registry_internal.h). */
    pyoco_run_text_drop((pyoco_run *)run);
    memset(ev, 0, sizeof *ev);
    ev->size = sizeof *ev;
    ev->kind = kind;
    ev->time = pyoco_registry_now(reg);
    ev->run_id = run->id;
    ev->flow_name = run->flow_name;
    ev->status = run->status;
    ev->start_time = run->start_time;
    ev->end_time = run->has_end ? run->end_time : 0;
    ev->params = run->params;
    ev->tags = run->tags;
    ev->metadata = run->metadata ? run->metadata : reg->empty_object;
    ev->task_duration_ms = -1;
    ev->run_duration_s = -1;
}

bool pyoco_registry_notify_finished(pyoco_registry *reg, pyoco_run *run) {
    if (!pyoco_status_is_terminal(run->status))
        return false;
    uint8_t bit = (uint8_t)(1u << run->status);
    if (run->finished_mask & bit)
        return false;
    run->finished_mask |= bit;
    pyoco_event ev;
    pyoco_registry_event(reg, run, &ev, PYOCO_EV_RUN_FINISHED);
    if (!run->duration_observed) {
        run->duration_observed = true;
        double d = run->end_time - run->start_time;
        ev.run_duration_s = d >= 0 ? d : -1;
    }
    pyoco_bus_publish(reg->bus, &ev);
    return true;
}

static void publish_status(pyoco_registry *reg, pyoco_run *run,
                           pyoco_run_status prev) {
    pyoco_event ev;
    pyoco_registry_event(reg, run, &ev, PYOCO_EV_RUN_STATUS);
    ev.prev_status = prev;
    pyoco_bus_publish(reg->bus, &ev);
}

static void evict(pyoco_registry *reg, pyoco_run *run) {
    term_remove(reg, run); /* no nested retention picks it again */
    run->pin++;
    pyoco_event ev;
    pyoco_registry_event(reg, run, &ev, PYOCO_EV_RUN_EVICTED);
    pyoco_bus_publish(reg->bus, &ev);
    /* the rendering shares only values nobody changes, and the run is
     * freed right after, so the writer thread may own it alone */
    json_t *obj = pyoco_run_render(run);
    if (obj)
        pyoco_archive_put(reg->archive, run->id, obj);
    pyoco_registry_unregister(reg, run);
    reg->evicted++;
    pyoco_registry_run_free(run);
}

/* Pinned runs are rare (the ones a command is working on), so this is
 * the head of the list in practice. */
static pyoco_run *first_evictable(const pyoco_registry *reg) {
    for (pyoco_run *r = reg->term_head; r; r = r->term_next)
        if (!r->pin)
            return r;
    return NULL;
}

void pyoco_registry_enforce_retention(pyoco_registry *reg) {
    if (reg->in_retention)
        return; /* the loop below re-checks the count after each eviction */
    reg->in_retention = true;
    pyoco_run *r;
    while (reg->table.count > reg->cfg.max_run_history &&
           (r = first_evictable(reg)))
        evict(reg, r);
    reg->in_retention = false;
}

/* ---- commands ------------------------------------------------------- */

static bool is_string_array(const json_t *a) {
    if (!json_is_array(a))
        return false;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_string(json_array_get(a, i)))
            return false;
    return true;
}

/* Register a new run: table, time list, counters. */
int pyoco_registry_register(pyoco_registry *reg, pyoco_run *run) {
    int rc = pyoco_run_table_put(&reg->table, run);
    if (rc < 0)
        return rc;
    run->seq = reg->next_seq++;
    all_insert(reg, run);
    reg->by_status[run->status]++;
    if (pyoco_status_is_terminal(run->status))
        term_insert(reg, run);
    return 0;
}

void pyoco_registry_unregister(pyoco_registry *reg, pyoco_run *run) {
    pyoco_watch_clear(reg, run);
    pyoco_run_queue_remove(&reg->queue, run);
    term_remove(reg, run);
    all_remove(reg, run);
    pyoco_run_table_del(&reg->table, run);
    reg->by_status[run->status]--;
}

int pyoco_registry_submit(pyoco_registry *reg, const char *flow_name,
                          const json_t *params, const json_t *tags,
                          char run_id_out[37]) {
    if (!flow_name || !*flow_name || (params && !json_is_object(params)) ||
        (tags && !is_string_array(tags)))
        return -EINVAL;
    pyoco_run *run = calloc(1, sizeof *run);
    if (!run)
        return -ENOMEM;
    run->status = PYOCO_STATUS_PENDING;
    run->start_time = pyoco_registry_now(reg);
    run->flow_name = strdup(flow_name);
    /* the empty {} and [] are shared: most runs have no params or tags */
    run->params = params && json_object_size(params)
                      ? json_deep_copy(params)
                      : json_incref(reg->empty_object);
    run->tags = tags && json_array_size(tags) ? json_deep_copy(tags)
                                              : json_incref(reg->empty_array);
    int rc = -ENOMEM;
    if (!run->flow_name || !run->params || !run->tags)
        goto fail;
    do {
        if ((rc = pyoco_uuid4(run->id)) < 0)
            goto fail;
    } while ((rc = pyoco_registry_register(reg, run)) == -EEXIST);
    if (rc < 0)
        goto fail;
    if ((rc = pyoco_run_queue_push(&reg->queue, run, run->tags)) < 0) {
        pyoco_registry_unregister(reg, run);
        goto fail;
    }
    memcpy(run_id_out, run->id, 37);

    run->pin++;
    pyoco_event ev;
    pyoco_registry_event(reg, run, &ev, PYOCO_EV_RUN_SUBMITTED);
    pyoco_bus_publish(reg->bus, &ev);
    publish_status(reg, run, PYOCO_STATUS_NONE);
    run->pin--;
    pyoco_registry_enforce_retention(reg);
    return 0;
fail:
    pyoco_registry_run_free(run);
    return rc;
}

int pyoco_registry_get(pyoco_registry *reg, const char *run_id, json_t **out) {
    pyoco_run *run = run_id ? pyoco_run_table_get(&reg->table, run_id) : NULL;
    if (!run)
        return -ENOENT;
    *out = pyoco_run_render(run);
    return *out ? 0 : -ENOMEM;
}

static bool list_match(const pyoco_run *r, pyoco_run_status st,
                       const char *flow) {
    return (st == PYOCO_STATUS_NONE || r->status == st) &&
           (!flow || strcmp(r->flow_name, flow) == 0);
}

/* Visit matching runs newest first, like a stable sort on start_time
 * descending: runs with equal start_time keep their registration order, so
 * each group of equal times is walked forwards. Stops at limit (0 = none)
 * or when visit fails. */
static int list_walk(pyoco_registry *reg, const char *status, const char *flow,
                     size_t limit, int (*visit)(pyoco_run *, void *),
                     void *ud) {
    pyoco_run_status st = PYOCO_STATUS_NONE;
    if (status &&
        (st = pyoco_registry_status_parse(status)) == PYOCO_STATUS_NONE)
        return -EINVAL;
    size_t n = 0;
    for (pyoco_run *r = reg->all_tail; r && (!limit || n < limit);) {
        pyoco_run *g = r;
        while (g->all_prev && g->all_prev->start_time == r->start_time)
            g = g->all_prev;
        for (pyoco_run *x = g; x != r->all_next && (!limit || n < limit);
             x = x->all_next) {
            if (!list_match(x, st, flow))
                continue;
            int rc = visit(x, ud);
            if (rc < 0)
                return rc;
            n++;
        }
        r = g->all_prev;
    }
    return 0;
}

static int visit_render(pyoco_run *run, void *ud) {
    json_t *o = pyoco_run_render(run);
    return o && json_array_append_new(ud, o) == 0 ? 0 : -ENOMEM;
}

int pyoco_registry_list(pyoco_registry *reg, const char *status,
                        const char *flow, size_t limit, json_t **out) {
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    int rc = list_walk(reg, status, flow, limit, visit_render, arr);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

typedef struct text_buf {
    char *p;
    size_t len, cap;
} text_buf;

static int text_add(text_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int visit_text(pyoco_run *run, void *ud) {
    text_buf *b = ud;
    const char *t;
    size_t n;
    int rc = pyoco_run_text(run, &t, &n);
    if (rc == 0 && b->len > 1)
        rc = text_add(b, ",", 1);
    return rc ? rc : text_add(b, t, n);
}

int pyoco_registry_list_text(pyoco_registry *reg, const char *status,
                             const char *flow, size_t limit, char **out,
                             size_t *len) {
    text_buf b = {0};
    int rc = text_add(&b, "[", 1);
    if (rc == 0)
        rc = list_walk(reg, status, flow, limit, visit_text, &b);
    if (rc == 0)
        rc = text_add(&b, "]", 1);
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int pyoco_registry_get_text(pyoco_registry *reg, const char *run_id, char **out,
                            size_t *len) {
    pyoco_run *run = run_id ? pyoco_run_table_get(&reg->table, run_id) : NULL;
    if (!run)
        return -ENOENT;
    const char *t;
    size_t n;
    int rc = pyoco_run_text(run, &t, &n);
    if (rc < 0)
        return rc;
    if (!(*out = malloc(n + 1)))
        return -ENOMEM;
    memcpy(*out, t, n + 1);
    *len = n;
    return 0;
}

int pyoco_registry_cancel(pyoco_registry *reg, const char *run_id) {
    pyoco_run *run = run_id ? pyoco_run_table_get(&reg->table, run_id) : NULL;
    if (!run)
        return -ENOENT;
    if (run->status != PYOCO_STATUS_PENDING &&
        run->status != PYOCO_STATUS_RUNNING)
        return 0;
    pyoco_run_status prev = run->status;
    pyoco_registry_set_status(reg, run, PYOCO_STATUS_CANCELLING);
    run->pin++;
    publish_status(reg, run, prev);
    run->pin--;
    pyoco_registry_enforce_retention(
        reg); /* only if a subscriber deferred it */
    return 0;
}

int pyoco_registry_poll(pyoco_registry *reg, const char *worker_id,
                        const json_t *tags, json_t **out) {
    if (!worker_id || (tags && !is_string_array(tags)))
        return -EINVAL;
    pyoco_run *run = pyoco_run_queue_pop(&reg->queue, tags);
    if (!run) {
        *out = json_pack("{s:n, s:n, s:n}", "run_id", "flow_name", "params");
        return *out ? 0 : -ENOMEM;
    }
    /* the shared empty metadata is never written: give the run its own */
    json_t *md = run->metadata ? json_copy(run->metadata) : json_object();
    if (!md)
        return -ENOMEM;
    json_object_set_new(md, "worker_id", json_string(worker_id));
    json_object_set_new(md, "assigned_at", json_real(pyoco_registry_now(reg)));
    json_decref(run->metadata);
    run->metadata = md;

    *out = json_pack("{s:s, s:s, s:O}", "run_id", run->id, "flow_name",
                     run->flow_name, "params", run->params);
    pyoco_watch_set(reg, run, WATCH_LEASE);
    run->pin++;
    pyoco_event ev;
    pyoco_registry_event(reg, run, &ev, PYOCO_EV_RUN_ASSIGNED);
    ev.worker_id = worker_id;
    pyoco_bus_publish(reg->bus, &ev);
    run->pin--;
    pyoco_registry_enforce_retention(reg);
    return *out ? 0 : -ENOMEM;
}

int pyoco_registry_logs(pyoco_registry *reg, const char *run_id,
                        const char *task, long tail, json_t **out) {
    pyoco_run *run = run_id ? pyoco_run_table_get(&reg->table, run_id) : NULL;
    if (!run)
        return -ENOENT;
    json_t *logs = json_array();
    if (!logs)
        return -ENOMEM;
    size_t n = run->logs ? json_array_size(run->logs) : 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(run->logs, i);
        const char *t = json_string_value(json_object_get(e, "task"));
        if (task && (!t || strcmp(t, task) != 0))
            continue;
        json_array_append(logs, e);
    }
    if (tail >= 0 && (size_t)tail < json_array_size(logs)) {
        size_t drop = json_array_size(logs) - (size_t)tail;
        json_t *cut = json_array();
        for (size_t i = drop; i < json_array_size(logs); i++)
            json_array_append(cut, json_array_get(logs, i));
        json_decref(logs);
        logs = cut;
    }
    *out = json_pack("{s:s, s:o}", "run_status", pyoco_status_name(run->status),
                     "logs", logs);
    return *out ? 0 : -ENOMEM;
}

void pyoco_registry_get_stats(const pyoco_registry *reg,
                              pyoco_registry_stats *out) {
    uint32_t size = out->size ? out->size : sizeof *out;
    pyoco_registry_stats s;
    memset(&s, 0, sizeof s);
    s.size = size;
    s.runs_in_memory = reg->table.count;
    s.runs_queued = reg->queue.count;
    for (int i = 0; i < PYOCO_STATUS_COUNT; i++)
        s.runs_by_status[i] = reg->by_status[i];
    s.runs_evicted = reg->evicted;
    s.events_published = reg->bus ? pyoco_bus_last_seq(reg->bus) : 0;
    memcpy(out, &s, size < sizeof s ? size : sizeof s);
}

void pyoco_registry_archive_flush(pyoco_registry *reg) {
    pyoco_archive_flush(reg->archive);
}

uint64_t pyoco_registry_archive_errors(const pyoco_registry *reg) {
    return pyoco_archive_errors(reg->archive);
}
