/* core/run_queue.c - per-tag-set FIFOs of queued runs. */
#include "run_queue.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted unique borrowed strings of tags into *out (caller frees the
 * array only). */
static int sorted_tags(const json_t *tags, const char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!tags || json_array_size(tags) == 0)
        return 0;
    size_t len = json_array_size(tags);
    const char **v = malloc(len * sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        v[i] = json_string_value(json_array_get(tags, i));
        if (!v[i]) {
            free(v);
            return -EINVAL;
        }
    }
    qsort(v, len, sizeof *v, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (k == 0 || strcmp(v[k - 1], v[i]) != 0)
            v[k++] = v[i];
    *out = v;
    *n = k;
    return 0;
}

/* The set's key: tags joined by 0x1f (a byte that JSON strings from
 * clients could contain, so the length of each tag is prefixed too). */
static char *set_key(const char **v, size_t n) {
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 24;
    char *k = malloc(len), *p = k;
    if (!k)
        return NULL;
    *p = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        p += sprintf(p, "%zu:", l);
        memcpy(p, v[i], l);
        p += l;
        *p++ = '\x1f';
        *p = '\0';
    }
    return k;
}

int pyoco_run_queue_init(pyoco_run_queue *q) {
    memset(q, 0, sizeof *q);
    q->index = json_object();
    return q->index ? 0 : -ENOMEM;
}

static void tagq_free(pyoco_tagq *t) {
    for (size_t i = 0; i < t->ntags; i++)
        free(t->tags[i]);
    free(t->tags);
    free(t);
}

void pyoco_run_queue_fini(pyoco_run_queue *q) {
    for (size_t i = 0; i < q->nsets; i++) {
        for (pyoco_run *r = q->sets[i]->head; r; r = r->q_next)
            r->queue = NULL;
        tagq_free(q->sets[i]);
    }
    free(q->sets);
    json_decref(q->index);
    memset(q, 0, sizeof *q);
}

static pyoco_tagq *tagq_new(pyoco_run_queue *q, const char **v, size_t n,
                            const char *key) {
    if (q->nsets == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 8;
        pyoco_tagq **ns = realloc(q->sets, nc * sizeof *ns);
        if (!ns)
            return NULL;
        q->sets = ns;
        q->cap = nc;
    }
    pyoco_tagq *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (n && !(t->tags = calloc(n, sizeof *t->tags))) {
        free(t);
        return NULL;
    }
    for (size_t i = 0; i < n; i++, t->ntags++)
        if (!(t->tags[i] = strdup(v[i]))) {
            tagq_free(t);
            return NULL;
        }
    t->pos = q->nsets;
    if (json_object_set_new(q->index, key, json_integer((json_int_t)t->pos))) {
        tagq_free(t);
        return NULL;
    }
    q->sets[q->nsets++] = t;
    return t;
}

/* An empty FIFO leaves the array, so polls only scan live tag sets. */
static void tagq_drop(pyoco_run_queue *q, pyoco_tagq *t) {
    const char **v = (const char **)t->tags;
    char *key = set_key(v, t->ntags);
    if (key) {
        json_object_del(q->index, key);
        free(key);
    }
    size_t last = q->nsets - 1;
    if (t->pos != last) {
        pyoco_tagq *m = q->sets[last];
        q->sets[t->pos] = m;
        m->pos = t->pos;
        char *mk = set_key((const char **)m->tags, m->ntags);
        if (mk) {
            json_object_set_new(q->index, mk, json_integer((json_int_t)m->pos));
            free(mk);
        }
    }
    q->nsets--;
    tagq_free(t);
}

int pyoco_run_queue_push(pyoco_run_queue *q, pyoco_run *run,
                         const json_t *tags) {
    const char **v;
    size_t n;
    int rc = sorted_tags(tags, &v, &n);
    if (rc < 0)
        return rc;
    char *key = set_key(v, n);
    if (!key) {
        free(v);
        return -ENOMEM;
    }
    pyoco_tagq *t = NULL;
    json_t *pos = json_object_get(q->index, key);
    if (pos)
        t = q->sets[json_integer_value(pos)];
    else
        t = tagq_new(q, v, n, key);
    free(key);
    free(v);
    if (!t)
        return -ENOMEM;
    /* Keep the FIFO in seq order: new runs go to the tail at once; a run
     * put back (its lease expired) walks back to its place. */
    pyoco_run *after = t->tail;
    while (after && after->seq > run->seq)
        after = after->q_prev;
    run->queue = t;
    run->q_prev = after;
    run->q_next = after ? after->q_next : t->head;
    if (run->q_next)
        run->q_next->q_prev = run;
    else
        t->tail = run;
    if (after)
        after->q_next = run;
    else
        t->head = run;
    q->count++;
    return 0;
}

void pyoco_run_queue_remove(pyoco_run_queue *q, pyoco_run *run) {
    pyoco_tagq *t = run->queue;
    if (!t)
        return;
    if (run->q_prev)
        run->q_prev->q_next = run->q_next;
    else
        t->head = run->q_next;
    if (run->q_next)
        run->q_next->q_prev = run->q_prev;
    else
        t->tail = run->q_prev;
    run->q_prev = run->q_next = NULL;
    run->queue = NULL;
    q->count--;
    if (!t->head)
        tagq_drop(q, t);
}

/* Both sorted: a merge walk. */
static bool subset(const pyoco_tagq *t, const char **w, size_t nw) {
    size_t j = 0;
    for (size_t i = 0; i < t->ntags; i++) {
        while (j < nw && strcmp(w[j], t->tags[i]) < 0)
            j++;
        if (j == nw || strcmp(w[j], t->tags[i]) != 0)
            return false;
    }
    return true;
}

pyoco_run *pyoco_run_queue_pop(pyoco_run_queue *q, const json_t *worker_tags) {
    const char **w;
    size_t nw;
    if (sorted_tags(worker_tags, &w, &nw) < 0)
        return NULL;
    pyoco_run *best = NULL;
    for (size_t i = 0; i < q->nsets; i++) {
        pyoco_tagq *t = q->sets[i];
        if (t->head && (!best || t->head->seq < best->seq) && subset(t, w, nw))
            best = t->head;
    }
    free(w);
    if (best)
        pyoco_run_queue_remove(q, best);
    return best;
}
