/* prom_process.c - process_* values from /proc/self. */
#include "prom_process.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int read_file(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (int)n;
}

double prom_process_boot_time(void) {
    char buf[8192];
    if (read_file("/proc/stat", buf, sizeof(buf)) < 0)
        return 0;
    const char *p = strstr(buf, "\nbtime ");
    return p ? strtod(p + 7, NULL) : 0;
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the descriptor opendir used */
}

int prom_process_read(double boot_time, prom_process *out) {
    memset(out, 0, sizeof(*out));
    int rc = 0;
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    char buf[1024];
    int n = read_file("/proc/self/stat", buf, sizeof(buf));
    /* The command name (field 2) may hold spaces and ')': fields are
     * counted from the last ')'. */
    const char *p = n > 0 ? strrchr(buf, ')') : NULL;
    if (p && ticks > 0) {
        /* v[k] = field k of proc(5), 1-based: 14 utime, 15 stime, 22
         * starttime (ticks since boot), 23 vsize (bytes). Field 3 is the
         * one-letter state. */
        unsigned long long v[24] = {0};
        char *q = (char *)p + 1;
        while (*q == ' ')
            q++;
        while (*q && *q != ' ')
            q++; /* the state */
        for (int k = 4; k < 24 && *q; k++)
            v[k] = strtoull(q, &q, 10);
        out->cpu_seconds = (double)(v[14] + v[15]) / (double)ticks;
        if (boot_time > 0)
            out->start_time_seconds = boot_time + (double)v[22] / (double)ticks;
        out->virtual_memory_bytes = (double)v[23];
    } else {
        rc = n < 0 ? n : -EINVAL;
    }
    /* Resident pages: field 2 of statm. */
    if (read_file("/proc/self/statm", buf, sizeof(buf)) > 0) {
        unsigned long long size = 0, rss = 0;
        if (sscanf(buf, "%llu %llu", &size, &rss) == 2 && page > 0)
            out->resident_memory_bytes = (double)rss * (double)page;
    }
    int fds = count_fds();
    if (fds >= 0)
        out->open_fds = fds;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        out->max_fds =
            rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur;
    return rc;
}
