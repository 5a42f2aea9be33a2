/* Unit tests of plugins/rest/validate.c: the 422 detail each bad body or
 * query parameter gets, and that good bodies pass. */
#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

#include "validate.h"

static json_t *parse(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

/* Run validator on text; return the detail dumped compactly ("" if valid). */
static char *run(json_t *(*fn)(const json_t *), const char *text) {
    static char buf[8192];
    json_t *body = parse(text);
    json_t *d = fn(body);
    json_decref(body);
    buf[0] = '\0';
    if (d) {
        char *s = json_dumps(d, JSON_COMPACT);
        snprintf(buf, sizeof buf, "%s", s);
        free(s);
        json_decref(d);
    }
    return buf;
}

/* The detail has exactly n entries and entry i has this loc and type. */
static void expect(json_t *(*fn)(const json_t *), const char *text, size_t n,
                   size_t i, const char *loc, const char *type) {
    json_t *body = parse(text);
    json_t *d = fn(body);
    json_decref(body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(json_array_size(d), n);
    json_t *e = json_array_get(d, i);
    char *l = json_dumps(json_object_get(e, "loc"), JSON_COMPACT);
    if (strcmp(l, loc) != 0)
        fprintf(stderr, "\nloc %s != %s for %s\n", l, loc, text);
    CU_ASSERT_STRING_EQUAL(l, loc);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "type")), type);
    /* The message names the field. */
    const char *msg = json_string_value(json_object_get(e, "msg"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    free(l);
    json_decref(d);
}

static void test_submit(void) {
    CU_ASSERT_STRING_EQUAL(
        run(pyoco_rest_validate_submit, "{\"flow_name\":\"demo\"}"), "");
    CU_ASSERT_STRING_EQUAL(
        run(pyoco_rest_validate_submit,
            "{\"flow_name\":\"d\",\"params\":{\"a\":[1,{}]},\"tags\":[\"x\"],"
            "\"extra\":1}"),
        "");
    expect(pyoco_rest_validate_submit, "{}", 1, 0, "[\"body\",\"flow_name\"]",
           "value_error.missing");
    expect(pyoco_rest_validate_submit, "{\"flow_name\":1}", 1, 0,
           "[\"body\",\"flow_name\"]", "type_error.str");
    expect(pyoco_rest_validate_submit, "{\"flow_name\":\"\"}", 1, 0,
           "[\"body\",\"flow_name\"]", "value_error.any_str.min_length");
    expect(pyoco_rest_validate_submit, "{\"flow_name\":null}", 1, 0,
           "[\"body\",\"flow_name\"]", "type_error.none.not_allowed");
    /* Every bad field is listed, in order. */
    const char *three = "{\"flow_name\":[],\"params\":[],\"tags\":[\"a\",2]}";
    expect(pyoco_rest_validate_submit, three, 3, 0, "[\"body\",\"flow_name\"]",
           "type_error.str");
    expect(pyoco_rest_validate_submit, three, 3, 1, "[\"body\",\"params\"]",
           "type_error.dict");
    expect(pyoco_rest_validate_submit, three, 3, 2, "[\"body\",\"tags\",1]",
           "type_error.str");
    expect(pyoco_rest_validate_submit, "{\"flow_name\":\"x\",\"tags\":\"a\"}",
           1, 0, "[\"body\",\"tags\"]", "type_error.list");
    expect(pyoco_rest_validate_submit, "[1]", 1, 0, "[\"body\"]",
           "type_error.dict");
}

static void test_poll(void) {
    CU_ASSERT_STRING_EQUAL(
        run(pyoco_rest_validate_poll, "{\"worker_id\":\"w\",\"tags\":[]}"), "");
    CU_ASSERT_STRING_EQUAL(
        run(pyoco_rest_validate_poll, "{\"worker_id\":\"\"}"), "");
    expect(pyoco_rest_validate_poll, "{\"tags\":[]}", 1, 0,
           "[\"body\",\"worker_id\"]", "value_error.missing");
    expect(pyoco_rest_validate_poll, "{\"worker_id\":5,\"tags\":[1]}", 2, 1,
           "[\"body\",\"tags\",0]", "type_error.str");
}

static const char *HB_OK =
    "{\"task_states\":{\"t1\":\"RUNNING\"},\"task_records\":{\"t1\":{"
    "\"state\":\"SUCCEEDED\",\"duration_ms\":5.0,\"ended_at\":1,"
    "\"started_at\":null,\"error\":null,\"traceback\":\"tb\","
    "\"inputs\":[1],\"output\":{\"a\":null},\"artifacts\":7}},"
    "\"logs\":[{\"seq\":0,\"task\":\"t1\",\"stream\":\"stdout\",\"text\":"
    "\"hello\",\"timestamp\":1.5},{\"seq\":1,\"task\":null,\"stream\":"
    "\"stderr\",\"text\":\"\"}],\"run_status\":\"RUNNING\"}";

static void test_heartbeat(void) {
    json_t *(*hb)(const json_t *) = pyoco_rest_validate_heartbeat;
    CU_ASSERT_STRING_EQUAL(run(hb, HB_OK), "");
    CU_ASSERT_STRING_EQUAL(
        run(hb, "{\"task_states\":{},\"run_status\":\"CANCELLED\"}"), "");
    expect(hb, "{}", 2, 0, "[\"body\",\"task_states\"]", "value_error.missing");
    expect(hb, "{}", 2, 1, "[\"body\",\"run_status\"]", "value_error.missing");
    expect(hb, "{\"task_states\":{\"t1\":\"DONE\"},\"run_status\":\"RUNNING\"}",
           1, 0, "[\"body\",\"task_states\",\"t1\"]", "type_error.enum");
    expect(hb, "{\"task_states\":{\"t1\":3},\"run_status\":\"RUNNING\"}", 1, 0,
           "[\"body\",\"task_states\",\"t1\"]", "type_error.enum");
    /* SUCCEEDED is a task state, not a run status. */
    expect(hb, "{\"task_states\":{},\"run_status\":\"SUCCEEDED\"}", 1, 0,
           "[\"body\",\"run_status\"]", "type_error.enum");
    expect(hb, "{\"task_states\":[],\"run_status\":\"RUNNING\"}", 1, 0,
           "[\"body\",\"task_states\"]", "type_error.dict");
    expect(hb,
           "{\"task_states\":{},\"run_status\":\"RUNNING\",\"task_records\":"
           "{\"t1\":{\"state\":\"NOPE\",\"started_at\":\"x\",\"error\":1}}}",
           3, 1, "[\"body\",\"task_records\",\"t1\",\"started_at\"]",
           "type_error.float");
    expect(hb,
           "{\"task_states\":{},\"run_status\":\"RUNNING\",\"task_records\":"
           "{\"t1\":5}}",
           1, 0, "[\"body\",\"task_records\",\"t1\"]", "type_error.dict");
    expect(hb,
           "{\"task_states\":{},\"run_status\":\"RUNNING\",\"logs\":"
           "[{\"seq\":0,\"stream\":\"stdout\",\"text\":\"a\"},{\"seq\":1.5,"
           "\"stream\":\"stdout\",\"text\":\"a\"}]}",
           1, 0, "[\"body\",\"logs\",1,\"seq\"]", "type_error.integer");
    expect(hb,
           "{\"task_states\":{},\"run_status\":\"RUNNING\",\"logs\":"
           "[{\"seq\":0,\"stream\":\"stdout\"}]}",
           1, 0, "[\"body\",\"logs\",0,\"text\"]", "value_error.missing");
    expect(hb,
           "{\"task_states\":{},\"run_status\":\"RUNNING\",\"logs\":"
           "[{\"seq\":0,\"stream\":\"stdout\",\"text\":\"a\",\"timestamp\":"
           "\"now\"}]}",
           1, 0, "[\"body\",\"logs\",0,\"timestamp\"]", "type_error.float");
    expect(hb, "{\"task_states\":{},\"run_status\":\"RUNNING\",\"logs\":{}}", 1,
           0, "[\"body\",\"logs\"]", "type_error.list");
    expect(hb, "{\"task_states\":{},\"run_status\":\"RUNNING\",\"logs\":[1]}",
           1, 0, "[\"body\",\"logs\",0]", "type_error.dict");
}

static void test_error_cap(void) {
    /* 1000 bad log entries: the list is cut, not 1000 entries long. */
    json_t *logs = json_array();
    for (int i = 0; i < 1000; i++)
        json_array_append_new(logs, json_integer(i));
    json_t *body = json_pack("{s:{},s:s,s:o}", "task_states", "run_status",
                             "RUNNING", "logs", logs);
    json_t *d = pyoco_rest_validate_heartbeat(body);
    CU_ASSERT_EQUAL(json_array_size(d), PYOCO_REST_MAX_ERRORS);
    json_decref(d);
    json_decref(body);
}

/* A 600-byte UTF-8 task name: msg is cut at a character boundary, loc
 * keeps the whole name. */
static void test_long_keys(void) {
    char name[601];
    for (int i = 0; i < 600; i += 2)
        memcpy(name + i, "\xc3\xa9", 2); /* U+00E9 */
    name[600] = '\0';
    json_t *body = json_pack("{s:{s:s},s:s}", "task_states", name, "X",
                             "run_status", "RUNNING");
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    json_t *d = pyoco_rest_validate_heartbeat(body);
    CU_ASSERT_EQUAL_FATAL(json_array_size(d), 1);
    json_t *e = json_array_get(d, 0);
    CU_ASSERT_PTR_NOT_NULL(json_string_value(json_object_get(e, "msg")));
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_array_get(json_object_get(e, "loc"), 2)), name);
    json_decref(d);
    json_decref(body);
    /* Every cut position of a 2-byte character inside msg. */
    for (int len = 240; len < 262; len++) {
        char k[300];
        memset(k, 'a', sizeof k);
        for (int i = len - 20; i + 1 < len; i += 2)
            memcpy(k + i, "\xc3\xa9", 2);
        k[len] = '\0';
        body = json_pack("{s:{s:s},s:s}", "task_states", k, "X", "run_status",
                         "RUNNING");
        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        d = pyoco_rest_validate_heartbeat(body);
        e = json_array_get(d, 0);
        CU_ASSERT_PTR_NOT_NULL(json_string_value(json_object_get(e, "msg")));
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_array_get(json_object_get(e, "loc"), 2)), k);
        json_decref(d);
        json_decref(body);
    }
}

static void test_parse_object(void) {
    json_t *detail = NULL;
    const char *ok = "{\"a\":1}";
    json_t *o = pyoco_rest_parse_object(ok, strlen(ok), &detail);
    CU_ASSERT_PTR_NOT_NULL(o);
    CU_ASSERT_PTR_NULL(detail);
    json_decref(o);

    const char *bad[] = {
        "",    "nope",  "{\"a\":1} x",         "{\"a\":1,\"a\":2}",
        "[1]", "\"s\"", "{\"a\":\"\\u0000\"}", NULL};
    for (int i = 0; bad[i]; i++) {
        detail = NULL;
        o = pyoco_rest_parse_object(bad[i], strlen(bad[i]), &detail);
        CU_ASSERT_PTR_NULL(o);
        CU_ASSERT_PTR_NOT_NULL_FATAL(detail);
        json_t *e = json_array_get(detail, 0);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "type")),
                               "value_error.jsondecode");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_array_get(json_object_get(e, "loc"), 0)),
            "body");
        json_decref(detail);
    }
    /* Deep nesting is refused by the parser, not a stack overflow. */
    size_t n = 100000;
    char *deep = malloc(n);
    memset(deep, '[', n);
    detail = NULL;
    CU_ASSERT_PTR_NULL(pyoco_rest_parse_object(deep, n, &detail));
    CU_ASSERT_PTR_NOT_NULL(detail);
    json_decref(detail);
    free(deep);
    /* A NULL body (none sent) is invalid JSON, not a crash. */
    detail = NULL;
    CU_ASSERT_PTR_NULL(pyoco_rest_parse_object(NULL, 0, &detail));
    CU_ASSERT_PTR_NOT_NULL(detail);
    json_decref(detail);
}

static void query(const char *text, long lo, long hi, int want_rc,
                  long want_val, const char *want_type) {
    long v = 12345;
    json_t *detail = NULL;
    int rc = pyoco_rest_parse_query_int("limit", text, lo, hi, &v, &detail);
    CU_ASSERT_EQUAL(rc, want_rc);
    if (rc == 0) {
        CU_ASSERT_EQUAL(v, want_val);
        CU_ASSERT_PTR_NULL(detail);
        return;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(detail);
    json_t *e = json_array_get(detail, 0);
    char *l = json_dumps(json_object_get(e, "loc"), JSON_COMPACT);
    CU_ASSERT_STRING_EQUAL(l, "[\"query\",\"limit\"]");
    free(l);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "type")),
                           want_type);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(json_string_value(json_object_get(e, "msg")), "limit"));
    json_decref(detail);
}

static void test_query_int(void) {
    query("1", 1, 200, 0, 1, NULL);
    query("200", 1, 200, 0, 200, NULL);
    query(" +7 ", 1, 200, 0, 7, NULL);
    query("0", 1, 200, -EINVAL, 0, "value_error.number.not_ge");
    query("-3", 1, 200, -EINVAL, 0, "value_error.number.not_ge");
    query("201", 1, 200, -EINVAL, 0, "value_error.number.not_le");
    query("99999999999999999999999", 1, 200, -EINVAL, 0,
          "value_error.number.not_le");
    query("-99999999999999999999999", 1, 200, -EINVAL, 0,
          "value_error.number.not_ge");
    query("x", 1, 200, -EINVAL, 0, "type_error.integer");
    query("", 1, 200, -EINVAL, 0, "type_error.integer");
    query("5x", 1, 200, -EINVAL, 0, "type_error.integer");
    query("1.5", 1, 200, -EINVAL, 0, "type_error.integer");
    query("-", 1, 200, -EINVAL, 0, "type_error.integer");
}

static void test_enums(void) {
    CU_ASSERT_TRUE(pyoco_rest_is_run_status("CANCELLING"));
    CU_ASSERT_FALSE(pyoco_rest_is_run_status("SUCCEEDED"));
    CU_ASSERT_FALSE(pyoco_rest_is_run_status("pending"));
    CU_ASSERT_FALSE(pyoco_rest_is_run_status(NULL));
    CU_ASSERT_TRUE(pyoco_rest_is_task_state("SUCCEEDED"));
    CU_ASSERT_FALSE(pyoco_rest_is_task_state("COMPLETED"));
}

void pyoco_test_register(void) {
    CU_pSuite s = CU_add_suite("rest_validate", NULL, NULL);
    CU_add_test(s, "submit", test_submit);
    CU_add_test(s, "poll", test_poll);
    CU_add_test(s, "heartbeat", test_heartbeat);
    CU_add_test(s, "error_cap", test_error_cap);
    CU_add_test(s, "long_keys", test_long_keys);
    CU_add_test(s, "parse_object", test_parse_object);
    CU_add_test(s, "query_int", test_query_int);
    CU_add_test(s, "enums", test_enums);
}
