/* prom_events.c - folds bus events and plugin measurements into the
 * families, and refreshes the values that are read at scrape time. */
#include "prom_plugin.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define ADD(fam, name, help, type, nl, labels, capped)                         \
    do {                                                                       \
        st->fam = prom_set_add_family(st->set, name, help, type, nl, labels,   \
                                      st->buckets, st->nbuckets, capped);      \
        if (!st->fam)                                                          \
            return -ENOMEM;                                                    \
    } while (0)

int prom_state_families(prom_state *st) {
    static const char *const status_l[] = {"status"};
    static const char *const task_l[] = {"task"};
    static const char *const flow_l[] = {"flow"};
    static const char *const kind_l[] = {"kind"};
    static const char *const http_l[] = {"route", "code"};
    static const char *const version_l[] = {"version"};
    static const char *const plugin_l[] = {"name", "version"};
    static const char *const family_l[] = {"family"};
    static const char *const reason_l[] = {"reason"};
    static const char *const flow_status_l[] = {"flow", "status"};

    /* The four compat families first, exactly as the reference names them. */
    ADD(runs_total, "pyoco_runs_total",
        "Total runs observed by status transitions.", PROM_COUNTER, 1, status_l,
        false);
    ADD(in_progress, "pyoco_runs_in_progress",
        "Number of runs currently executing (RUNNING).", PROM_GAUGE, 0, NULL,
        false);
    ADD(task_duration, "pyoco_task_duration_seconds",
        "Observed task durations.", PROM_HISTOGRAM, 1, task_l, true);
    ADD(run_duration, "pyoco_run_duration_seconds",
        "Observed end-to-end run durations.", PROM_HISTOGRAM, 1, flow_l, true);

    ADD(queued, "pyoco_runs_queued",
        "PENDING runs waiting in the queue for a worker.", PROM_GAUGE, 0, NULL,
        false);
    ADD(finished, "pyoco_runs_finished_total",
        "Runs that reached a terminal status, by flow and status.",
        PROM_COUNTER, 2, flow_status_l, false);
    ADD(in_memory, "pyoco_runs_in_memory",
        "Runs held in memory by the registry.", PROM_GAUGE, 0, NULL, false);
    ADD(evicted, "pyoco_runs_evicted_total",
        "Terminal runs evicted from memory since start.", PROM_COUNTER, 0, NULL,
        false);
    ADD(bus_events, "pyoco_bus_events_total",
        "Events published on the server's event bus, by kind.", PROM_COUNTER, 1,
        kind_l, false);
    ADD(http_requests, "pyoco_http_requests_total",
        "HTTP requests answered, by route pattern and status class.",
        PROM_COUNTER, 2, http_l, false);
    ADD(build_info, "pyoco_build_info",
        "Version of the run server; the value is always 1.", PROM_GAUGE, 1,
        version_l, false);
    ADD(plugin_info, "pyoco_plugin_info",
        "Loaded plugins; the value is always 1.", PROM_GAUGE, 2, plugin_l,
        false);
    ADD(overflow, "pyoco_metrics_label_overflow_total",
        "Samples folded into the __overflow__ series of a family that "
        "reached max_series_per_family.",
        PROM_COUNTER, 1, family_l, false);
    ADD(rejected, "pyoco_metrics_rejected_samples_total",
        "Measurements published by plugins that were dropped, by reason.",
        PROM_COUNTER, 1, reason_l, false);
    prom_set_overflow_family(st->set, st->overflow);

    ADD(proc_rss, "process_resident_memory_bytes",
        "Resident memory size in bytes.", PROM_GAUGE, 0, NULL, false);
    ADD(proc_vms, "process_virtual_memory_bytes",
        "Virtual memory size in bytes.", PROM_GAUGE, 0, NULL, false);
    ADD(proc_cpu, "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.", PROM_COUNTER, 0,
        NULL, false);
    ADD(proc_start, "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.", PROM_GAUGE, 0,
        NULL, false);
    ADD(proc_fds, "process_open_fds", "Number of open file descriptors.",
        PROM_GAUGE, 0, NULL, false);
    ADD(proc_max_fds, "process_max_fds",
        "Maximum number of open file descriptors.", PROM_GAUGE, 0, NULL, false);

    /* An unlabelled gauge always shows a sample, like the reference's
     * "pyoco_runs_in_progress 0.0". */
    st->in_progress_s = prom_family_series(st->set, st->in_progress, NULL);
    if (!st->in_progress_s)
        return -ENOMEM;
    return 0;
}

/* ---- run events ---------------------------------------------------------- */

static void on_status(prom_state *st, const pyoco_event *ev) {
    pyoco_run_status s = ev->status, prev = ev->prev_status;
    const char *name = pyoco_status_name(s);
    if (name) {
        if (!st->by_status[s]) {
            const char *v[1] = {name};
            st->by_status[s] = prom_family_series(st->set, st->runs_total, v);
        }
        if (st->by_status[s])
            prom_series_add(st->by_status[s], 1);
    }
    if (s == PYOCO_STATUS_RUNNING && prev != PYOCO_STATUS_RUNNING)
        prom_series_add(st->in_progress_s, 1);
    else if (prev == PYOCO_STATUS_RUNNING && s != PYOCO_STATUS_RUNNING)
        prom_series_add(st->in_progress_s, -1);
}

static void observe(prom_state *st, prom_family *fam, const char *label,
                    double v) {
    const char *vals[1] = {label ? label : ""};
    prom_series *s = prom_family_series(st->set, fam, vals);
    if (s)
        prom_series_observe(s, v);
}

static void on_http(prom_state *st, const pyoco_event *ev) {
    char cls[8] = "other";
    int c = ev->http_status / 100;
    if (c >= 1 && c <= 5) {
        cls[0] = (char)('0' + c);
        memcpy(cls + 1, "xx", 3);
    }
    const char *vals[2] = {ev->http_route ? ev->http_route : "unmatched", cls};
    prom_series *s = prom_family_series(st->set, st->http_requests, vals);
    if (s)
        prom_series_add(s, 1);
}

static void count_kind(prom_state *st, uint32_t kind) {
    size_t i = kind < PYOCO_EV_KIND_COUNT ? kind : PYOCO_EV_KIND_COUNT;
    if (!st->by_kind[i]) {
        const char *v[1] = {pyoco_event_kind_name(kind)};
        st->by_kind[i] = prom_family_series(st->set, st->bus_events, v);
    }
    if (st->by_kind[i])
        prom_series_add(st->by_kind[i], 1);
}

void prom_on_event(const pyoco_event *ev, void *user_data) {
    prom_state *st = user_data;
    count_kind(st, ev->kind);
    switch (ev->kind) {
    case PYOCO_EV_RUN_STATUS:
        on_status(st, ev);
        break;
    case PYOCO_EV_RUN_RESTORED:
        /* A run put back while RUNNING is executing again: no RUN_STATUS
         * announces it, so count it here. */
        if (ev->status == PYOCO_STATUS_RUNNING)
            prom_series_add(st->in_progress_s, 1);
        break;
    case PYOCO_EV_TASK_UPDATED:
        if (ev->task_duration_ms >= 0)
            observe(st, st->task_duration, ev->task,
                    ev->task_duration_ms / 1000.0);
        break;
    case PYOCO_EV_RUN_FINISHED: {
        if (ev->run_duration_s >= 0)
            observe(st, st->run_duration, ev->flow_name, ev->run_duration_s);
        /* by flow and status: failures by flow (the compat families have
         * no such pair); worker-supplied flow names fall under the cap */
        const char *st_name = pyoco_status_name(ev->status);
        const char *vals[2] = {ev->flow_name ? ev->flow_name : "",
                               st_name ? st_name : "unknown"};
        prom_series *fs = prom_family_series(st->set, st->finished, vals);
        if (fs)
            prom_series_add(fs, 1);
        break;
    }
    case PYOCO_EV_HTTP_REQUEST:
        if (PYOCO_EVENT_HAS(ev, http_duration_s))
            on_http(st, ev);
        break;
    case PYOCO_EV_METRIC:
        if (PYOCO_EVENT_HAS(ev, metric))
            prom_fold_metric(st, ev->metric);
        break;
    default:
        break;
    }
}

/* ---- measurements from other plugins ------------------------------------ */

static const char *const reject_names[PROM_REJECT_COUNT] = {
    "invalid", "name_clash", "type_mismatch", "label_mismatch",
    "too_many_families"};

static int reject(prom_state *st, prom_reject why,
                  const pyoco_metric_sample *m) {
    if (!st->by_reject[why]) {
        const char *v[1] = {reject_names[why]};
        st->by_reject[why] = prom_family_series(st->set, st->rejected, v);
    }
    if (st->by_reject[why])
        prom_series_add(st->by_reject[why], 1);
    /* Once per reason: a misbehaving plugin must not flood the log. */
    if (!st->reject_logged[why]) {
        st->reject_logged[why] = true;
        st->api->log(st->host, PYOCO_LOG_WARN,
                     "dropped a measurement (%s): %s; further ones are only "
                     "counted in pyoco_metrics_rejected_samples_total",
                     reject_names[why],
                     m && m->size >= offsetof(pyoco_metric_sample, type) &&
                             m->name
                         ? m->name
                         : "(no name)");
    }
    return 1 + (int)why;
}

static bool sample_valid(const pyoco_metric_sample *m) {
    if (!m ||
        m->size < offsetof(pyoco_metric_sample, nbuckets) + sizeof(m->nbuckets))
        return false;
    /* A counter is declared without its _total suffix in OpenMetrics: a
     * counter named just "_total" would have no name there. */
    if (m->type == PYOCO_METRIC_COUNTER && m->name &&
        strcmp(m->name, "_total") == 0)
        return false;
    if (!prom_valid_metric_name(m->name) ||
        strlen(m->name) > PROM_MAX_NAME_LEN ||
        m->nlabels > PROM_MAX_SAMPLE_LABELS ||
        (m->nlabels && (!m->label_names || !m->label_values)))
        return false;
    for (size_t i = 0; i < m->nlabels; i++)
        if (!prom_valid_label_name(m->label_names[i]))
            return false;
    switch (m->type) {
    case PYOCO_METRIC_COUNTER:
        return m->op == PYOCO_METRIC_ADD && isfinite(m->value) && m->value >= 0;
    case PYOCO_METRIC_GAUGE:
        return (m->op == PYOCO_METRIC_ADD && isfinite(m->value)) ||
               m->op == PYOCO_METRIC_SET;
    case PYOCO_METRIC_HISTOGRAM:
        return m->op == PYOCO_METRIC_OBSERVE && !isnan(m->value);
    default:
        return false;
    }
}

/* The family's label values in its own order, taken from the sample by
 * name; false when the sample's label names are not the family's. */
static bool map_labels(const prom_family *fam, const pyoco_metric_sample *m,
                       const char **vals) {
    size_t n = prom_family_nlabels(fam);
    if (n != m->nlabels)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *want = prom_family_label_name(fam, i);
        size_t k = 0;
        while (k < n && strcmp(m->label_names[k], want) != 0)
            k++;
        if (k == n)
            return false;
        vals[i] = m->label_values[k];
    }
    return true;
}

static bool has_suffix(const char *s, size_t len, const char *sfx) {
    size_t n = strlen(sfx);
    return len >= n && memcmp(s + len - n, sfx, n) == 0;
}

static prom_family *find_cat(prom_state *st, const char *a, size_t alen,
                             const char *b) {
    char buf[PROM_MAX_NAME_LEN + 32];
    size_t blen = strlen(b);
    if (alen + blen >= sizeof(buf))
        return NULL;
    memcpy(buf, a, alen);
    memcpy(buf + alen, b, blen + 1);
    return prom_set_find(st->set, buf);
}

/* The family a sample of this name and type belongs to (counters are
 * exposed with "_total"), or NULL for a new one; *clash when a new family
 * of that name would print samples, or an OpenMetrics family name, that
 * another family already uses (x vs x_total, x_sum vs histogram x...). */
static prom_family *lookup(prom_state *st, const char *name, prom_type type,
                           bool *clash) {
    static const char *const sfx[] = {"_total", "_bucket", "_count", "_sum",
                                      "_created"};
    size_t len = strlen(name);
    if (type == PROM_COUNTER && !has_suffix(name, len, "_total")) {
        prom_family *f = find_cat(st, name, len, "_total");
        /* A family of the bare name is this sample's, of another type. */
        if (f || (f = prom_set_find(st->set, name)))
            return f;
    } else {
        prom_family *f = prom_set_find(st->set, name);
        if (f)
            return f;
    }
    *clash = find_cat(st, name, len, "") || find_cat(st, name, len, "_total");
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]) && !*clash; i++) {
        if (has_suffix(name, len, sfx[i])) {
            size_t stem = len - strlen(sfx[i]);
            *clash = find_cat(st, name, stem, "") ||
                     find_cat(st, name, stem, "_total");
        }
        if (type == PROM_HISTOGRAM)
            *clash = *clash || find_cat(st, name, len, sfx[i]);
    }
    return NULL;
}

int prom_fold_metric(prom_state *st, const pyoco_metric_sample *m) {
    if (!sample_valid(m))
        return reject(st, PROM_REJECT_INVALID, m);
    static const prom_type types[] = {0, PROM_COUNTER, PROM_GAUGE,
                                      PROM_HISTOGRAM};
    prom_type type = types[m->type];
    bool clash = false;
    prom_family *fam = lookup(st, m->name, type, &clash);
    if (clash || (fam && prom_family_tag(fam) != PROM_TAG_PUBLISHED))
        return reject(st, PROM_REJECT_NAME_CLASH, m);
    if (!fam) {
        if (st->published >= PROM_MAX_PUBLISHED_FAMILIES)
            return reject(st, PROM_REJECT_TOO_MANY_FAMILIES, m);
        const double *b = st->buckets;
        size_t nb = st->nbuckets;
        if (type == PROM_HISTOGRAM && m->buckets && m->nbuckets) {
            b = m->buckets;
            nb = m->nbuckets;
        }
        /* Label values of published families come from outside (task
         * names, URLs...): capped. */
        fam = prom_set_add_family(
            st->set, m->name,
            m->help && *m->help ? m->help
                                : "Published by a plugin without a help text.",
            type, m->nlabels, m->label_names, b, nb, true);
        if (!fam)
            return reject(st, PROM_REJECT_INVALID, m);
        prom_family_set_tag(fam, PROM_TAG_PUBLISHED);
        st->published++;
    } else if (prom_family_type(fam) != type) {
        return reject(st, PROM_REJECT_TYPE_MISMATCH, m);
    }
    const char *vals[PROM_MAX_SAMPLE_LABELS];
    if (!map_labels(fam, m, vals))
        return reject(st, PROM_REJECT_LABEL_MISMATCH, m);
    prom_series *s = prom_family_series(st->set, fam, vals);
    if (!s)
        return 0; /* ENOMEM: nothing more useful to do */
    if (m->op == PYOCO_METRIC_SET)
        prom_series_set(s, m->value);
    else if (m->op == PYOCO_METRIC_OBSERVE)
        prom_series_observe(s, m->value);
    else
        prom_series_add(s, m->value);
    return 0;
}

/* ---- scrape-time values -------------------------------------------------- */

static void set_gauge(prom_state *st, prom_family *fam, double v) {
    prom_series *s = prom_family_series(st->set, fam, NULL);
    if (s)
        prom_series_set(s, v);
}

static void list_plugins(prom_state *st) {
    const char *v[1] = {st->api->server_version(st->host)};
    prom_series *s = prom_family_series(st->set, st->build_info, v);
    if (s)
        prom_series_set(s, 1);
    for (size_t i = 0;; i++) {
        pyoco_plugin_info info;
        memset(&info, 0, sizeof(info));
        info.size = sizeof(info);
        if (st->api->plugin_info(st->host, i, &info) != 0)
            break;
        const char *pv[2] = {info.name, info.version};
        s = prom_family_series(st->set, st->plugin_info, pv);
        if (s)
            prom_series_set(s, 1);
    }
    st->plugins_listed = true;
}

void prom_update_scrape(prom_state *st) {
    /* Loaded plugins do not change once the server runs: list them once. */
    if (!st->plugins_listed)
        list_plugins(st);
    pyoco_registry_stats rs;
    memset(&rs, 0, sizeof(rs));
    rs.size = sizeof(rs);
    if (st->api->registry_stats(st->host, &rs) == 0) {
        set_gauge(st, st->queued, (double)rs.runs_queued);
        set_gauge(st, st->in_memory, (double)rs.runs_in_memory);
        set_gauge(st, st->evicted, (double)rs.runs_evicted);
    }
    /* procfs costs more than rendering everything else: sample process_*
     * at most once a second (scrapes come every few seconds at most; a
     * benchmark hammering /metrics should measure us, not procfs). */
    double now = st->api->now(st->host);
    if (now >= st->proc_read_at && now - st->proc_read_at < 1.0)
        return;
    st->proc_read_at = now;
    prom_process p;
    prom_process_read(&p);
    set_gauge(st, st->proc_rss, p.resident_memory_bytes);
    set_gauge(st, st->proc_vms, p.virtual_memory_bytes);
    set_gauge(st, st->proc_cpu, p.cpu_seconds);
    if (st->start_time > 0)
        set_gauge(st, st->proc_start, st->start_time);
    set_gauge(st, st->proc_fds, p.open_fds);
    set_gauge(st, st->proc_max_fds, p.max_fds);
}
