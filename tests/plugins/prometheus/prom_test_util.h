/* prom_test_util.h - shared by the prometheus plugin's CUnit tests: the
 * golden compat text, a line finder and an independent UTF-8 checker. */
#ifndef PROM_TEST_UTIL_H
#define PROM_TEST_UTIL_H

#include <CUnit/CUnit.h>
#include <stddef.h>
#include <stdio.h>

/* The golden lifecycle's compat families, as the reference prints them
 * (without the optional _created series). */
extern const char prom_golden[];

/* Well-formed UTF-8 per RFC 3629. */
int prom_valid_utf8(const unsigned char *s, size_t n);
/* True when `line` is a whole line of `text`. */
int prom_has_line(const char *text, const char *line);

#define ASSERT_LINE(text, line)                                                \
    do {                                                                       \
        if (!prom_has_line(text, line))                                        \
            fprintf(stderr, "\nmissing line: %s\n--- in:\n%s---\n", line,      \
                    text);                                                     \
        CU_ASSERT_TRUE(prom_has_line(text, line));                             \
    } while (0)

#endif
