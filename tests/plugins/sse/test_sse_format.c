/* CUnit: the SSE wire format (multi-line data, optional fields) and the
 * event id syntax and order. */
#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

#include "sse_format.h"

static void expect_event(const char *id, const char *event, const char *data,
                         const char *want) {
    sse_buf b;
    sse_buf_init(&b);
    sse_format_event(&b, id, event, data);
    CU_ASSERT_FALSE(b.failed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b.data);
    CU_ASSERT_STRING_EQUAL(b.data, want);
    CU_ASSERT_EQUAL(b.len, strlen(want));
    sse_buf_free(&b);
}

static void test_one_line(void) {
    expect_event("12", "status", "{\"status\":\"RUNNING\"}",
                 "id: 12\nevent: status\ndata: {\"status\":\"RUNNING\"}\n\n");
}

static void test_optional_fields(void) {
    expect_event(NULL, "end", "{}", "event: end\ndata: {}\n\n");
    expect_event(NULL, NULL, "x", "data: x\n\n");
    expect_event("1", NULL, NULL, "id: 1\ndata: \n\n");
    expect_event(NULL, NULL, "", "data: \n\n");
}

/* Every line break the SSE parser knows splits the data into lines; a
 * trailing break gives a last empty line, so the parser's join restores
 * the text exactly. */
static void test_multiline(void) {
    expect_event("3", "log", "a\nb", "id: 3\nevent: log\ndata: a\ndata: b\n\n");
    expect_event(NULL, NULL, "a\r\nb\rc\n\nd",
                 "data: a\ndata: b\ndata: c\ndata: \ndata: d\n\n");
    expect_event(NULL, NULL, "end\n", "data: end\ndata: \n\n");
    expect_event(NULL, NULL, "\n", "data: \ndata: \n\n");
}

static void test_buf_growth(void) {
    sse_buf b;
    sse_buf_init(&b);
    char chunk[1000];
    memset(chunk, 'z', sizeof(chunk));
    for (int i = 0; i < 100; i++)
        sse_buf_add(&b, chunk, sizeof(chunk));
    CU_ASSERT_EQUAL(b.len, 100000);
    CU_ASSERT_EQUAL(b.data[99999], 'z');
    CU_ASSERT_EQUAL(b.data[100000], '\0');
    sse_buf_reset(&b);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_STRING_EQUAL(b.data, "");
    sse_buf_free(&b);
}

static void test_id_roundtrip(void) {
    char out[SSE_ID_MAX];
    sse_id id;
    sse_id_format((sse_id){42, SSE_IDX_PLAIN}, out);
    CU_ASSERT_STRING_EQUAL(out, "42");
    sse_id_format((sse_id){42, 0}, out);
    CU_ASSERT_STRING_EQUAL(out, "42.0");
    sse_id_format((sse_id){UINT64_MAX, SSE_IDX_PLAIN - 1}, out);
    CU_ASSERT_STRING_EQUAL(out, "18446744073709551615.4294967294");
    CU_ASSERT_EQUAL(sse_id_parse(out, &id), 0);
    CU_ASSERT_EQUAL(id.seq, UINT64_MAX);
    CU_ASSERT_EQUAL(id.idx, SSE_IDX_PLAIN - 1);
    CU_ASSERT_EQUAL(sse_id_parse("7", &id), 0);
    CU_ASSERT_EQUAL(id.seq, 7);
    CU_ASSERT_EQUAL(id.idx, SSE_IDX_PLAIN);
    CU_ASSERT_EQUAL(sse_id_parse("7.3", &id), 0);
    CU_ASSERT_EQUAL(id.seq, 7);
    CU_ASSERT_EQUAL(id.idx, 3);
}

static void test_id_rejects(void) {
    const char *bad[] = {"",
                         "abc",
                         "-1",
                         " 1",
                         "1 ",
                         "1.",
                         ".1",
                         "1.2.3",
                         "+1",
                         "1.-1",
                         "18446744073709551616",
                         "1.4294967295",
                         "0x10"};
    sse_id id = {99, 99};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(sse_id_parse(bad[i], &id), -EINVAL);
        CU_ASSERT_EQUAL(id.seq, 99); /* untouched on failure */
    }
    CU_ASSERT_EQUAL(sse_id_parse(NULL, &id), -EINVAL);
}

/* A plain event sorts after every log entry of its seq: a snapshot at seq
 * N covers the entries of N. */
static void test_id_order(void) {
    CU_ASSERT(sse_id_cmp((sse_id){1, SSE_IDX_PLAIN}, (sse_id){2, 0}) < 0);
    CU_ASSERT(sse_id_cmp((sse_id){2, 0}, (sse_id){2, 1}) < 0);
    CU_ASSERT(sse_id_cmp((sse_id){2, 5}, (sse_id){2, SSE_IDX_PLAIN}) < 0);
    CU_ASSERT(sse_id_cmp((sse_id){3, 0}, (sse_id){2, SSE_IDX_PLAIN}) > 0);
    CU_ASSERT(sse_id_cmp((sse_id){3, 4}, (sse_id){3, 4}) == 0);
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("sse wire format and ids", NULL, NULL);
    CU_add_test(s, "one line", test_one_line);
    CU_add_test(s, "optional fields", test_optional_fields);
    CU_add_test(s, "multi-line data", test_multiline);
    CU_add_test(s, "buffer growth", test_buf_growth);
    CU_add_test(s, "id round trip", test_id_roundtrip);
    CU_add_test(s, "id rejects", test_id_rejects);
    CU_add_test(s, "id order", test_id_order);
}
