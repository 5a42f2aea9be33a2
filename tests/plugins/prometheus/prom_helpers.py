"""Helpers shared by the prometheus plugin's runtime tests: a strict parser
of the exposition text, promtool, and worker-side lifecycles over the real
Kanban API (POST /runs, /workers/poll, /runs/{id}/heartbeat)."""
import math
import os
import re
import shutil
import subprocess
import time

from pyoco_test import Server, check

HERE = os.path.dirname(os.path.abspath(__file__))
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
CT_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CT_OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]


def metrics_server(block=None, rest=True, **kw):
    plugins = {"rest": {}} if rest else {}
    plugins["prometheus"] = block or {}
    return Server(plugins=plugins, **kw)


def scrape(srv, accept=None, path="/metrics"):
    hdrs = {"Accept": accept} if accept else {}
    st, h, data = srv.request("GET", path, headers=hdrs)
    check(st == 200, "scrape status", st, data[:300])
    return h, data


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')
_ESC = {"\\": "\\", '"': '"', "n": "\n"}


def _labels(s):
    """{a="x",b="y"} -> tuple of (name, value) pairs (escapes undone)."""
    out, i = [], 1
    while s[i] != "}":
        j = s.index("=", i)
        name = s[i:j]
        check(s[j + 1] == '"', "label value must be quoted", s)
        k, val = j + 2, []
        while s[k] != '"':
            if s[k] == "\\":
                check(s[k + 1] in _ESC, "bad escape", s)
                val.append(_ESC[s[k + 1]])
                k += 2
            else:
                val.append(s[k])
                k += 1
        out.append((name, "".join(val)))
        i = k + 1
        if s[i] == ",":
            i += 1
    check(i == len(s) - 1, "junk after labels", s)
    names = [n for n, _ in out]
    check(names == sorted(names), "labels not sorted by name", s)
    return tuple(out)


def parse(body, om=False):
    """Parses the exposition strictly. Returns (families, samples):
    families: name -> {"type", "help", "samples": [(name, labels, value)]};
    samples: (sample name, labels tuple) -> float. Checks one HELP/TYPE per
    family before its samples, contiguous samples, no duplicates."""
    text = body.decode("utf-8")  # raises on invalid UTF-8
    check(text.endswith("\n"), "no final newline")
    lines = text[:-1].split("\n")
    if om:
        check(lines[-1] == "# EOF", "OpenMetrics must end with # EOF", lines[-1])
        check(text.count("# EOF") == 1, "more than one # EOF")
        lines = lines[:-1]
    fams, samples, cur, seen_fam = {}, {}, None, []
    for line in lines:
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            if name not in fams:
                check(name not in seen_fam, "family split", name)
                fams[name] = {"samples": []}
                seen_fam.append(name)
            check(kind.lower() not in fams[name], "two", kind, "for", name)
            fams[name][kind.lower()] = rest
            cur = name
            continue
        check(not line.startswith("#"), "unexpected comment", line)
        m = _SAMPLE.match(line)
        check(m is not None, "bad sample line", line)
        name, lab, val = m.group(1), m.group(2), m.group(3)
        labels = _labels(lab) if lab else ()
        check(cur is not None and name.startswith(cur), "sample outside its family",
              line, cur)
        typ = fams[cur].get("type")
        suffixes = {"counter": ["_total"] if om else [""],
                    "gauge": [""], "histogram": ["_bucket", "_count", "_sum"]}[typ]
        check(name[len(cur):] in suffixes, "sample name", name, "in", cur, typ)
        key = (name, labels)
        check(key not in samples, "duplicate sample", line)
        samples[key] = float(val.replace("+Inf", "inf").replace("-Inf", "-inf"))
        fams[cur]["samples"].append((name, labels, samples[key]))
    for name, f in fams.items():
        check("type" in f and "help" in f, "HELP and TYPE for", name)
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
    return fams, samples


def check_histogram(name, samples):
    """Buckets cumulative, increasing le, +Inf == _count, for each series."""
    series = {}
    for sname, labels, v in samples:
        base = tuple(p for p in labels if p[0] != "le")
        s = series.setdefault(base, {"le": []})
        if sname.endswith("_bucket"):
            le = dict(labels)["le"]
            s["le"].append((float(le.replace("+Inf", "inf")), v))
        else:
            s[sname[len(name):]] = v
    for base, s in series.items():
        les = [le for le, _ in s["le"]]
        check(les == sorted(les) and les[-1] == math.inf, "le order", name, base)
        counts = [v for _, v in s["le"]]
        check(counts == sorted(counts), "buckets not cumulative", name, base)
        check(counts[-1] == s["_count"], "+Inf != _count", name, base)
        check("_sum" in s, "no _sum", name, base)


def promtool_check(body):
    """promtool check metrics: exit 0 and nothing printed."""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=body,
                       capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    check(p.returncode == 0 and out.strip() == "", "promtool:", p.returncode, out)


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def bucket_counts(observations, buckets=BUCKETS):
    """Cumulative counts per bound (plus +Inf) as the exposition shows them."""
    return [sum(1 for o in observations if o <= b) for b in buckets] + \
        [len(observations)]


def fmt_le(b):
    return "+Inf" if b == math.inf else repr(float(b))


# ---- worker side -----------------------------------------------------------

def submit(srv, flow, tags=None):
    st, body = srv.json("POST", "/runs", {"flow_name": flow, "params": {},
                                          "tags": tags or []})
    check(st == 200, "submit", flow[:80], st, body)
    return body["run_id"]


def poll(srv, worker="w1"):
    st, body = srv.json("POST", "/workers/poll", {"worker_id": worker, "tags": []})
    check(st == 200, "poll", st, body)
    return body["run_id"]


def heartbeat(srv, run_id, status, tasks=None, records=None):
    st, body = srv.json("POST", "/runs/%s/heartbeat" % run_id,
                        {"task_states": tasks or {}, "task_records": records or {},
                         "logs": [], "run_status": status})
    check(st == 200, "heartbeat", st, body)
    return body


def run_to(srv, flow, final, task_ms=None, worker="w1"):
    """Submit, poll, RUNNING, then `final` with one record per task in
    task_ms (name -> duration_ms). Returns the run id."""
    rid = submit(srv, flow)
    got = poll(srv, worker)
    check(got == rid, "polled another run", got, rid)
    task_ms = task_ms or {}
    heartbeat(srv, rid, "RUNNING", {t: "RUNNING" for t in task_ms})
    if final != "RUNNING":
        now = time.time()
        recs = {t: {"state": "SUCCEEDED", "started_at": now - ms / 1000.0,
                    "ended_at": now, "duration_ms": ms}
                for t, ms in task_ms.items()}
        heartbeat(srv, rid, final, {t: "SUCCEEDED" for t in task_ms}, recs)
    return rid


def run_seconds(srv, rid):
    st, body = srv.json("GET", "/runs/" + rid)
    check(st == 200, st, body)
    return body["end_time"] - body["start_time"]
