/* core/archive.c - background writer of run archive files.
 *
 * A mutex-protected FIFO of (name, json) jobs drained by one thread. Each
 * file is written to a temporary name and renamed, so a reader never sees
 * half a file. Errors are counted, not logged: the loop owns the log. */
#include "archive.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct job {
    struct job *next;
    json_t *obj;
    char name[];
} job;

struct pyoco_archive {
    char *dir; /* NULL: drop everything */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* a job arrived or stop was asked */
    pthread_cond_t idle; /* the queue drained */
    job *head, *tail;
    bool busy; /* the thread is writing a job it has taken */
    bool stop;
    bool started;
    pthread_t thread;
    _Atomic uint64_t written, errors;
};

/* mkdir -p: every missing component of path. */
static int mkdir_p(const char *path) {
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

static int write_job(const char *dir, const job *j) {
    int rc = mkdir_p(dir);
    if (rc < 0)
        return rc;
    size_t n = strlen(dir) + strlen(j->name) + 16;
    char *final = malloc(n), *tmp = malloc(n + 8);
    if (!final || !tmp) {
        free(final);
        free(tmp);
        return -ENOMEM;
    }
    snprintf(final, n, "%s/%s.json", dir, j->name);
    snprintf(tmp, n + 8, "%s/.%s.json.tmp", dir, j->name);
    rc = json_dump_file(j->obj, tmp, JSON_INDENT(2)) == 0 ? 0 : -EIO;
    if (rc == 0 && rename(tmp, final) != 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    free(final);
    free(tmp);
    return rc;
}

static void *writer_main(void *arg) {
    pyoco_archive *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->head && !a->stop)
            pthread_cond_wait(&a->wake, &a->mu);
        if (!a->head)
            break; /* stop and drained */
        job *j = a->head;
        a->head = j->next;
        if (!a->head)
            a->tail = NULL;
        a->busy = true;
        pthread_mutex_unlock(&a->mu);
        if (write_job(a->dir, j) == 0)
            atomic_fetch_add(&a->written, 1);
        else
            atomic_fetch_add(&a->errors, 1);
        json_decref(j->obj);
        free(j);
        pthread_mutex_lock(&a->mu);
        a->busy = false;
        if (!a->head)
            pthread_cond_broadcast(&a->idle);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

pyoco_archive *pyoco_archive_new(const char *dir) {
    pyoco_archive *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    if (dir && *dir && !(a->dir = strdup(dir))) {
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->wake, NULL);
    pthread_cond_init(&a->idle, NULL);
    return a;
}

void pyoco_archive_free(pyoco_archive *a) {
    if (!a)
        return;
    if (a->started) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->wake);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->wake);
    pthread_cond_destroy(&a->idle);
    free(a->dir);
    free(a);
}

int pyoco_archive_put(pyoco_archive *a, const char *name, json_t *obj) {
    if (!a->dir) {
        json_decref(obj);
        return 0;
    }
    if (!name || !*name || strchr(name, '/') || name[0] == '.') {
        json_decref(obj);
        atomic_fetch_add(&a->errors, 1);
        return -EINVAL;
    }
    size_t len = strlen(name);
    job *j = malloc(sizeof *j + len + 1);
    if (!j) {
        json_decref(obj);
        atomic_fetch_add(&a->errors, 1);
        return -ENOMEM;
    }
    j->next = NULL;
    j->obj = obj;
    memcpy(j->name, name, len + 1);
    pthread_mutex_lock(&a->mu);
    if (!a->started) {
        if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
            pthread_mutex_unlock(&a->mu);
            json_decref(obj);
            free(j);
            atomic_fetch_add(&a->errors, 1);
            return -EAGAIN;
        }
        a->started = true;
    }
    if (a->tail)
        a->tail->next = j;
    else
        a->head = j;
    a->tail = j;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

void pyoco_archive_flush(pyoco_archive *a) {
    pthread_mutex_lock(&a->mu);
    while (a->head || a->busy)
        pthread_cond_wait(&a->idle, &a->mu);
    pthread_mutex_unlock(&a->mu);
}

uint64_t pyoco_archive_written(const pyoco_archive *a) {
    return atomic_load(&((pyoco_archive *)a)->written);
}

uint64_t pyoco_archive_errors(const pyoco_archive *a) {
    return atomic_load(&((pyoco_archive *)a)->errors);
}
