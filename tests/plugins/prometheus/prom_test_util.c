/* prom_test_util.c - see prom_test_util.h. */
#include "prom_test_util.h"

#include <string.h>

const char prom_golden[] =
    "# HELP pyoco_runs_total Total runs observed by status transitions.\n"
    "# TYPE pyoco_runs_total counter\n"
    "pyoco_runs_total{status=\"PENDING\"} 1.0\n"
    "pyoco_runs_total{status=\"RUNNING\"} 1.0\n"
    "pyoco_runs_total{status=\"COMPLETED\"} 1.0\n"
    "# HELP pyoco_runs_in_progress Number of runs currently executing "
    "(RUNNING).\n"
    "# TYPE pyoco_runs_in_progress gauge\n"
    "pyoco_runs_in_progress 0.0\n"
    "# HELP pyoco_task_duration_seconds Observed task durations.\n"
    "# TYPE pyoco_task_duration_seconds histogram\n"
    "pyoco_task_duration_seconds_bucket{le=\"0.05\",task=\"t1\"} 0.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"0.1\",task=\"t1\"} 0.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"0.25\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"0.5\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"1.0\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"2.5\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"5.0\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"10.0\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"30.0\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"60.0\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_bucket{le=\"+Inf\",task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_count{task=\"t1\"} 1.0\n"
    "pyoco_task_duration_seconds_sum{task=\"t1\"} 0.2\n"
    "# HELP pyoco_run_duration_seconds Observed end-to-end run durations.\n"
    "# TYPE pyoco_run_duration_seconds histogram\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"0.05\"} 0.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"0.1\"} 0.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"0.25\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"0.5\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"1.0\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"2.5\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"5.0\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"10.0\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"30.0\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"60.0\"} 1.0\n"
    "pyoco_run_duration_seconds_bucket{flow=\"demo\",le=\"+Inf\"} 1.0\n"
    "pyoco_run_duration_seconds_count{flow=\"demo\"} 1.0\n"
    "pyoco_run_duration_seconds_sum{flow=\"demo\"} 0.2085275650024414\n";

/* Well-formed UTF-8 per RFC 3629 (an independent, simple checker). */
int prom_valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        static const unsigned min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

int prom_has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}
