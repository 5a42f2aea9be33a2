#!/usr/bin/env python3
"""`make bench`: the workloads of the benchmark spec, run with wrk against a
Release build on loopback, each reported as req/s, p50/p99 and a ratio to the
ceiling (a bare evhttp+jansson server measured in the same run), plus memory.

    python3 bench/bench.py --build build-release [--duration 5] [--repeat 3]

Prints a Markdown table and writes it to bench/results-latest.md."""
import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
BODY_H = ('{"task_states":{"t1":"RUNNING"},"task_records":{"t1":{"state":"SUCCEEDED",'
          '"duration_ms":5.0,"ended_at":1.0}},"logs":[{"seq":0,"task":"t1","stream":"stdout",'
          '"text":"hello"}],"run_status":"RUNNING"}')
BODY_POLL = '{"worker_id":"w1","tags":[]}'
BODY_SUBMIT = '{"flow_name":"demo","params":{"x":1},"tags":[]}'
REFERENCE = {  # the Python reference server on this kind of machine (bench-workloads.md)
    "heartbeat": (3712, 12.8), "poll (empty)": (4357, 12.8), "submit": (1334, 49.3),
    "get run": (3808, 12.9), "list runs": (252, 200), "metrics": (147, 306),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Proc:
    def __init__(self, cmd, cwd, env=None):
        self.p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.port = None
        deadline = time.time() + 20
        for raw in self.p.stdout:
            m = re.search(r"listening on http://[0-9.]+:(\d+)", raw.decode("utf-8", "replace"))
            if m:
                self.port = int(m.group(1))
                break
            if time.time() > deadline:
                break
        if not self.port:
            self.p.kill()
            raise RuntimeError("did not start: %s" % " ".join(cmd))
        threading.Thread(target=lambda: [None for _ in self.p.stdout], daemon=True).start()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


class Client:
    """One keep-alive connection with TCP_NODELAY (see the note on httpx)."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.c.connect()
        self.c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, method, path, body=None):
        self.c.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("%s %s -> %d %s" % (method, path, r.status, data[:200]))
        return json.loads(data) if data else None


def complete_runs(cli, n, flows=1, log_lines=1):
    ids = []
    for i in range(n):
        flow = "demo" if flows == 1 else "flow%d" % (i % flows)
        rid = cli.call("POST", "/runs", json.dumps({"flow_name": flow, "params": {"x": i}}))["run_id"]
        cli.call("POST", "/workers/poll", BODY_POLL)
        k = "t%d" % (i % 100)
        cli.call("POST", "/runs/%s/heartbeat" % rid,
                 json.dumps({"task_states": {k: "RUNNING"}, "run_status": "RUNNING"}))
        logs = [{"seq": j, "task": k, "stream": "stdout", "text": "line %06d " % j + "x" * 48}
                for j in range(log_lines)]
        cli.call("POST", "/runs/%s/heartbeat" % rid, json.dumps({
            "task_states": {k: "SUCCEEDED"},
            "task_records": {k: {"state": "SUCCEEDED", "started_at": 1.0,
                                 "ended_at": 1.0 + (i % 50) / 100, "duration_ms": 10.0 * (i % 50),
                                 "inputs": {"x": i}, "output": i}},
            "logs": logs, "run_status": "COMPLETED"}))
        ids.append(rid)
    return ids


def wrk(url, duration, body=None, threads=2, conns=32):
    args = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--latency", url]
    script = None
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                     'wrk.body = %s\n' % json.dumps(body))
        script.close()
        args[1:1] = ["-s", script.name]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    if script:
        os.unlink(script.name)

    def ms(label):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % label, out, re.M)
        if not m:
            return float("nan")
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(m.group(1)) if m else 0.0, "p50": ms("50"), "p99": ms("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1) if errors else ""}


def seed(port, n, threads=8):
    """Submit exactly n runs, from several keep-alive connections at once
    (with storage, each answer waits for its commit: concurrency batches)."""
    def work(count):
        cli = Client(port)
        for _ in range(count):
            cli.call("POST", "/runs", BODY_SUBMIT)
    ts = [threading.Thread(target=work, args=(n // threads + (i < n % threads),))
          for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def measure(url, args, body=None):
    runs = [wrk(url, args.duration, body) for _ in range(args.repeat)]
    runs.sort(key=lambda r: r["rps"])
    return runs[len(runs) // 2]


def server(args, plugins, env=None, extra=None):
    work = tempfile.mkdtemp(prefix="pyoco-bench-")
    cfg = {"plugin_path": [os.path.join(args.build, "plugins")], "plugins": plugins}
    cfg.update(extra or {})
    path = os.path.join(work, "pyoco.yaml")
    with open(path, "w") as f:
        json.dump(cfg, f)  # JSON is YAML
    e = dict(os.environ)
    e.update(env or {})
    p = Proc([os.path.join(args.build, "core", "pyoco"), "server", "start", "--config", path,
              "--host", "127.0.0.1", "--port", "0"], cwd=work, env=e)
    p.work = work
    return p


RECEIVER_DELAY = [0.0]  # seconds the webhook receiver takes per request


class SlowReceiver(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(RECEIVER_DELAY[0])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def finishing_runs(port, stop, every=0.05):
    """Complete a run every `every` seconds until stop is set, so that
    webhook deliveries are in flight during the whole measurement."""
    cli = Client(port)
    while not stop.is_set():
        complete_runs(cli, 1)
        time.sleep(every)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    rows = []
    mem = []
    t_start = time.time()

    def add(name, r, ceiling, note=""):
        ref = REFERENCE.get(name.split(" [")[0])
        rows.append((name, r, ceiling, ref, note))
        print("  %-40s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %s" %
              (name, r["rps"], r["p50"], r["p99"], note), flush=True)

    def want(name):
        return not args.only or any(o in name for o in args.only)

    # The ceiling, measured first and used for every ratio.
    port = free_port()
    ceil = Proc([os.path.join(args.build, "bench", "pyoco-bench-ceiling"), str(port)], cwd=HERE)
    ceil.port = port
    c = measure("http://127.0.0.1:%d/ceiling" % port, args, BODY_H)
    ceil.stop()
    print("ceiling: %.0f req/s" % c["rps"], flush=True)
    ceiling = c["rps"]
    rows.append(("ceiling (evhttp + jansson, fixed reply)", c, ceiling, None, ""))

    mem_plugins = {"rest": {}, "prometheus": {}}
    # In memory: heartbeat, poll, submit, get, list, metrics.
    srv = server(args, mem_plugins, env={"PYOCO_MAX_RUN_HISTORY": "50"})
    try:
        time.sleep(0.3)
        mem.append(("idle RSS (rest + prometheus loaded)", rss_kb(srv.p.pid)))
        base = "http://127.0.0.1:%d" % srv.port
        cli = Client(srv.port)
        rid = cli.call("POST", "/runs", BODY_SUBMIT)["run_id"]
        cli.call("POST", "/workers/poll", BODY_POLL)
        if want("heartbeat"):
            add("heartbeat", measure(base + "/runs/%s/heartbeat" % rid, args, BODY_H), ceiling)
        if want("poll"):
            add("poll (empty)", measure(base + "/workers/poll", args, BODY_POLL), ceiling)
        # The heartbeat workload left one RUNNING run with ~200 000 log lines:
        # finish it so that retention evicts it like the others.
        cli.call("POST", "/runs/%s/heartbeat" % rid,
                 json.dumps({"task_states": {}, "run_status": "COMPLETED"}))
        if want("get") or want("metrics") or want("list"):
            ids = complete_runs(cli, 1000)
            if want("get"):
                add("get run", measure(base + "/runs/%s" % ids[-1], args), ceiling,
                    "1000 completed runs")
            if want("list"):
                # the reference's own list workload: 1000 completed, 50 kept
                add("list runs", measure(base + "/runs?limit=50", args), ceiling,
                    "1000 completed runs, 50 retained (the reference's state)")
        if want("metrics"):
            complete_runs(cli, 20, flows=20)  # 20 flow series next to 100 task series
            add("metrics", measure(base + "/metrics", args), ceiling, "100 task + 20 flow series")
    finally:
        srv.stop()

    if want("list"):
        srv = server(args, mem_plugins, env={"PYOCO_MAX_RUN_HISTORY": "50"})
        try:
            cli = Client(srv.port)
            before = rss_kb(srv.p.pid)
            complete_runs(cli, 50, log_lines=1000)
            after = rss_kb(srv.p.pid)
            mem.append(("RSS per 1 000 log lines stored (~60 B each)", (after - before) / 50))
            add("list runs [50 x 1000 log lines]",
                measure("http://127.0.0.1:%d/runs?limit=50" % srv.port, args),
                ceiling, "5.6 MB per answer")
        finally:
            srv.stop()

    if want("submit"):
        srv = server(args, {"rest": {}}, env={"PYOCO_MAX_RUN_HISTORY": "50"})
        try:
            add("submit", measure("http://127.0.0.1:%d/runs" % srv.port, args, BODY_SUBMIT),
                ceiling, "in memory, queue grows")
        finally:
            srv.stop()

    storage_so = os.path.join(args.build, "plugins", "storage.so")
    if os.path.exists(storage_so) and (want("storage") or want("heartbeat") or want("submit")):
        srv = server(args, {"rest": {}, "storage": {"path": "bench.db", "synchronous": "FULL"}})
        try:
            cli = Client(srv.port)
            rid = cli.call("POST", "/runs", BODY_SUBMIT)["run_id"]
            cli.call("POST", "/workers/poll", BODY_POLL)
            add("heartbeat [storage FULL]", measure("http://127.0.0.1:%d/runs/%s/heartbeat"
                                                    % (srv.port, rid), args, BODY_H), ceiling)
            add("submit [storage FULL, empty]", measure("http://127.0.0.1:%d/runs" % srv.port,
                                                        args, BODY_SUBMIT), ceiling)
            seed(srv.port, 100000)
            add("submit [storage FULL, 100 000 stored]",
                measure("http://127.0.0.1:%d/runs" % srv.port, args, BODY_SUBMIT), ceiling)
        finally:
            srv.stop()

    if want("webhook") and os.path.exists(os.path.join(args.build, "plugins", "webhook.so")):
        # The same server and background work (a run finishing every 50 ms,
        # so deliveries are always in flight) with an instant receiver, then
        # with one that takes 3 s per request: the ratio is the cost of a
        # slow receiver to everybody else.
        rport = free_port()
        recv = ThreadingHTTPServer(("127.0.0.1", rport), SlowReceiver)
        recv.daemon_threads = True
        threading.Thread(target=recv.serve_forever, daemon=True).start()
        srv = server(args, {"rest": {}, "webhook": {}},
                     env={"PYOCO_WEBHOOK_URL": "http://127.0.0.1:%d/hook" % rport,
                          "PYOCO_WEBHOOK_TIMEOUT": "10"})
        try:
            cli = Client(srv.port)
            rid = cli.call("POST", "/runs", BODY_SUBMIT)["run_id"]
            cli.call("POST", "/workers/poll", BODY_POLL)
            url = "http://127.0.0.1:%d/runs/%s/heartbeat" % (srv.port, rid)
            results = {}
            for delay in (0.0, 3.0):
                RECEIVER_DELAY[0] = delay
                stop = threading.Event()
                bg = threading.Thread(target=finishing_runs, args=(srv.port, stop))
                bg.start()
                time.sleep(0.5)
                results[delay] = measure(url, args, BODY_H)
                stop.set()
                bg.join()
            add("heartbeat [webhook, instant receiver]", results[0.0], ceiling,
                "a run finishes every 50 ms")
            add("heartbeat [webhook, 3 s receiver]", results[3.0], ceiling,
                "%.0f %% of the instant-receiver figure" %
                (100 * results[3.0]["rps"] / max(results[0.0]["rps"], 1)))
        finally:
            srv.stop()
            recv.shutdown()

    if want("rss"):
        srv = server(args, {"rest": {}}, env={"PYOCO_MAX_RUN_HISTORY": "10000"})
        try:
            cli = Client(srv.port)
            complete_runs(cli, 10000)
            mem.append(("RSS with 10 000 completed runs retained", rss_kb(srv.p.pid)))
        finally:
            srv.stop()

    date = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    lines = ["Measured %s on %s (%d cores), wrk -t2 -c32 -d%ds --latency, median of %d runs; "
             "total %.0f s." % (date, socket.gethostname(), os.cpu_count(), args.duration,
                               args.repeat, time.time() - t_start), "",
             "| workload | req/s | p50 ms | p99 ms | ratio to ceiling | vs reference | note |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, r, ceil_rps, ref, note in rows:
        ratio = r["rps"] / ceil_rps if ceil_rps else 0
        vs = "%.1fx" % (r["rps"] / ref[0]) if ref else ""
        bad = " (non-2xx: %d)" % r["non2xx"] if r["non2xx"] else ""
        lines.append("| %s | %.0f | %.2f | %.2f | %.0f %% | %s | %s%s |" %
                     (name, r["rps"], r["p50"], r["p99"], 100 * ratio, vs, note, bad))
    lines += ["", "| memory | value |", "| --- | ---: |"]
    for name, kb in mem:
        lines.append("| %s | %.1f MB |" % (name, kb / 1024))
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    with open(os.path.join(HERE, "results-latest.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
