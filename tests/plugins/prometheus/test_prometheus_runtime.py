"""The prometheus plugin in the real binary over real HTTP: the golden
lifecycle against the reference output, values implied by mixed lifecycles,
hostile task/flow names through promtool, the cardinality cap, OpenMetrics
negotiation, our own families, and configuration errors."""
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import CheckFailed, check, run_tests  # noqa: E402
from prom_helpers import (BUCKETS, CT_OM, CT_TEXT, HERE, bucket_counts,  # noqa: E402
                          fmt_le, heartbeat, metrics_server, parse, poll,
                          promtool_check, run_seconds, run_to, scrape, submit,
                          value)

COMPAT = ("pyoco_runs_total", "pyoco_runs_in_progress",
          "pyoco_task_duration_seconds", "pyoco_run_duration_seconds")


def compat_lines(text):
    """The four compat families' lines, in order, without _created ones."""
    out, keep = [], False
    for line in text.splitlines():
        if line.startswith("# HELP "):
            keep = line.split(" ")[2] in COMPAT
        if keep and line != "# EOF":
            out.append(line)
    return out


def test_empty_server():
    """prometheus alone (no rest): the families exist, nothing counted."""
    with metrics_server(rest=False) as srv:
        h, body = scrape(srv)
        check(h["content-type"] == CT_TEXT, h)
        fams, samples = parse(body)
        for name in COMPAT:
            check(name in fams, name, list(fams))
        check(fams["pyoco_runs_total"]["type"] == "counter", fams["pyoco_runs_total"])
        check(fams["pyoco_runs_in_progress"]["type"] == "gauge")
        check(fams["pyoco_task_duration_seconds"]["type"] == "histogram")
        check(value(samples, "pyoco_runs_in_progress") == 0.0, samples)
        check(value(samples, "pyoco_runs_queued") == 0.0, samples)
        promtool_check(body)


def test_golden_lifecycle_matches_reference():
    """submit, poll, RUNNING, COMPLETED with t1 = 200 ms: the compat
    families print the reference's lines, except the run duration, which
    depends on time (checked against GET /runs/{id} instead)."""
    with metrics_server() as srv:
        rid = run_to(srv, "demo", "COMPLETED", {"t1": 200.0})
        h, body = scrape(srv)
        got = compat_lines(body.decode())
        with open(os.path.join(HERE, "golden_reference_metrics.txt")) as f:
            want = compat_lines(f.read())
        want = [l for l in want if "_created" not in l]
        check(len(got) == len(want), "line count", len(got), len(want),
              "\n".join(got))
        secs = run_seconds(srv, rid)
        for g, w in zip(got, want):
            if w.startswith("pyoco_run_duration_seconds_"):
                # same series, value from this run's own duration
                check(g.rsplit(" ", 1)[0] == w.rsplit(" ", 1)[0], g, w)
                continue
            check(g == w, "got", g, "want", w)
        fams, samples = parse(body)
        check(value(samples, "pyoco_run_duration_seconds_sum", flow="demo") == secs,
              samples, secs)
        for b, c in zip(BUCKETS + [math.inf], bucket_counts([secs])):
            check(value(samples, "pyoco_run_duration_seconds_bucket", flow="demo",
                        le=fmt_le(b)) == c, b, c)
        promtool_check(body)


def test_lifecycle_values():
    with metrics_server() as srv:
        done = {}
        done["a"] = run_to(srv, "etl", "COMPLETED", {"extract": 30.0, "load": 700.0})
        done["b"] = run_to(srv, "etl", "FAILED", {"extract": 120.0})
        done["c"] = run_to(srv, "report", "COMPLETED", {"render": 4000.0})
        run_to(srv, "report", "RUNNING", {"render": 1.0})   # still running
        # cancelled while RUNNING, then the worker confirms
        e = run_to(srv, "etl", "RUNNING")
        st, body = srv.json("POST", "/runs/%s/cancel" % e)
        check(st == 200, st, body)
        hb = heartbeat(srv, e, "CANCELLED")
        done["e"] = e
        # cancelled while still queued: PENDING -> CANCELLING
        q = submit(srv, "etl")
        st, body = srv.json("POST", "/runs/%s/cancel" % q)
        check(st == 200, st, body)
        submit(srv, "late")  # queued, never polled

        h, body = scrape(srv)
        promtool_check(body)
        fams, s = parse(body)
        expect = {"PENDING": 7, "RUNNING": 5, "COMPLETED": 2, "FAILED": 1,
                  "CANCELLING": 2, "CANCELLED": 1}
        for status, n in expect.items():
            check(value(s, "pyoco_runs_total", status=status) == n, status,
                  value(s, "pyoco_runs_total", status=status))
        check(value(s, "pyoco_runs_in_progress") == 1.0,
              value(s, "pyoco_runs_in_progress"))
        # the runs list agrees with the counters
        st, runs = srv.json("GET", "/runs?limit=200")
        check(sum(1 for r in runs if r["status"] == "RUNNING") == 1, runs)
        tasks = {"extract": [0.03, 0.12], "load": [0.7], "render": [4.0]}
        for task, obs in tasks.items():
            check(value(s, "pyoco_task_duration_seconds_count", task=task) ==
                  len(obs), task)
            check(abs(value(s, "pyoco_task_duration_seconds_sum", task=task) -
                      sum(obs)) < 1e-12, task)
            for b, c in zip(BUCKETS + [math.inf], bucket_counts(obs)):
                check(value(s, "pyoco_task_duration_seconds_bucket", task=task,
                            le=fmt_le(b)) == c, task, b, c)
        durs = {"etl": [run_seconds(srv, done[k]) for k in ("a", "b", "e")],
                "report": [run_seconds(srv, done["c"])]}
        for flow, obs in durs.items():
            check(value(s, "pyoco_run_duration_seconds_count", flow=flow) ==
                  len(obs), flow)
            check(abs(value(s, "pyoco_run_duration_seconds_sum", flow=flow) -
                      sum(obs)) < 1e-9, flow, obs)
            for b, c in zip(BUCKETS + [math.inf], bucket_counts(obs)):
                check(value(s, "pyoco_run_duration_seconds_bucket", flow=flow,
                            le=fmt_le(b)) == c, flow, b, c)
        # ours: finished runs by flow and status (failures by flow)
        for (flow, status), n in {("etl", "COMPLETED"): 1, ("etl", "FAILED"): 1,
                                  ("etl", "CANCELLED"): 1,
                                  ("report", "COMPLETED"): 1}.items():
            check(value(s, "pyoco_runs_finished_total", flow=flow,
                        status=status) == n, flow, status)
        check(value(s, "pyoco_runs_finished_total", flow="report",
                    status="FAILED") is None, "no series without an event")
        # ours: queue depth, runs in memory, bus events, HTTP requests
        check(value(s, "pyoco_runs_queued") == 1.0, value(s, "pyoco_runs_queued"))
        check(value(s, "pyoco_runs_in_memory") == 7.0,
              value(s, "pyoco_runs_in_memory"))
        check(value(s, "pyoco_bus_events_total", kind="run_submitted") == 7.0, s)
        check(value(s, "pyoco_bus_events_total", kind="run_status") == 18.0,
              value(s, "pyoco_bus_events_total", kind="run_status"))
        check(value(s, "pyoco_http_requests_total", code="2xx", route="/runs") >= 7,
              [k for k in s if k[0] == "pyoco_http_requests_total"])


def test_hostile_names():
    long_name = "L" * 20000
    names = ['quote"s', "back\\slash\\", "new\nline", "crlf\r\n", "日本語タスク",
             "emoji 🎉", "tab\tand } brace, comma=\"", "\\n literal", long_name,
             "le", "__overflow__x", " "]
    # JSON \u escapes that decode to no valid UTF-8 (lone surrogates): the
    # API may refuse them; if it takes them they must still come out valid.
    odd = ["\ud800", "x\udfffy"]
    with metrics_server() as srv:
        for i, n in enumerate(names):
            run_to(srv, "flow " + n, "COMPLETED", {n: 10.0 * (i + 1)})
        accepted = []
        for n in odd:
            st, body = srv.json("POST", "/runs", {"flow_name": n})
            check(st in (200, 400, 422), "odd name", st, body)
            if st == 200:
                accepted.append(n)
        for accept in (None, "application/openmetrics-text; version=1.0.0"):
            h, body = scrape(srv, accept)
            om = accept is not None
            check(h["content-type"] == (CT_OM if om else CT_TEXT), h)
            fams, s = parse(body, om=om)
            if not om:
                promtool_check(body)
            for i, n in enumerate(names):
                check(value(s, "pyoco_task_duration_seconds_count", task=n) == 1.0,
                      "task", n[:40])
                check(value(s, "pyoco_task_duration_seconds_sum", task=n) ==
                      10.0 * (i + 1) / 1000.0, n[:40])
                check(value(s, "pyoco_run_duration_seconds_count",
                            flow="flow " + n) == 1.0, "flow", n[:40])
        check(value(s, "pyoco_runs_total", status="PENDING") ==
              len(names) + len(accepted), s.get(("pyoco_runs_total",)))


def test_cardinality_cap():
    with metrics_server({"max_series_per_family": 3}) as srv:
        ms = {"t%d" % i: 100.0 * (i + 1) for i in range(6)}
        run_to(srv, "f1", "COMPLETED", ms)
        for i in range(5):
            run_to(srv, "flow%d" % i, "COMPLETED")
        h, body = scrape(srv)
        promtool_check(body)
        fams, s = parse(body)
        tasks = {dict(l)["task"] for n, l, _ in
                 fams["pyoco_task_duration_seconds"]["samples"]}
        check(len(tasks) == 4 and "__overflow__" in tasks, tasks)
        ov = value(s, "pyoco_task_duration_seconds_count", task="__overflow__")
        check(ov == 3.0, ov)
        named = sum(value(s, "pyoco_task_duration_seconds_count", task=t)
                    for t in tasks if t != "__overflow__")
        check(named == 3.0, named)
        check(value(s, "pyoco_metrics_label_overflow_total",
                    family="pyoco_task_duration_seconds") == 3.0, s)
        check(value(s, "pyoco_run_duration_seconds_count", flow="__overflow__") ==
              3.0, s)
        check(value(s, "pyoco_metrics_label_overflow_total",
                    family="pyoco_run_duration_seconds") == 3.0, s)
        # statuses are not worker-supplied: never folded
        check(value(s, "pyoco_runs_total", status="COMPLETED") == 6.0, s)


def test_openmetrics_negotiation():
    with metrics_server() as srv:
        run_to(srv, "demo", "COMPLETED", {"t1": 200.0})
        prom_accept = ("application/openmetrics-text;version=1.0.0,application/"
                       "openmetrics-text;version=0.0.1;q=0.75,text/plain;"
                       "version=0.0.4;q=0.5,*/*;q=0.1")
        h, body = scrape(srv, prom_accept)
        check(h["content-type"] == CT_OM, h)
        # promtool 2.42's `check metrics` reads only the 0.0.4 text format,
        # so OpenMetrics is checked by parse(om=True) here and by a real
        # Prometheus (which asks for it) in test_prometheus_live.py.
        text = body.decode()
        check(text.endswith("\n# EOF\n"), text[-80:])
        fams, s = parse(body, om=True)
        check(fams["pyoco_runs"]["type"] == "counter", list(fams))
        check("pyoco_runs_total" not in fams, list(fams))
        check(fams["process_cpu_seconds"]["type"] == "counter")
        check(value(s, "pyoco_runs_total", status="COMPLETED") == 1.0, s)
        check(value(s, "pyoco_task_duration_seconds_count", task="t1") == 1.0)
        # same samples as the text format
        h2, body2 = scrape(srv, "text/plain")
        check(h2["content-type"] == CT_TEXT, h2)
        _, s2 = parse(body2)
        for k in ("pyoco_runs_total", "pyoco_task_duration_seconds_bucket"):
            check({x: v for x, v in s.items() if x[0] == k} ==
                  {x: v for x, v in s2.items() if x[0] == k}, k)
        check("# EOF" not in body2.decode())


def test_own_families_and_path():
    with metrics_server({"path": "/prom", "buckets": [0.1, 1, "+Inf"]}) as srv:
        st, _, _ = srv.request("GET", "/metrics")
        check(st == 404, st)
        run_to(srv, "demo", "COMPLETED", {"t1": 500.0})
        srv.request("GET", "/no/such/route")
        h, body = scrape(srv, path="/prom")
        promtool_check(body)
        fams, s = parse(body)
        les = [dict(l)["le"] for n, l, _ in fams["pyoco_task_duration_seconds"]
               ["samples"] if n.endswith("_bucket")]
        check(les == ["0.1", "1.0", "+Inf"], les)
        check(value(s, "pyoco_task_duration_seconds_bucket", task="t1", le="1.0")
              == 1.0)
        check(value(s, "pyoco_http_requests_total", code="4xx",
                    route="unmatched") >= 1.0, s)
        info = [dict(l) for n, l, _ in fams["pyoco_plugin_info"]["samples"]]
        check({"rest", "prometheus"} <= {i["name"] for i in info}, info)
        check(len(fams["pyoco_build_info"]["samples"]) == 1, fams["pyoco_build_info"])
        check(value(s, "process_resident_memory_bytes") > 1e6, s)
        check(value(s, "process_open_fds") >= 3, s)
        check(value(s, "process_max_fds") >= value(s, "process_open_fds"))
        start = value(s, "process_start_time_seconds")
        check(time.time() - 600 < start <= time.time() + 1, start)
        check(value(s, "process_cpu_seconds_total") >= 0)


def test_bad_config_refused():
    for block, key in (({"buckets": [1, 0.5]}, "buckets"),
                       ({"buckets": ["abc"]}, "buckets"),
                       ({"max_series_per_family": 0}, "max_series_per_family"),
                       ({"path": "metrics"}, "path"),
                       ({"nope": 1}, "nope")):
        srv = metrics_server(block, rest=False, start_timeout=10)
        try:
            srv.start()
        except CheckFailed:
            pass
        else:
            srv.stop()
            check(False, "started with", block)
        finally:
            srv.kill()
        check("plugins.prometheus." + key in srv.log(), block, srv.log())


if __name__ == "__main__":
    run_tests(globals())
