"""docs/grafana_pyoco.json against a real Prometheus.

Every PromQL expression of the dashboard is sent to a real /usr/bin/prometheus
(127.0.0.1, a free port, an empty temp TSDB, no scrape targets) as an instant
query: it must answer status "success" (a syntax error answers "error" with
errorType "bad_data"; a broken control expression proves that). The starter
dashboard's three queries must be there verbatim, in the panels of the same
title. Every metric name used must be one a plugin of this tree publishes
(checked for the plugins whose source is present)."""
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

from pyoco_test import SOURCE_DIR, check, free_port, run_tests

DASHBOARD = os.path.join(SOURCE_DIR, "docs", "grafana_pyoco.json")
STARTER = os.environ.get("PYOCO_STARTER_DASHBOARD",
                         "/work/shared/golden/reference_grafana_dashboard.json")
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


class Prometheus:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="pyoco-prom-")
        self.port = free_port()
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
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


if __name__ == "__main__":
    run_tests(globals())
