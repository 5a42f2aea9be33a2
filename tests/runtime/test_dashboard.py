"""docs/grafana_pyoco.json against a real Prometheus.

Every PromQL expression of the dashboard is sent to a real /usr/bin/prometheus
(127.0.0.1, a free port, an empty temp TSDB, no scrape targets) as an instant
query: it must answer status "success" (a syntax error answers "error" with
errorType "bad_data"; a broken control expression proves that). The starter
dashboard's three queries must be there verbatim, in the panels of the same
title. Every metric name used must be one a plugin of this tree publishes
(checked for the plugins whose source is present). And with the prometheus
plugin built: Prometheus scrapes the real server (rest + prometheus) through
a workload of completed, failed and cancelled runs, and every query of the
dashboard returns data, except the few whose families this set-up cannot
produce (named in NO_DATA_HERE) - so label names and selectors are right,
not only the syntax."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from pyoco_test import PLUGIN_DIR, SOURCE_DIR, Server, check, free_port, run_tests

DASHBOARD = os.path.join(SOURCE_DIR, "docs", "grafana_pyoco.json")
# A copy of ../shared/golden/reference_grafana_dashboard.json (the user's
# starter dashboard), kept in the repo so the test runs from any clone.
STARTER = os.environ.get("PYOCO_STARTER_DASHBOARD",
                         os.path.join(SOURCE_DIR, "tests", "runtime", "fixtures",
                                      "reference_grafana_dashboard.json"))
PROMETHEUS = "/usr/bin/prometheus"


def load(path):
    with open(path) as f:
        return json.load(f)


def all_panels(dash):
    """Panels, including those nested in (collapsed) rows."""
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def expressions(dash):
    """(panel title, expr) for every target with an expression."""
    return [(p.get("title"), t["expr"]) for p in all_panels(dash)
            for t in p.get("targets", []) if "expr" in t]


# Queries that stay empty in the live test, and why.
NO_DATA_HERE = [
    ("pyoco_webhook_", "the webhook plugin is not loaded"),
    ("pyoco_storage_", "the storage plugin is not loaded"),
    ('code="5xx"', "the workload causes no server error"),
    ("pyoco_metrics_label_overflow_total", "the cardinality cap is not hit"),
]


class Prometheus:
    def __init__(self, target_port=None):
        """No scrape target, or the pyoco server on target_port every 1 s."""
        self.tmp = tempfile.mkdtemp(prefix="pyoco-prom-")
        self.port = free_port()
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            if target_port is None:
                f.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
            else:
                f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n"
                        "  - job_name: pyoco\n    scrape_interval: 1s\n"
                        "    scrape_timeout: 1s\n    static_configs:\n"
                        "      - targets: ['127.0.0.1:%d']\n" % target_port)
        self.logf = open(os.path.join(self.tmp, "prometheus.log"), "w+")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(self.tmp, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            check(self.proc.poll() is None, "prometheus exited:\n" + self.log())
            try:
                with urllib.request.urlopen(self.url("/-/ready"), timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            check(time.time() < deadline, "prometheus not ready:\n" + self.log())
            time.sleep(0.2)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def log(self):
        self.logf.flush()
        self.logf.seek(0)
        return self.logf.read()[-4000:]

    def query(self, expr):
        """POST /api/v1/query; returns the decoded answer (errors included)."""
        data = urllib.parse.urlencode({"query": expr}).encode()
        req = urllib.request.Request(self.url("/api/v1/query"), data=data,
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:  # 400/422 carry a JSON body
            return json.loads(e.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def test_dashboard_shape():
    dash = load(DASHBOARD)
    ids = [p["id"] for p in all_panels(dash)]
    check(len(ids) == len(set(ids)), "duplicate panel ids", ids)
    exprs = expressions(dash)
    check(len(exprs) >= 20, "too few queries", len(exprs))
    for p in all_panels(dash):
        if p.get("type") == "row":
            continue
        check(p.get("datasource", {}).get("uid") == "PyocoProm", p["title"])
        refs = [t["refId"] for t in p.get("targets", [])]
        check(refs and len(refs) == len(set(refs)), p["title"], refs)
        check(all(t.get("expr") for t in p["targets"]), p["title"])


def test_starter_queries_verbatim():
    starter = load(STARTER)
    mine = expressions(load(DASHBOARD))
    want = expressions(starter)
    check(len(want) == 3, want)
    for title, expr in want:
        check((title, expr) in mine, "starter query missing or changed:",
              title, expr)


def test_metric_names_are_published():
    """Prometheus accepts any name; a typo would just show 'No data'. Names
    (minus _bucket/_sum/_count) must appear in the source of the plugin that
    publishes them, for the plugins present in this tree."""
    owners = [("pyoco_webhook_", "webhook"), ("pyoco_storage_", "storage"),
              ("pyoco_", "prometheus"), ("process_", "prometheus")]
    sources = {}
    checked = 0
    for _, expr in expressions(load(DASHBOARD)):
        for name in re.findall(r"\b((?:pyoco|process)_[a-z0-9_]+)", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            plugin = next(p for pre, p in owners if base.startswith(pre))
            pdir = os.path.join(SOURCE_DIR, "plugins", plugin)
            if not os.path.isdir(pdir):
                print("  (plugins/%s not in this tree: %s not checked)"
                      % (plugin, name))
                continue
            if plugin not in sources:
                text = []
                for dp, _, fs in os.walk(pdir):
                    text += [open(os.path.join(dp, f)).read() for f in fs
                             if f.endswith(".c")]
                sources[plugin] = "\n".join(text)
            stem = re.sub(r"_total$", "", base)  # counters get _total added
            check('"%s"' % base in sources[plugin]
                  or '"%s"' % stem in sources[plugin],
                  name, "is not published by plugins/" + plugin)
            checked += 1
    print("  %d metric references checked against plugin sources" % checked)


def test_every_expression_parses_in_prometheus():
    check(os.access(PROMETHEUS, os.X_OK), PROMETHEUS, "missing")
    exprs = expressions(load(DASHBOARD))
    prom = Prometheus()
    try:
        # Control: the validator does reject bad PromQL.
        bad = prom.query('sum by (status (pyoco_runs_total')
        check(bad.get("status") == "error" and
              bad.get("errorType") == "bad_data", bad)
        for title, expr in exprs:
            ans = prom.query(expr)
            check(ans.get("status") == "success", title, expr, ans)
    finally:
        prom.stop()


def workload(srv):
    """Runs through the real Kanban API: completed (with task records),
    failed and cancelled, in two flows."""
    now = time.time()

    def submit(flow):
        st, b = srv.json("POST", "/runs", {"flow_name": flow, "params": {}})
        check(st == 200, st, b)
        st, p = srv.json("POST", "/workers/poll", {"worker_id": "w1"})
        check(st == 200 and p["run_id"] == b["run_id"], p)
        return b["run_id"]

    def beat(rid, status, tasks):
        st, b = srv.json("POST", "/runs/%s/heartbeat" % rid, {
            "task_states": {t: s for t, (s, _) in tasks.items()},
            "task_records": {t: {"state": s, "duration_ms": ms,
                                 "started_at": now - ms / 1000.0,
                                 "ended_at": now}
                             for t, (s, ms) in tasks.items() if ms is not None},
            "run_status": status})
        check(st == 200, st, b)

    for i, (flow, end) in enumerate([("etl", "COMPLETED"), ("etl", "FAILED"),
                                     ("report", "COMPLETED")]):
        rid = submit(flow)
        beat(rid, "RUNNING", {"extract": ("RUNNING", None)})
        beat(rid, end, {"extract": ("SUCCEEDED", 120.0 + i),
                        "load": ("FAILED" if end == "FAILED" else "SUCCEEDED",
                                 2300.0)})
    rid = submit("report")
    beat(rid, "RUNNING", {})
    st, b = srv.json("POST", "/runs/%s/cancel" % rid)
    check(st == 200, st, b)
    beat(rid, "CANCELLED", {})
    srv.json("GET", "/runs/nope")  # a 4xx


def test_dashboard_queries_return_data():
    if not os.path.exists(os.path.join(PLUGIN_DIR, "prometheus.so")):
        print("  prometheus.so not built here: live check not run")
        return
    want = []
    for title, expr in expressions(load(DASHBOARD)):
        why = next((r for pat, r in NO_DATA_HERE if pat in expr), None)
        if why:
            print("  no data expected (%s): %s" % (why, expr))
        else:
            want.append((title, expr))
    check(len(want) >= 15, "too few queries checked live", len(want))
    with Server(plugins={"rest": {}, "prometheus": {}}) as srv:
        workload(srv)
        prom = Prometheus(target_port=srv.port)
        try:
            pending = list(want)
            deadline = time.time() + 60  # a few 1 s scrapes are enough
            while pending:
                pending = [(t, e) for t, e in pending
                           if not prom.query(e).get("data", {}).get("result")]
                if pending:
                    check(time.time() < deadline, "queries without data after "
                          "60 s of scrapes:", pending, prom.log())
                    time.sleep(1)
        finally:
            prom.stop()


if __name__ == "__main__":
    run_tests(globals())
