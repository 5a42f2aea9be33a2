/* prom_check.h - validate one Prometheus exposition (fuzz helper). */
#ifndef PROM_CHECK_H
#define PROM_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* True when `text` is a well-formed exposition (text 0.0.4, or OpenMetrics
 * 1.0 when openmetrics); otherwise false with the reason and the offending
 * line in err. */
bool prom_check(const char *text, size_t len, bool openmetrics, char *err,
                size_t errlen);

#endif
