"""Runtime tests of the rest plugin: the Kanban API over real HTTP against
the real binary (a worker session compared with the reference's golden run,
cancel, list, logs, tags, /health, raw JSON round trips)."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import check, run_tests  # noqa: E402
from rest_common import (HERE, get_run, heartbeat, ok, poll,  # noqa: E402
                         rest_server, start_running, submit)

GOLDEN = os.path.join(HERE, "reference_run.json")
VOLATILE = {"run_id", "start_time", "end_time", "run_duration_ms"}
OUR_METADATA = {"worker_id", "assigned_at"}


def _num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def test_worker_session_matches_golden():
    with open(GOLDEN) as f:
        golden = json.load(f)
    with rest_server() as srv:
        run_id = submit(srv, "demo", {"x": 1})
        run = get_run(srv, run_id)
        check(run["status"] == "PENDING" and run["end_time"] is None, run)
        check(_num(run["start_time"]), run)

        got = poll(srv, "worker-1")
        check(got == {"run_id": run_id, "flow_name": "demo",
                      "params": {"x": 1}}, got)
        # The run stays PENDING until its first heartbeat.
        check(get_run(srv, run_id)["status"] == "PENDING")

        logs = [
            {"seq": 0, "task": "t1", "stream": "stdout", "text": "hello"},
            {"seq": 1, "task": "t1", "stream": "stdout", "text": "world"},
            {"seq": 2, "task": "t1", "stream": "stderr", "text": "warn"},
        ]
        check(heartbeat(srv, run_id, "RUNNING", {"t1": "RUNNING"},
                        logs=logs) is False)
        mid = get_run(srv, run_id)
        check(mid["status"] == "RUNNING" and mid["tasks"] == {"t1": "RUNNING"},
              mid)
        check(mid["end_time"] is None, mid)

        record = {"state": "SUCCEEDED", "started_at": 1000.0,
                  "ended_at": 1000.2, "duration_ms": 200.0,
                  "inputs": {"x": 1}, "output": 42}
        check(heartbeat(srv, run_id, "COMPLETED", {"t1": "SUCCEEDED"},
                        records={"t1": record}) is False)
        run = get_run(srv, run_id)

    check(run["run_id"] == run_id, run)
    for key, want in golden.items():
        check(key in run, "missing key", key, run)
        have = run[key]
        if key == "run_id":
            continue  # checked above
        if key in VOLATILE:
            check(_num(have), key, have)
            continue
        if key == "metadata":
            check(have.get("worker_id") == "worker-1", have)
            have = {k: v for k, v in have.items() if k not in OUR_METADATA}
        check(have == want, "field", key, "differs:", have, "golden:", want)
    check(run["end_time"] >= run["start_time"], run)
    check(abs(run["run_duration_ms"]
              - (run["end_time"] - run["start_time"]) * 1000) < 1e-3, run)
    extra = set(run) - set(golden)
    if extra:
        print("  note: keys beyond the golden run:", sorted(extra))


def test_cancel_running_round_trip():
    with rest_server() as srv:
        run_id = start_running(srv)
        check(ok(srv, "POST", "/runs/%s/cancel" % run_id) ==
              {"status": "CANCELLING"})
        check(get_run(srv, run_id)["status"] == "CANCELLING")
        # RUNNING does not overwrite CANCELLING; the worker is told.
        check(heartbeat(srv, run_id, "RUNNING", {"t1": "RUNNING"}) is True)
        run = get_run(srv, run_id)
        check(run["status"] == "CANCELLING" and run["end_time"] is None, run)
        check(heartbeat(srv, run_id, "CANCELLED", {"t1": "CANCELLED"})
              is False)
        run = get_run(srv, run_id)
        check(run["status"] == "CANCELLED", run)
        check(_num(run["end_time"]) and run["end_time"] >= run["start_time"],
              run)
        check(run["tasks"] == {"t1": "CANCELLED"}, run)
        # Cancel of a terminal run answers the same and changes nothing.
        check(ok(srv, "POST", "/runs/%s/cancel" % run_id) ==
              {"status": "CANCELLING"})
        check(get_run(srv, run_id) == run)


def test_cancel_queued_run_is_never_polled():
    with rest_server() as srv:
        first = submit(srv, "queued")
        second = submit(srv, "other")
        check(ok(srv, "POST", "/runs/%s/cancel" % first) ==
              {"status": "CANCELLING"})
        check(get_run(srv, first)["status"] == "CANCELLING")
        # The oldest queued run is cancelled: the next one is handed out.
        got = poll(srv, "w1")
        check(got["run_id"] == second, got, second)
        check(poll(srv, "w2") == {"run_id": None, "flow_name": None,
                                  "params": None})
        check(get_run(srv, first)["status"] == "CANCELLING")


def test_unknown_run_is_404_everywhere():
    missing = "00000000-0000-4000-8000-000000000000"
    hb = {"task_states": {}, "run_status": "RUNNING"}
    with rest_server() as srv:
        for method, path, body in [
                ("GET", "/runs/" + missing, None),
                ("POST", "/runs/%s/cancel" % missing, None),
                ("POST", "/runs/%s/heartbeat" % missing, hb),
                ("GET", "/runs/%s/logs" % missing, None),
                ("GET", "/runs/not-even-a-uuid", None)]:
            st, got = srv.json(method, path, body)
            check(st == 404 and got == {"detail": "Run not found"},
                  method, path, st, got)


def test_list_order_filters_and_limit():
    with rest_server() as srv:
        ids = [submit(srv, flow) for flow in ("a", "b", "a", "c")]
        runs = ok(srv, "GET", "/runs")
        check([r["run_id"] for r in runs] == ids[::-1], runs, ids)
        starts = [r["start_time"] for r in runs]
        check(starts == sorted(starts, reverse=True), starts)

        check([r["run_id"] for r in ok(srv, "GET", "/runs?flow=a")] ==
              [ids[2], ids[0]])
        check(ok(srv, "GET", "/runs?flow=zzz") == [])

        # Make the oldest run RUNNING: the status filter sees it alone.
        got = poll(srv)
        check(got["run_id"] == ids[0], got)
        heartbeat(srv, ids[0], "RUNNING")
        check([r["run_id"] for r in ok(srv, "GET", "/runs?status=RUNNING")]
              == [ids[0]])
        check([r["run_id"] for r in ok(srv, "GET", "/runs?status=PENDING")]
              == ids[:0:-1])
        check([r["run_id"] for r in
               ok(srv, "GET", "/runs?status=PENDING&flow=a")] == [ids[2]])
        check(ok(srv, "GET", "/runs?status=COMPLETED") == [])

        check([r["run_id"] for r in ok(srv, "GET", "/runs?limit=1")] ==
              [ids[3]])
        check([r["run_id"] for r in ok(srv, "GET", "/runs?limit=2&flow=a")]
              == [ids[2], ids[0]])
        check(len(ok(srv, "GET", "/runs?limit=200")) == 4)
        # Empty text parameters count as absent, as the reference's
        # `if status:` does.
        check(len(ok(srv, "GET", "/runs?status=&flow=")) == 4)
        # A listed run has the same shape as GET /runs/{id}.
        check(ok(srv, "GET", "/runs?limit=1")[0] == get_run(srv, ids[3]))

        for bad in ("0", "201", "x", "", "-1", "1.5"):
            st, body = srv.json("GET", "/runs?limit=" + bad)
            check(st == 422, "limit", bad, st, body)
            check(body["detail"][0]["loc"] == ["query", "limit"], body)
            check("limit" in body["detail"][0]["msg"], body)
        for bad in ("BOGUS", "pending", "SUCCEEDED"):
            st, body = srv.json("GET", "/runs?status=" + bad)
            check(st == 400 and body == {"detail": "Invalid status '%s'" % bad},
                  bad, st, body)
        check(len(ok(srv, "GET", "/runs")) == 4)


def test_logs_task_filter_and_tail():
    with rest_server() as srv:
        run_id = start_running(srv)
        logs = [
            {"seq": 0, "task": "t1", "stream": "stdout", "text": "a",
             "timestamp": 1.5},
            {"seq": 1, "task": "t2", "stream": "stderr", "text": "b"},
            {"seq": 2, "task": "t1", "stream": "stdout", "text": "c"},
            {"seq": 3, "task": "t1", "stream": "stdout", "text": "d"},
        ]
        heartbeat(srv, run_id, "RUNNING", {"t1": "RUNNING", "t2": "RUNNING"},
                  logs=logs[:2])
        heartbeat(srv, run_id, "RUNNING", logs=logs[2:])
        all_logs = ok(srv, "GET", "/runs/%s/logs" % run_id)
        check(all_logs == {"run_status": "RUNNING", "logs": logs}, all_logs)
        check(ok(srv, "GET", "/runs/%s/logs?task=t1" % run_id)["logs"] ==
              [logs[0], logs[2], logs[3]])
        check(ok(srv, "GET", "/runs/%s/logs?task=t2" % run_id)["logs"] ==
              [logs[1]])
        check(ok(srv, "GET", "/runs/%s/logs?task=none" % run_id)["logs"] ==
              [])
        check(ok(srv, "GET", "/runs/%s/logs?tail=2" % run_id)["logs"] ==
              logs[2:])
        check(ok(srv, "GET", "/runs/%s/logs?task=t1&tail=1" % run_id)["logs"]
              == [logs[3]])
        check(ok(srv, "GET", "/runs/%s/logs?tail=100" % run_id)["logs"] ==
              logs)
        check(ok(srv, "GET", "/runs/%s/logs?tail=0&task=" % run_id)["logs"]
              == logs)
        st, body = srv.json("GET", "/runs/%s/logs?tail=x" % run_id)
        check(st == 422 and body["detail"][0]["loc"] == ["query", "tail"],
              st, body)
        # The run object carries the same entries.
        check(get_run(srv, run_id)["logs"] == logs)


# Values chosen to catch lossy handling: big and negative integers, floats
# with an integral value, unicode, escapes, nesting, empty containers.
ODD = {
    "int": 9007199254740993, "neg": -12, "zero": 0, "float": 5.5,
    "one": 1.0, "exp": 1e-300, "t": True, "f": False, "none": None,
    "s": "snow \u2603 and \U0001F600, tab\t, quote\", slash\\ </script>",
    "empty_obj": {}, "empty_list": [],
    "nested": {"a": [1, [2, [3, {"b": None}]]], "": "empty key"},
}


def test_floats_and_arbitrary_json_round_trip():
    with rest_server() as srv:
        run_id = submit(srv, "odd", ODD)
        st, _, raw = srv.request("GET", "/runs/" + run_id)
        check(st == 200)
        text = raw.decode()
        check(re.search(r'"float":\s*5\.5[,}]', text), text)
        check(re.search(r'"one":\s*1\.0[,}]', text), text)
        check(re.search(r'"int":\s*9007199254740993[,}]', text), text)
        check(json.loads(text)["params"] == ODD)

        got = poll(srv)
        check(got["params"] == ODD, got)
        record = {"state": "SUCCEEDED", "started_at": 1.0, "ended_at": 6.5,
                  "duration_ms": 5.5, "inputs": ODD, "output": [ODD, 1.0],
                  "artifacts": {"deep": ODD}}
        heartbeat(srv, run_id, "COMPLETED", {"t1": "SUCCEEDED"},
                  {"t1": record})
        st, _, raw = srv.request("GET", "/runs/" + run_id)
        text = raw.decode()
        check(re.search(r'"duration_ms":\s*5\.5[,}]', text), text)
        check(re.search(r'"started_at":\s*1\.0[,}]', text), text)
        run = json.loads(text)
        rec = run["task_records"]["t1"]
        for k, v in record.items():
            check(rec[k] == v, "record field", k, rec[k], v)
        check(run["task_summary"]["t1"] == {"state": "SUCCEEDED",
                                            "duration_ms": 5.5,
                                            "ended_at": 6.5}, run)


def test_tag_routing_and_assignment_metadata():
    with rest_server() as srv:
        gpu = submit(srv, "train", tags=["gpu"])
        both = submit(srv, "big", tags=["gpu", "big"])
        plain = submit(srv, "plain")
        # A worker without tags only gets the untagged run.
        got = poll(srv, "cpu-worker", [])
        check(got["run_id"] == plain, got)
        check(poll(srv, "cpu-worker")["run_id"] is None)
        # "gpu" alone is not enough for a run tagged gpu+big.
        got = poll(srv, "gpu-worker", ["gpu"])
        check(got["run_id"] == gpu, got)
        check(poll(srv, "gpu-worker", ["gpu"])["run_id"] is None)
        got = poll(srv, "big-worker", ["big", "x", "gpu"])
        check(got["run_id"] == both and got["flow_name"] == "big", got)
        for run_id, worker in ((plain, "cpu-worker"), (gpu, "gpu-worker"),
                               (both, "big-worker")):
            run = get_run(srv, run_id)
            check(run["metadata"].get("worker_id") == worker, run)
            check(run["status"] == "PENDING", run)


def test_fifo_poll_order():
    with rest_server() as srv:
        ids = [submit(srv, "f%d" % i, {"i": i}) for i in range(5)]
        for i, run_id in enumerate(ids):
            got = poll(srv, "w")
            check(got == {"run_id": run_id, "flow_name": "f%d" % i,
                          "params": {"i": i}}, got)
        check(poll(srv, "w")["run_id"] is None)


def test_submit_defaults():
    with rest_server() as srv:
        run_id = submit(srv, "d")
        run = get_run(srv, run_id)
        check(run["params"] == {} and run["flow_name"] == "d", run)
        check(run["tasks"] == {} and run["task_records"] == {}, run)
        check(run["logs"] == [] and run["end_time"] is None, run)
        check(run["run_duration_ms"] is None, run)


def test_health():
    with rest_server() as srv:
        st, hdrs, raw = srv.request("GET", "/health")
        check(st == 200, st, raw)
        check(hdrs.get("content-type", "").startswith("application/json"),
              hdrs)
        body = json.loads(raw)
        check(body["status"] == "ok", body)
        check(isinstance(body["version"], str) and body["version"], body)
        check(body["plugins"] == ["rest"], body)


if __name__ == "__main__":
    run_tests(globals())
