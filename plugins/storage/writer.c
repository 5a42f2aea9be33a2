/* writer.c - the writer thread (group commit, retry on failure).
 *
 * The loop pushes records; this thread takes everything queued (up to
 * batch_max), runs it in one transaction and commits. With
 * synchronous=FULL the commit returns after SQLite's fsync, so once
 * `committed` moves past a seq that change is on disk. A failed batch is
 * rolled back and kept, and retried after a growing delay: nothing is
 * dropped and nothing later overtakes it. */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATS_MAX 4096 /* batches not yet published; older ones are dropped */

struct pyoco_storage_writer {
    pyoco_storage_writer_opts o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pyoco_storage_rec *head, *tail; /* pushed, not yet taken */
    size_t nqueued;                 /* in the list */
    size_t ninflight;               /* taken by the thread, not committed */
    bool quit;
    pyoco_storage_writer_state st;
    pyoco_storage_batch_stat stats[STATS_MAX];
    size_t nstats;
};

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the batch in one transaction. SQLite code, message in err. */
static int commit_batch(pyoco_storage_writer *w, pyoco_storage_rec *batch,
                        char *err, size_t errlen) {
    pyoco_storage_sql *q = w->o.sql;
    int rc = pyoco_storage_sql_begin(q);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "BEGIN: %s",
                 sqlite3_errmsg(pyoco_storage_sql_db(q)));
        return rc;
    }
    for (pyoco_storage_rec *r = batch; r; r = r->next) {
        char e[400];
        rc = pyoco_storage_sql_apply(q, r, e, sizeof(e));
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "event seq %llu: %s",
                     (unsigned long long)r->seq, e);
            pyoco_storage_sql_rollback(q);
            return rc;
        }
    }
    rc = pyoco_storage_sql_commit(q);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "COMMIT: %s",
                 sqlite3_errmsg(pyoco_storage_sql_db(q)));
        pyoco_storage_sql_rollback(q);
    }
    return rc;
}

static void *run(void *arg) {
    pyoco_storage_writer *w = arg;
    pyoco_storage_rec *batch = NULL; /* kept across failed attempts */
    size_t nbatch = 0;
    uint64_t last_seq = 0;
    double delay = w->o.retry_min_s;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (!batch) {
            while (!w->head && !w->quit)
                pthread_cond_wait(&w->cv, &w->mu);
            if (!w->head)
                break; /* quit with nothing left */
            /* take up to batch_max records */
            batch = w->head;
            pyoco_storage_rec *r = batch;
            nbatch = 1;
            while (r->next && nbatch < w->o.batch_max) {
                r = r->next;
                nbatch++;
            }
            w->head = r->next;
            if (!w->head)
                w->tail = NULL;
            r->next = NULL;
            last_seq = r->seq;
            w->nqueued -= nbatch;
            w->ninflight = nbatch;
        }
        pthread_mutex_unlock(&w->mu);

        char err[512] = "";
        double t0 = mono_now();
        int rc = commit_batch(w, batch, err, sizeof(err));
        double dt = mono_now() - t0;

        pthread_mutex_lock(&w->mu);
        if (rc == SQLITE_OK) {
            w->st.committed = last_seq;
            w->st.status = 0;
            w->ninflight = 0;
            if (w->nstats == STATS_MAX) {
                memmove(w->stats, w->stats + 1,
                        (STATS_MAX - 1) * sizeof(w->stats[0]));
                w->nstats--;
            }
            w->stats[w->nstats++] =
                (pyoco_storage_batch_stat){.commit_s = dt, .events = nbatch};
            delay = w->o.retry_min_s;
            pthread_mutex_unlock(&w->mu);
            pyoco_storage_rec_free_list(batch);
            batch = NULL;
            w->o.notify(w->o.ud);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        w->st.status = -EIO;
        w->st.errors++;
        snprintf(w->st.error, sizeof(w->st.error), "%s", err);
        pthread_mutex_unlock(&w->mu);
        w->o.notify(w->o.ud);
        pthread_mutex_lock(&w->mu);
        if (w->quit)
            break; /* stopping while failing: give up (counted as lost) */
        /* back off before retrying the same batch; quit wakes us early */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        double s = (double)until.tv_sec + (double)until.tv_nsec / 1e9 + delay;
        until.tv_sec = (time_t)s;
        until.tv_nsec = (long)((s - (double)until.tv_sec) * 1e9);
        if (until.tv_nsec >= 1000000000L)
            until.tv_nsec = 999999999L;
        while (!w->quit &&
               pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
            ;
        delay = delay * 2 > w->o.retry_max_s ? w->o.retry_max_s : delay * 2;
    }
    /* anything still here could not be committed */
    if (batch) {
        pyoco_storage_rec *r = batch;
        while (r->next)
            r = r->next;
        r->next = w->head;
        w->head = batch;
        if (!w->tail)
            w->tail = r;
        w->nqueued += w->ninflight;
        w->ninflight = 0;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int pyoco_storage_writer_start(const pyoco_storage_writer_opts *o,
                               pyoco_storage_writer **out) {
    *out = NULL;
    if (!o->sql || !o->notify || o->batch_max == 0)
        return -EINVAL;
    pyoco_storage_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->o = *o;
    if (w->o.retry_min_s <= 0)
        w->o.retry_min_s = 0.05;
    if (w->o.retry_max_s < w->o.retry_min_s)
        w->o.retry_max_s = w->o.retry_min_s;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int rc = pthread_create(&w->thread, NULL, run, w);
    if (rc != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return -rc;
    }
    *out = w;
    return 0;
}

void pyoco_storage_writer_push(pyoco_storage_writer *w, pyoco_storage_rec *r) {
    r->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = r;
    else
        w->head = r;
    w->tail = r;
    w->nqueued++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void pyoco_storage_writer_state_get(pyoco_storage_writer *w,
                                    pyoco_storage_writer_state *out) {
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    out->queued = w->nqueued + w->ninflight;
    pthread_mutex_unlock(&w->mu);
}

size_t pyoco_storage_writer_take_stats(pyoco_storage_writer *w,
                                       pyoco_storage_batch_stat *out,
                                       size_t max) {
    pthread_mutex_lock(&w->mu);
    size_t n = w->nstats < max ? w->nstats : max;
    memcpy(out, w->stats, n * sizeof(out[0]));
    memmove(w->stats, w->stats + n, (w->nstats - n) * sizeof(w->stats[0]));
    w->nstats -= n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void pyoco_storage_writer_stop(pyoco_storage_writer *w, size_t *lost) {
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    if (lost)
        *lost = w->nqueued;
    pyoco_storage_rec_free_list(w->head);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
