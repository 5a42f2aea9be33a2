/* wh_retry.c - when to try again: exponential backoff with jitter, and the
 * receiver's Retry-After (delta seconds or an HTTP date, parsed by
 * libcurl's curl_getdate). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "wh.h"

double wh_backoff_delay(double initial, double max, int failed, double u) {
    if (failed < 1)
        failed = 1;
    /* Cap the exponent before pow so huge attempt counts stay finite. */
    int e = failed - 1 > 60 ? 60 : failed - 1;
    double d = initial * pow(2.0, e);
    if (d > max)
        d = max;
    if (u < 0)
        u = 0;
    if (u >= 1)
        u = 0.999999;
    return d * (0.8 + 0.4 * u); /* +-20% */
}

int wh_retry_after_parse(const char *value, time_t now, double *out) {
    if (!value)
        return -EINVAL;
    while (isspace((unsigned char)*value))
        value++;
    if (!*value)
        return -EINVAL;
    double secs;
    if (isdigit((unsigned char)*value)) {
        /* delta-seconds: 1*DIGIT (RFC 9110 10.2.3) */
        char *end;
        errno = 0;
        unsigned long long n = strtoull(value, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (*end)
            return -EINVAL;
        secs = errno == ERANGE ? WH_RETRY_AFTER_MAX : (double)n;
    } else {
        time_t t = curl_getdate(value, NULL);
        if (t == (time_t)-1)
            return -EINVAL;
        secs = t > now ? difftime(t, now) : 0.0;
    }
    if (secs > WH_RETRY_AFTER_MAX)
        secs = WH_RETRY_AFTER_MAX;
    *out = secs;
    return 0;
}

double wh_retry_delay(double backoff, double retry_after) {
    return retry_after > backoff ? retry_after : backoff;
}
