"""A real Prometheus server (/usr/bin/prometheus) scrapes our /metrics every
second; the queries of metrics.md (the user's guide and its Grafana starter
dashboard) must return data with the values our lifecycles imply.
Prometheus negotiates OpenMetrics, so this also proves that format."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import check, free_port, run_tests  # noqa: E402
from prom_helpers import metrics_server, run_seconds, run_to  # noqa: E402

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class Prometheus:
    """prometheus on a free loopback port with its TSDB in a temp dir;
    always stopped by __exit__, even when the test fails."""

    def __init__(self, target_port):
        self.dir = tempfile.mkdtemp(prefix="pyoco-prom-")
        self.port = free_port()
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: pyoco\n    scrape_interval: 1s\n"
                    "    scrape_timeout: 1s\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % target_port)
        self.cmd = [PROMETHEUS, "--config.file=" + cfg,
                    "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                    "--web.listen-address=127.0.0.1:%d" % self.port,
                    "--log.level=warn"]
        self.proc = None
        self.logf = open(os.path.join(self.dir, "prometheus.log"), "w+")

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        if exc[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            sys.stderr.write("prometheus log kept in %s\n" % self.dir)

    def log(self):
        self.logf.flush()
        with open(self.logf.name) as f:
            return f.read()

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read())
        check(body.get("status") == "success", body)
        return body["data"]

    def wait_up(self, timeout=60):
        deadline, last = time.time() + timeout, None
        while time.time() < deadline:
            check(self.proc.poll() is None, "prometheus exited:\n" + self.log())
            try:
                targets = self.api("targets")["activeTargets"]
                last = targets
                if targets and targets[0]["health"] == "up":
                    return targets[0]
            except OSError:
                pass
            time.sleep(0.5)
        check(False, "target never up", last, self.log())

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def wait_query(self, expr, ok, timeout=40):
        """Polls an instant query until ok(result) holds; returns it."""
        deadline, res = time.time() + timeout, None
        while time.time() < deadline:
            res = self.query(expr)
            if ok(res):
                return res
            time.sleep(0.5)
        check(False, "query never satisfied:", expr, res)


def by(res, label):
    return {r["metric"].get(label): float(r["value"][1]) for r in res}


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def test_queries_of_the_guide():
    with metrics_server() as srv:
        runs = {"demo": [], "etl": []}
        tasks = {}

        def lifecycle(flow, final, ms):
            rid = run_to(srv, flow, final, ms)
            if final in ("COMPLETED", "FAILED"):
                runs[flow].append(run_seconds(srv, rid))
                for t, v in ms.items():
                    tasks.setdefault(t, []).append(v / 1000.0)

        # A counter series appears with its first event and increase()
        # only sees growth after that: give every status a sample before
        # Prometheus starts, and grow them all afterwards.
        lifecycle("demo", "COMPLETED", {"t1": 120.0})
        lifecycle("etl", "FAILED", {"extract": 40.0})
        run_to(srv, "demo", "RUNNING")  # stays RUNNING
        with Prometheus(srv.port) as prom:
            target = prom.wait_up()
            check(target.get("lastError", "") == "", target)
            # More lifecycles after the first scrapes, so increase() over
            # the window sees the counters grow.
            lifecycle("demo", "COMPLETED", {"t1": 380.0, "t2": 2000.0})
            lifecycle("etl", "FAILED", {"extract": 50.0})
            lifecycle("etl", "COMPLETED", {"extract": 60.0})
            total = srv.json("GET", "/runs?limit=200")[1]
            check(len(total) == 6, total)

            # 1. pyoco_runs_in_progress
            res = prom.wait_query("pyoco_runs_in_progress",
                                  lambda r: r and float(r[0]["value"][1]) == 1.0)
            check(len(res) == 1, res)

            # 2. completions by status over 5 minutes (not PENDING)
            q2 = 'sum by (status) (increase(pyoco_runs_total{status!="PENDING"}[5m]))'
            res = prom.wait_query(q2, lambda r: by(r, "status").get("COMPLETED", 0) > 0
                                  and by(r, "status").get("FAILED", 0) > 0)
            st = by(res, "status")
            check("PENDING" not in st, st)
            check(set(st) <= {"RUNNING", "COMPLETED", "FAILED", "CANCELLING",
                              "CANCELLED"}, st)

            # 3. average task duration, per task, equals sum/count
            want_t = {t: sum(v) / len(v) for t, v in tasks.items()}
            q3 = ("pyoco_task_duration_seconds_sum / "
                  "clamp_min(pyoco_task_duration_seconds_count, 1)")
            res = prom.wait_query(q3, lambda r: set(by(r, "task")) == set(want_t)
                                  and all(close(by(r, "task")[t], v)
                                          for t, v in want_t.items()))
            check(all(r["metric"].get("job") == "pyoco" for r in res), res)

            # 4. average run duration per flow (the dashboard's table)
            want_r = {f: sum(v) / len(v) for f, v in runs.items()}
            q4 = ("pyoco_run_duration_seconds_sum / "
                  "clamp_min(pyoco_run_duration_seconds_count, 1)")
            prom.wait_query(q4, lambda r: set(by(r, "flow")) == set(want_r)
                            and all(close(by(r, "flow")[f], v)
                                    for f, v in want_r.items()))

            # The exact counts, scraped by Prometheus.
            res = prom.wait_query("pyoco_runs_total",
                                  lambda r: by(r, "status").get("COMPLETED") == 3.0)
            st = by(res, "status")
            check(st == {"PENDING": 6.0, "RUNNING": 6.0, "COMPLETED": 3.0,
                         "FAILED": 2.0}, st)
            res = prom.query('pyoco_task_duration_seconds_bucket{task="t1",le="0.25"}')
            check(by(res, "le") == {"0.25": 1.0}, res)
            res = prom.query("up")
            check(by(res, "job") == {"pyoco": 1.0}, res)
            # the process_* families made it too
            check(prom.query("process_resident_memory_bytes"), "no process_*")


if __name__ == "__main__":
    run_tests(globals())
