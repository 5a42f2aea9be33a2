/* core/log.c - one line per message on stderr, written with a single
 * write(2) so lines from the storage writer thread never interleave. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static pyoco_log_level g_min = PYOCO_LOG_INFO;

void pyoco_log_set_level(pyoco_log_level min) {
    g_min = min;
}

pyoco_log_level pyoco_log_get_level(void) {
    return g_min;
}

static const char *level_name(pyoco_log_level l) {
    switch (l) {
    case PYOCO_LOG_DEBUG:
        return "DEBUG";
    case PYOCO_LOG_INFO:
        return "INFO";
    case PYOCO_LOG_WARN:
        return "WARN";
    default:
        return "ERROR";
    }
}

void pyoco_log_writev(pyoco_log_level level, const char *who, const char *fmt,
                      va_list ap) {
    if (level < g_min)
        return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000),
                     level_name(level), who ? who : "core");
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: keep the newline */
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void pyoco_log_write(pyoco_log_level level, const char *who, const char *fmt,
                     ...) {
    va_list ap;
    va_start(ap, fmt);
    pyoco_log_writev(level, who, fmt, ap);
    va_end(ap);
}
