/* sse_format.c - Server-Sent Events wire format and event ids. */
#include "sse_format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sse_buf_init(sse_buf *b) {
    memset(b, 0, sizeof(*b));
}

void sse_buf_free(sse_buf *b) {
    free(b->data);
    sse_buf_init(b);
}

void sse_buf_reset(sse_buf *b) {
    b->len = 0;
    b->failed = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sse_buf_add(sse_buf *b, const char *s, size_t n) {
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void add_str(sse_buf *b, const char *s) {
    sse_buf_add(b, s, strlen(s));
}

int sse_id_cmp(sse_id a, sse_id b) {
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    if (a.idx != b.idx)
        return a.idx < b.idx ? -1 : 1;
    return 0;
}

void sse_id_format(sse_id id, char *out) {
    if (id.idx == SSE_IDX_PLAIN)
        snprintf(out, SSE_ID_MAX, "%" PRIu64, id.seq);
    else
        snprintf(out, SSE_ID_MAX, "%" PRIu64 ".%" PRIu32, id.seq, id.idx);
}

/* Digits only: strtoull alone would take signs and leading spaces. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out) {
    if (n == 0 || n > 20)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int sse_id_parse(const char *s, sse_id *out) {
    if (!s || !out)
        return -EINVAL;
    const char *dot = strchr(s, '.');
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    uint64_t seq, idx = SSE_IDX_PLAIN;
    if (parse_u64(s, n, UINT64_MAX, &seq) < 0)
        return -EINVAL;
    /* SSE_IDX_PLAIN itself is not a valid entry index */
    if (dot && parse_u64(dot + 1, strlen(dot + 1), SSE_IDX_PLAIN - 1, &idx) < 0)
        return -EINVAL;
    out->seq = seq;
    out->idx = (uint32_t)idx;
    return 0;
}

void sse_format_event(sse_buf *b, const char *id, const char *event,
                      const char *data) {
    if (id) {
        add_str(b, "id: ");
        add_str(b, id);
        add_str(b, "\n");
    }
    if (event) {
        add_str(b, "event: ");
        add_str(b, event);
        add_str(b, "\n");
    }
    const char *p = data ? data : "";
    for (;;) {
        size_t n = strcspn(p, "\r\n");
        add_str(b, "data: ");
        sse_buf_add(b, p, n);
        add_str(b, "\n");
        p += n;
        if (!*p)
            break;
        p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
    }
    add_str(b, "\n");
}
