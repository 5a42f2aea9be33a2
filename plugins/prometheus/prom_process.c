/* prom_process.c - process_* values from getrusage, getrlimit and procfs. */
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

double prom_process_start_time(void) {
    char buf[8192];
    long ticks = sysconf(_SC_CLK_TCK);
    if (ticks <= 0 || read_file("/proc/stat", buf, sizeof(buf)) < 0)
        return 0;
    const char *bt = strstr(buf, "\nbtime ");
    if (!bt)
        return 0;
    double boot = strtod(bt + 7, NULL);
    if (read_file("/proc/self/stat", buf, sizeof(buf)) <= 0)
        return 0;
    /* The command name (field 2) may hold spaces and ')': count fields
     * from the last ')'. Field 3 is the one-letter state; field 22 is the
     * start in clock ticks since boot. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    while (*p == ' ')
        p++;
    while (*p && *p != ' ')
        p++;
    unsigned long long v = 0;
    for (int field = 4; field <= 22 && *p; field++)
        v = strtoull(p, &p, 10);
    return boot + (double)v / (double)ticks;
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

int prom_process_read(prom_process *out) {
    memset(out, 0, sizeof(*out));
    int rc = 0;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        out->cpu_seconds =
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    else
        rc = -errno;
    /* statm: total and resident size in pages. */
    char buf[256];
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long size = 0, rss = 0;
    if (read_file("/proc/self/statm", buf, sizeof(buf)) > 0 &&
        sscanf(buf, "%llu %llu", &size, &rss) == 2 && page > 0) {
        out->virtual_memory_bytes = (double)size * (double)page;
        out->resident_memory_bytes = (double)rss * (double)page;
    } else {
        rc = -EIO;
    }
    int fds = count_fds();
    if (fds >= 0)
        out->open_fds = fds;
    else
        rc = fds;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        out->max_fds =
            rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur;
    return rc;
}
