"""Runtime tests of the rest plugin under bad input: every bad request gets a
4xx with a JSON `detail`, the server keeps serving, and no state changes
(the runs are fetched before and after and compared)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import Server, check, run_tests  # noqa: E402
from rest_common import (check_detail_422, get_run, heartbeat, ok,  # noqa: E402
                         poll, rest_server, start_running, submit)

# Large enough for the 100000-bracket body, small enough to exceed quickly.
MAX_BODY = 200000
CONFIG = {"server": {"max_body_bytes": MAX_BODY}}
JSON_HDR = {"Content-Type": "application/json"}


def snapshot(srv):
    return ok(srv, "GET", "/runs")


def raw(srv, method, path, body):
    st, _, data = srv.request(method, path, body, JSON_HDR)
    try:
        return st, json.loads(data)
    except ValueError:
        return st, data


def expect_4xx(srv, method, path, body, status, loc=None):
    st, got = raw(srv, method, path, body)
    if status == 422:
        check_detail_422(st, got, loc)
    else:
        check(st == status, method, path, "->", st, got, "wanted", status)
        check(isinstance(got, dict) and "detail" in got, method, path,
              "answered", status, "without a JSON detail:", got)
    return got


def with_state(fn):
    """Run fn(srv, run_id) against a RUNNING run with a log and a queued
    run, then check that nothing changed and the server still serves."""
    with rest_server(config=CONFIG) as srv:
        run_id = start_running(srv)
        heartbeat(srv, run_id, "RUNNING", {"t1": "RUNNING"},
                  {"t1": {"state": "RUNNING", "started_at": 1.0}},
                  [{"seq": 0, "task": "t1", "stream": "stdout", "text": "x"}])
        queued = submit(srv, "queued")
        before = snapshot(srv)
        fn(srv, run_id)
        check(snapshot(srv) == before, "state changed")
        check(ok(srv, "GET", "/health")["status"] == "ok")
        # The queued run was not handed out or lost by a bad poll.
        check(poll(srv, "w9")["run_id"] == queued)


def test_not_json_bodies():
    def body(srv, run_id):
        hb = "/runs/%s/heartbeat" % run_id
        for path in ("/runs", "/workers/poll", hb):
            for bad in (b"", b"nope", b"{", b"{\"a\":1} trailing", b"[]",
                        b"\"string\"", b"42", b"null",
                        b"{\"flow_name\":\"a\",\"flow_name\":\"b\"}",
                        b"{\"flow_name\":\"a\\u0000b\"}",
                        b"{\"flow_name\":\"\xff\xfe\"}",
                        b"{\"flow_name\":\"a\"}\x00",
                        b"{\"worker_id\": NaN}"):
                got = expect_4xx(srv, "POST", path, bad, 422, ["body"])
                check(got["detail"][0]["type"] == "value_error.jsondecode",
                      got)
    with_state(body)


def test_deep_nesting():
    def body(srv, run_id):
        for path in ("/runs", "/workers/poll", "/runs/%s/heartbeat" % run_id):
            expect_4xx(srv, "POST", path, b"[" * 100000, 422, ["body"])
            expect_4xx(srv, "POST", path, b"{\"a\":" * 20000, 422, ["body"])
        # Valid JSON nested deeper than jansson's bound (2048) is refused.
        deep = b"{\"flow_name\":\"d\",\"params\":{\"a\":" + b"[" * 3000 + \
            b"]" * 3000 + b"}}"
        expect_4xx(srv, "POST", "/runs", deep, 422, ["body"])
        # our own bound (100) keeps what Python clients get back decodable;
        # brackets inside strings do not count
        def nested(n):
            return (b"{\"flow_name\":\"d\",\"params\":{\"a\":" + b"[" * n +
                    b"]" * n + b"}}")
        expect_4xx(srv, "POST", "/runs", nested(99), 422, ["body"])
    with_state(body)


def test_nesting_within_bound_accepted():
    with Server(plugins={"rest": {}}) as srv:
        doc = {"flow_name": "d", "params": {"a": [[]]}}
        inner = doc["params"]["a"]
        for _ in range(94):  # 2 + 1 + 95 levels: under the bound of 100
            inner.append([])
            inner = inner[-1]
        st, got = srv.json("POST", "/runs", doc)
        check(st == 200, st, got)
        # brackets inside strings do not count
        st, got = srv.json("POST", "/runs", {"flow_name": "s",
                                             "params": {"x": "[" * 500}})
        check(st == 200, st, got)


def test_submit_wrong_fields():
    def body(srv, run_id):
        cases = [
            ({}, ["body", "flow_name"]),
            ({"flow_name": None}, ["body", "flow_name"]),
            ({"flow_name": 3}, ["body", "flow_name"]),
            ({"flow_name": ""}, ["body", "flow_name"]),
            ({"flow_name": "a", "params": [1]}, ["body", "params"]),
            ({"flow_name": "a", "params": "x"}, ["body", "params"]),
            ({"flow_name": "a", "params": None}, ["body", "params"]),
            ({"flow_name": "a", "tags": "gpu"}, ["body", "tags"]),
            ({"flow_name": "a", "tags": ["gpu", 1]}, ["body", "tags", 1]),
        ]
        for req, loc in cases:
            expect_4xx(srv, "POST", "/runs", json.dumps(req), 422, loc)
        # Every bad field is listed.
        got = expect_4xx(srv, "POST", "/runs",
                         json.dumps({"params": 1, "tags": {}}), 422)
        check(sorted(e["loc"] for e in got["detail"]) ==
              [["body", "flow_name"], ["body", "params"], ["body", "tags"]],
              got)
        for e in got["detail"]:
            check(e["loc"][-1] in e["msg"], "msg names the field", e)
    with_state(body)


def test_poll_wrong_fields():
    def body(srv, run_id):
        for req, loc in [({}, ["body", "worker_id"]),
                         ({"worker_id": 1}, ["body", "worker_id"]),
                         ({"worker_id": "w", "tags": [None]},
                          ["body", "tags", 0]),
                         ({"worker_id": "w", "tags": {"a": 1}},
                          ["body", "tags"])]:
            expect_4xx(srv, "POST", "/workers/poll", json.dumps(req), 422, loc)
    with_state(body)


def test_heartbeat_wrong_fields():
    def body(srv, run_id):
        path = "/runs/%s/heartbeat" % run_id
        good_log = {"seq": 1, "task": "t1", "stream": "stdout", "text": "y"}
        base = {"task_states": {"t1": "SUCCEEDED"}, "run_status": "COMPLETED",
                "logs": [good_log]}
        drop = object()
        cases = [
            ({"task_states": drop}, ["body", "task_states"]),
            ({"run_status": drop}, ["body", "run_status"]),
            ({"run_status": "DONE"}, ["body", "run_status"]),
            ({"run_status": "SUCCEEDED"}, ["body", "run_status"]),
            ({"run_status": None}, ["body", "run_status"]),
            ({"task_states": None}, ["body", "task_states"]),
            ({"task_states": {"t1": "DONE"}}, ["body", "task_states", "t1"]),
            ({"task_states": {"t1": "COMPLETED"}},
             ["body", "task_states", "t1"]),
            ({"task_states": ["t1"]}, ["body", "task_states"]),
            ({"task_records": []}, ["body", "task_records"]),
            ({"task_records": {"t1": "x"}}, ["body", "task_records", "t1"]),
            ({"task_records": {"t1": {"state": "NOPE"}}},
             ["body", "task_records", "t1", "state"]),
            ({"task_records": {"t1": {"duration_ms": "5"}}},
             ["body", "task_records", "t1", "duration_ms"]),
            ({"task_records": {"t1": {"ended_at": True}}},
             ["body", "task_records", "t1", "ended_at"]),
            ({"task_records": {"t1": {"error": 5}}},
             ["body", "task_records", "t1", "error"]),
            ({"logs": {"seq": 0}}, ["body", "logs"]),
            ({"logs": None}, ["body", "logs"]),
            ({"logs": [good_log, "x"]}, ["body", "logs", 1]),
            ({"logs": [dict(good_log, seq="1")]}, ["body", "logs", 0, "seq"]),
            ({"logs": [dict(good_log, text=None)]},
             ["body", "logs", 0, "text"]),
            ({"logs": [{"seq": 1, "stream": "stdout"}]},
             ["body", "logs", 0, "text"]),
            ({"logs": [dict(good_log, timestamp="now")]},
             ["body", "logs", 0, "timestamp"]),
            ({"logs": [dict(good_log, task=5)]}, ["body", "logs", 0, "task"]),
        ]
        for change, loc in cases:
            req = dict(base)
            for k, v in change.items():
                if v is drop:
                    del req[k]
                else:
                    req[k] = v
            expect_4xx(srv, "POST", path, json.dumps(req), 422, loc)
        # A valid body with one bad log entry applies nothing (checked by
        # with_state): not the good entry, not the COMPLETED status.
        # A bad body for an unknown run is still a validation error.
        expect_4xx(srv, "POST", "/runs/nope/heartbeat", "{}", 422,
                   ["body", "task_states"])
    with_state(body)


def test_bad_query_values():
    def body(srv, run_id):
        for q in ("limit=0", "limit=201", "limit=x", "limit=", "limit=1e2"):
            expect_4xx(srv, "GET", "/runs?" + q, None, 422, ["query", "limit"])
        for q in ("status=BOGUS", "status=running", "status=%20"):
            got = expect_4xx(srv, "GET", "/runs?" + q, None, 400)
            check(got["detail"].startswith("Invalid status '"), got)
        # not UTF-8, or cut mid-character at the echo limit: still a detail
        # that names the status (found by the rest fuzz target)
        for q in ("status=%FE", "status=" + "%E2%82%AC" * 34, "status=%ED%A0%80"):
            got = expect_4xx(srv, "GET", "/runs?" + q, None, 400)
            check(got["detail"].startswith("Invalid status"), got)
        expect_4xx(srv, "GET", "/runs/%s/logs?tail=-1" % run_id, None, 422,
                   ["query", "tail"])
        expect_4xx(srv, "GET", "/runs/%s/logs?tail=abc" % run_id, None, 422,
                   ["query", "tail"])
    with_state(body)


def _too_large(srv, run_id):
    """POST bodies over server.max_body_bytes; returns the raw answers."""
    big = json.dumps({"flow_name": "big", "params": {"x": "a" * MAX_BODY}})
    hb = json.dumps({"task_states": {}, "run_status": "COMPLETED",
                     "logs": [{"seq": 1, "task": "t1", "stream": "stdout",
                               "text": "z" * MAX_BODY}]})
    answers = [raw(srv, "POST", "/runs", big),
               raw(srv, "POST", "/runs/%s/heartbeat" % run_id, hb)]
    for st, got in answers:
        check(st == 413, "status", st, got)
    return answers


def test_too_large_body():
    with_state(_too_large)


def test_too_large_body_has_json_detail():
    # Split from the test above: the core's 413 comes from evhttp itself.
    def body(srv, run_id):
        for st, got in _too_large(srv, run_id):
            check(isinstance(got, dict) and "detail" in got,
                  "413 without a JSON detail:", got)
    with_state(body)


def test_unknown_routes_and_wrong_methods():
    def body(srv, run_id):
        for method, path in [("GET", "/nope"), ("POST", "/nope"),
                             ("GET", "/runs/%s/nope" % run_id),
                             ("POST", "/workers"), ("GET", "/runs/a/b/c/d")]:
            expect_4xx(srv, method, path, None, 404)
        for method, path in [("DELETE", "/runs"), ("PUT", "/runs"),
                             ("GET", "/workers/poll"),
                             ("GET", "/runs/%s/cancel" % run_id),
                             ("GET", "/runs/%s/heartbeat" % run_id),
                             ("DELETE", "/runs/" + run_id),
                             ("POST", "/runs/%s/logs" % run_id),
                             ("POST", "/health")]:
            expect_4xx(srv, method, path, None, 405)
    with_state(body)


def test_valid_requests_still_work_after_abuse():
    with rest_server(config=CONFIG) as srv:
        for _ in range(20):
            raw(srv, "POST", "/runs", b"[" * 5000)
            raw(srv, "POST", "/workers/poll", b"{")
        run_id = submit(srv, "after")
        check(poll(srv)["run_id"] == run_id)
        check(heartbeat(srv, run_id, "COMPLETED", {"t1": "SUCCEEDED"}) is False)
        check(get_run(srv, run_id)["status"] == "COMPLETED")
        check(len(ok(srv, "GET", "/runs")) == 1)


if __name__ == "__main__":
    run_tests(globals())
