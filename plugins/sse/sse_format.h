/* sse_format.h - Server-Sent Events wire format and event ids.
 *
 * An event id is a bus sequence number, plus the entry index for log lines
 * (one bus event carries several entries): "<seq>" or "<seq>.<index>".
 * Internally a plain id has idx SSE_IDX_PLAIN, which orders it after every
 * log entry of the same seq, so ids compare as (seq, idx) pairs. */
#ifndef PYOCO_SSE_FORMAT_H
#define PYOCO_SSE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define SSE_IDX_PLAIN UINT32_MAX
#define SSE_ID_MAX 32 /* "18446744073709551615.4294967294" + NUL */

typedef struct sse_id {
    uint64_t seq;
    uint32_t idx; /* log entry index, or SSE_IDX_PLAIN */
} sse_id;

/* A growable byte buffer; `failed` sticks after an allocation failure. */
typedef struct sse_buf {
    char *data;
    size_t len, cap;
    int failed;
} sse_buf;

void sse_buf_init(sse_buf *b);
void sse_buf_free(sse_buf *b);
void sse_buf_reset(sse_buf *b);
void sse_buf_add(sse_buf *b, const char *s, size_t n);

/* <0, 0, >0 like strcmp. */
int sse_id_cmp(sse_id a, sse_id b);
/* Writes the wire form into out (SSE_ID_MAX bytes). */
void sse_id_format(sse_id id, char *out);
/* Parses "<seq>" or "<seq>.<index>" (digits only, no sign, no spaces);
 * -EINVAL otherwise. */
int sse_id_parse(const char *s, sse_id *out);

/* Appends one event: "id: ..\n" (when id is not NULL), "event: ..\n" (when
 * event is not NULL), one "data: " line per line of data (split at \r\n,
 * \r and \n, as the SSE parser does) and the blank line. */
void sse_format_event(sse_buf *b, const char *id, const char *event,
                      const char *data);

#endif
