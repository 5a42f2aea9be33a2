"""`pyoco runs list|show|cancel|logs`: the real client binary against the real
server (rest plugin) over HTTP on 127.0.0.1, and against fake servers
(python http.server / raw sockets) that answer errors or garbage.

Each test checks stdout and the exit code scripts rely on: 0 ok, 1 server
error or bad answer, 2 usage, 3 unreachable, 4 run not found, 5 a followed run
ended FAILED or CANCELLED."""
import http.server
import json
import os
import queue
import socket
import subprocess
import threading
import time

from pyoco_test import BIN, Server, check, free_port, run_tests

RUN_TIMEOUT = 60  # a guard against a hung client, not a timing check


# ---- helpers ----

def cli(args, server=None, env=None, timeout=RUN_TIMEOUT):
    """Run `pyoco runs ARGS [--server URL]`; returns (code, stdout, stderr)."""
    cmd = [BIN, "runs"] + list(args)
    if server is not None:
        cmd += ["--server", server]
    e = dict(os.environ)
    e.pop("PYOCO_SERVER", None)
    e.update(env or {})
    p = subprocess.run(cmd, env=e, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def ok(srv, method, path, obj=None):
    st, body = srv.json(method, path, obj)
    check(st == 200, method, path, "->", st, body)
    return body


def submit(srv, flow, params=None):
    return ok(srv, "POST", "/runs", {"flow_name": flow,
                                     "params": params or {}})["run_id"]


def take(srv, run_id, worker="w1"):
    got = ok(srv, "POST", "/workers/poll", {"worker_id": worker})
    check(got["run_id"] == run_id, "polled", got, "expected", run_id)


def log(seq, task, text, stream="stdout"):
    return {"seq": seq, "task": task, "stream": stream, "text": text,
            "timestamp": 1796315000.0 + seq}


def beat(srv, run_id, status, states, records=None, logs=None):
    req = {"task_states": states, "run_status": status}
    if records is not None:
        req["task_records"] = records
    if logs is not None:
        req["logs"] = logs
    return ok(srv, "POST", "/runs/%s/heartbeat" % run_id, req)


def rest_server():
    return Server(plugins={"rest": {}})


def fleet(srv):
    """Three runs: `alpha` COMPLETED (t1 with logs), `beta` FAILED (t1 ok,
    t2 failed with an error), `alpha` PENDING. Returns their ids."""
    done = submit(srv, "alpha", {"x": 1})
    take(srv, done)
    beat(srv, done, "RUNNING", {"t1": "RUNNING"},
         logs=[log(0, "t1", "hello\n"), log(1, "t1", "world")])
    beat(srv, done, "COMPLETED", {"t1": "SUCCEEDED"},
         records={"t1": {"state": "SUCCEEDED", "started_at": 1000.0,
                         "ended_at": 1000.2, "duration_ms": 200.0}},
         logs=[log(2, "t1", "warn", "stderr")])
    failed = submit(srv, "beta")
    take(srv, failed)
    beat(srv, failed, "RUNNING", {"t1": "RUNNING"})
    beat(srv, failed, "FAILED", {"t1": "SUCCEEDED", "t2": "FAILED"},
         records={"t1": {"state": "SUCCEEDED", "duration_ms": 1500.0,
                         "ended_at": 1001.5},
                  "t2": {"state": "FAILED", "duration_ms": 65000.0,
                         "ended_at": 1066.5,
                         "error": "ValueError: bad input\nsecond line"}},
         logs=[log(0, "t2", "boom", "stderr")])
    pending = submit(srv, "alpha")
    return done, failed, pending


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def duration(ms):
    """docs/cli.md's duration format."""
    if ms is None:
        return "-"
    if ms < 1000:
        return "%.0fms" % ms
    if ms < 60000:
        return "%.1fs" % (ms / 1000)
    if ms < 3600000:
        return "%dm%02ds" % divmod(int(ms / 1000), 60)
    return "%dh%02dm" % divmod(int(ms / 60000), 60)


def table(out):
    """The runs table as {run_id: [flow, status, started, duration]}."""
    lines = out.rstrip("\n").split("\n")
    check(lines[0].split() == ["RUN", "ID", "FLOW", "STATUS", "STARTED",
                               "DURATION"], lines[0])
    rows = {}
    for line in lines[1:]:
        cells = line.split()
        check(len(cells) == 5, "row", line)
        rows[cells[0]] = cells[1:]
    return rows


# ---- runs list ----

def test_list_table_and_json():
    with rest_server() as srv:
        done, failed, pending = fleet(srv)
        code, out, err = cli(["list"], srv.url)
        check(code == 0, code, out, err)
        rows = table(out)
        check(set(rows) == {done, failed, pending}, rows)
        check(rows[done][:2] == ["alpha", "COMPLETED"], rows[done])
        check(rows[failed][:2] == ["beta", "FAILED"], rows[failed])
        check(rows[pending][:2] == ["alpha", "PENDING"], rows[pending])
        for rid in (done, failed, pending):
            run = ok(srv, "GET", "/runs/" + rid)
            check(rows[rid][2] == iso(run["start_time"]), rows[rid], run)
            check(rows[rid][3] == duration(run["run_duration_ms"]), rows[rid],
                  run["run_duration_ms"])
        check(rows[pending][3] == "-", "a pending run has no duration",
              rows[pending])
        # newest first, as the server sends them
        order = [line.split()[0] for line in out.strip().split("\n")[1:]]
        server_order = [r["run_id"] for r in ok(srv, "GET", "/runs")]
        check(order == server_order, order, server_order)

        code, out, err = cli(["list", "--json"], srv.url)
        check(code == 0, code, err)
        check(json.loads(out) == ok(srv, "GET", "/runs"), out)


def test_list_filters():
    with rest_server() as srv:
        done, failed, pending = fleet(srv)
        code, out, _ = cli(["list", "--status", "COMPLETED"], srv.url)
        check(code == 0 and set(table(out)) == {done}, code, out)
        code, out, _ = cli(["list", "--status=failed"], srv.url)
        check(code == 0 and set(table(out)) == {failed}, "lower case", out)
        code, out, _ = cli(["list", "--flow", "alpha"], srv.url)
        check(code == 0 and set(table(out)) == {done, pending}, out)
        code, out, _ = cli(["list", "--flow", "alpha", "--status",
                            "PENDING"], srv.url)
        check(code == 0 and set(table(out)) == {pending}, out)
        code, out, _ = cli(["list", "--limit", "1"], srv.url)
        check(code == 0 and len(table(out)) == 1, out)
        code, out, _ = cli(["list", "--flow", "nosuch"], srv.url)
        check(code == 0 and out == "no runs\n", repr(out))
        code, out, _ = cli(["list", "--json", "--status", "FAILED",
                            "--limit", "5"], srv.url)
        check(code == 0, code)
        check(json.loads(out) == ok(srv, "GET", "/runs?status=FAILED&limit=5"),
              out)
        code, out, _ = cli(["list", "--json", "--flow", "nosuch"], srv.url)
        check(code == 0 and json.loads(out) == [], out)


def test_server_from_environment():
    with rest_server() as srv:
        done, _, _ = fleet(srv)
        code, out, err = cli(["show", done], env={"PYOCO_SERVER": srv.url})
        check(code == 0 and done in out, code, out, err)
        # --server wins over the environment
        code, out, err = cli(["show", done], srv.url,
                             env={"PYOCO_SERVER": "http://127.0.0.1:%d"
                                  % free_port()})
        check(code == 0, code, err)


# ---- runs show ----

def test_show_text_and_json():
    with rest_server() as srv:
        done, failed, pending = fleet(srv)
        code, out, err = cli(["show", done], srv.url)
        check(code == 0, code, out, err)
        lines = out.split("\n")
        check(("Run:       " + done) in lines, out)
        check("Flow:      alpha" in lines and "Status:    COMPLETED" in lines,
              out)
        check('Params:    {"x":1}' in lines, out)
        check("Tasks:     1" in lines, out)
        check(any(l.split() == ["t1", "SUCCEEDED", "200ms"] for l in lines),
              out)
        check("  worker_id: w1" in lines, "metadata", out)
        check("Logs:      3 entries" in lines, out)
        check(not any(l.startswith("Ended:     -") for l in lines), out)

        code, out, err = cli(["show", failed], srv.url)
        check(code == 0, code, err)
        lines = out.split("\n")
        check(any(l.split() == ["t1", "SUCCEEDED", "1.5s"] for l in lines),
              out)
        check(any(l.split() == ["t2", "FAILED", "1m05s"] for l in lines), out)
        check("      error: ValueError: bad input" in lines, out)
        check("second line" not in out, "only the error's first line", out)

        code, out, err = cli(["show", pending], srv.url)
        check(code == 0, code, err)
        check("Ended:     -" in out and "Duration:  -" in out, out)
        check("Tasks:     0" in out and "Metadata:  -" in out, out)

        for rid in (done, failed, pending):
            code, out, err = cli(["show", rid, "--json"], srv.url)
            check(code == 0, code, err)
            check(json.loads(out) == ok(srv, "GET", "/runs/" + rid), out)


# ---- runs cancel ----

def test_cancel():
    with rest_server() as srv:
        done, _, pending = fleet(srv)
        code, out, err = cli(["cancel", pending], srv.url)
        check(code == 0, code, err)
        check(out == "run %s: CANCELLING\n" % pending, repr(out))
        check(ok(srv, "GET", "/runs/" + pending)["status"] == "CANCELLING")

        # a run that already ended is left as it was, and we say so
        code, out, err = cli(["cancel", done], srv.url)
        check(code == 0, code, err)
        check(out == "run %s: COMPLETED (already ended; not cancelled)\n"
              % done, repr(out))
        check(ok(srv, "GET", "/runs/" + done)["status"] == "COMPLETED")

        running = submit(srv, "gamma")
        take(srv, running)
        beat(srv, running, "RUNNING", {"t1": "RUNNING"})
        code, out, err = cli(["cancel", "--json", running], srv.url)
        check(code == 0, code, err)
        check(json.loads(out) == {"status": "CANCELLING"}, out)
        check(beat(srv, running, "RUNNING", {"t1": "RUNNING"})
              == {"cancel_requested": True})


# ---- runs logs ----

def test_logs_filters_and_json():
    with rest_server() as srv:
        rid = submit(srv, "logs")
        take(srv, rid)
        beat(srv, rid, "RUNNING", {"a": "RUNNING", "b": "RUNNING"},
             logs=[log(0, "a", "a1\n"), log(1, "b", "b1"),
                   log(2, "a", "a2", "stderr"), log(3, "b", "b2"),
                   log(4, "a", "multi\nline")])
        code, out, err = cli(["logs", rid], srv.url)
        check(code == 0, code, err)
        check(out == "[a] stdout: a1\n[b] stdout: b1\n[a] stderr: a2\n"
              "[b] stdout: b2\n[a] stdout: multi\nline\n", repr(out))
        code, out, _ = cli(["logs", rid, "--task", "b"], srv.url)
        check(out == "[b] stdout: b1\n[b] stdout: b2\n", repr(out))
        code, out, _ = cli(["logs", rid, "--tail", "2"], srv.url)
        check(out == "[b] stdout: b2\n[a] stdout: multi\nline\n", repr(out))
        code, out, _ = cli(["logs", rid, "--task=a", "--tail=1"], srv.url)
        check(code == 0 and out == "[a] stdout: multi\nline\n", repr(out))
        code, out, _ = cli(["logs", rid, "--tail", "0"], srv.url)
        check(out.count("\n") == 6, "tail 0 is every entry", repr(out))
        code, out, _ = cli(["logs", rid, "--task", "nosuch"], srv.url)
        check(code == 0 and out == "", repr(out))
        code, out, err = cli(["logs", rid, "--json", "--task", "a", "--tail",
                              "2"], srv.url)
        check(code == 0, code, err)
        check(json.loads(out) == ok(srv, "GET", "/runs/%s/logs?task=a&tail=2"
                                    % rid), out)
        # a run still RUNNING: without --follow, logs exits 0 at once
        check(json.loads(out)["run_status"] == "RUNNING", out)


class Follower:
    """`pyoco runs logs --follow` in the background; its lines on a queue."""

    def __init__(self, args, server):
        self.proc = subprocess.Popen([BIN, "runs", "logs"] + args +
                                     ["--follow", "--server", server],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        self.lines = queue.Queue()

        def pump():
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
            self.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next(self):
        line = self.lines.get(timeout=RUN_TIMEOUT)
        if line is None:
            check(False, "follower ended early:", self.proc.wait(),
                  self.proc.stderr.read())
        return line

    def finish(self):
        code = self.proc.wait(RUN_TIMEOUT)
        rest = []
        while True:
            line = self.lines.get(timeout=RUN_TIMEOUT)
            if line is None:
                break
            rest.append(line)
        return code, rest, self.proc.stderr.read()


def test_logs_follow_until_completed():
    with rest_server() as srv:
        rid = submit(srv, "follow")
        take(srv, rid)
        beat(srv, rid, "RUNNING", {"t1": "RUNNING"},
             logs=[log(0, "t1", "first")])
        f = Follower([rid], srv.url)
        check(f.next() == "[t1] stdout: first")
        # lines that arrive while the client runs are printed once each
        beat(srv, rid, "RUNNING", {"t1": "RUNNING"},
             logs=[log(1, "t1", "second"), log(2, "t1", "oops", "stderr")])
        check(f.next() == "[t1] stdout: second")
        check(f.next() == "[t1] stderr: oops")
        beat(srv, rid, "RUNNING", {"t1": "RUNNING", "t2": "RUNNING"},
             logs=[log(3, "t2", "third")])
        check(f.next() == "[t2] stdout: third")
        beat(srv, rid, "COMPLETED", {"t1": "SUCCEEDED", "t2": "SUCCEEDED"},
             logs=[log(4, "t2", "last")])
        code, rest, err = f.finish()
        check(code == 0, "exit code", code, err)
        check(rest == ["[t2] stdout: last"], rest)


def test_logs_follow_failed_and_cancelled_exit_5():
    with rest_server() as srv:
        rid = submit(srv, "follow")
        take(srv, rid)
        beat(srv, rid, "RUNNING", {"t1": "RUNNING"},
             logs=[log(0, "t1", "working")])
        f = Follower([rid], srv.url)
        check(f.next() == "[t1] stdout: working")
        beat(srv, rid, "FAILED", {"t1": "FAILED"},
             logs=[log(1, "t1", "Traceback", "stderr")])
        code, rest, err = f.finish()
        check(code == 5, "FAILED -> 5", code, err)
        check(rest == ["[t1] stderr: Traceback"], rest)

        rid = submit(srv, "follow")
        take(srv, rid)
        beat(srv, rid, "RUNNING", {"t1": "RUNNING"},
             logs=[log(0, "t1", "a")])
        f = Follower([rid], srv.url)
        check(f.next() == "[t1] stdout: a")
        code, out, err = cli(["cancel", rid], srv.url)
        check(code == 0 and "CANCELLING" in out, code, out, err)
        check(beat(srv, rid, "RUNNING", {"t1": "RUNNING"},
                   logs=[log(1, "t1", "b")]) == {"cancel_requested": True})
        check(f.next() == "[t1] stdout: b", "CANCELLING is not terminal")
        beat(srv, rid, "CANCELLED", {"t1": "CANCELLED"})
        code, rest, err = f.finish()
        check(code == 5, "CANCELLED -> 5", code, err)
        check(rest == [], rest)

        # following a run that has already ended prints and exits at once
        code, out, err = cli(["logs", rid, "--follow"], srv.url)
        check(code == 5 and out == "[t1] stdout: a\n[t1] stdout: b\n",
              code, repr(out), err)


def test_logs_follow_task_tail_json():
    with rest_server() as srv:
        rid = submit(srv, "follow")
        take(srv, rid)
        beat(srv, rid, "RUNNING", {"a": "RUNNING", "b": "RUNNING"},
             logs=[log(0, "a", "a0"), log(1, "b", "b0"), log(2, "a", "a1"),
                   log(3, "a", "a2")])
        f = Follower([rid, "--task", "a", "--tail", "2"], srv.url)
        check(f.next() == "[a] stdout: a1")
        check(f.next() == "[a] stdout: a2")
        beat(srv, rid, "RUNNING", {"a": "RUNNING"},
             logs=[log(4, "b", "b1"), log(5, "a", "a3")])
        check(f.next() == "[a] stdout: a3", "only task a")
        beat(srv, rid, "COMPLETED", {"a": "SUCCEEDED", "b": "SUCCEEDED"})
        code, rest, err = f.finish()
        check(code == 0 and rest == [], code, rest, err)

        # --json --follow: one entry object per line
        code, out, err = cli(["logs", rid, "--follow", "--json", "--task",
                              "b"], srv.url)
        check(code == 0, code, err)
        got = [json.loads(l) for l in out.strip().split("\n")]
        want = ok(srv, "GET", "/runs/%s/logs?task=b" % rid)["logs"]
        check(got == want, got, want)


# ---- failures ----

def test_unknown_run_is_4():
    with rest_server() as srv:
        for args in (["show", "no-such-run"], ["cancel", "no-such-run"],
                     ["logs", "no-such-run"],
                     ["logs", "no-such-run", "--follow"],
                     ["show", "a/b?c=d e"]):
            code, out, err = cli(args, srv.url)
            check(code == 4, args, code, out, err)
            check(out == "" and "not found" in err, args, out, err)
        # "--" ends the flags: a run id may start with "-"
        code, out, err = cli(["show", "--server", srv.url, "--", "-x"])
        check(code == 4 and "'-x' not found" in err, code, err)
        check(ok(srv, "GET", "/runs") == [], "nothing was created")


def test_unreachable_is_3():
    port = free_port()  # nothing listens there
    url = "http://127.0.0.1:%d" % port
    for args in (["list"], ["show", "x"], ["cancel", "x"],
                 ["logs", "x", "--follow"]):
        code, out, err = cli(args, url)
        check(code == 3, args, code, out, err)
        check(url in err and "cannot reach" in err, err)
    # the environment's default server is used when --server is absent
    code, _, err = cli(["list"], env={"PYOCO_SERVER": url})
    check(code == 3 and url in err, code, err)

    # a server that accepts but never answers: the --timeout applies
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    try:
        url = "http://127.0.0.1:%d" % lsock.getsockname()[1]
        code, out, err = cli(["list", "--timeout", "0.5"], url)
        check(code == 3, "timeout", code, out, err)
        check(url in err, err)
    finally:
        lsock.close()


def test_bad_flags_are_2():
    url = "http://127.0.0.1:%d" % free_port()
    cases = [
        ["list", "--bogus"],
        ["list", "--limit", "abc"],
        ["list", "--limit", "0"],
        ["list", "--limit", "201"],
        ["list", "--limit"],
        ["list", "--limit="],
        ["list", "--status", "DONE"],
        ["list", "--flow", ""],
        ["list", "--follow"],
        ["list", "extra"],
        ["list", "--json=yes"],
        ["list", "--timeout", "0"],
        ["list", "--timeout", "-3"],
        ["list", "--timeout", "soon"],
        ["list", "--server", "ftp://127.0.0.1/"],
        ["list", "--server", "not a url"],
        ["show"],
        ["show", "a", "b"],
        ["show", ""],
        ["show", "a", "--status", "FAILED"],
        ["cancel", "a", "--tail", "2"],
        ["logs", "a", "--tail", "-1"],
        ["logs", "a", "--tail", "x"],
        ["logs", "a", "-f"],
        ["logs"],
        ["remove", "a"],
        [],
    ]
    for args in cases:
        code, out, err = cli(args, url if args and "--server" not in args
                             else None)
        check(code == 2, args, "->", code, out, err)
        check(out == "" and ("usage:" in err or "--server" in err), args,
              out, err)
    code, out, err = cli(["--help"])
    check(code == 0 and "pyoco runs logs" in out, code, out, err)
    code, out, err = cli(["logs", "--help"])
    check(code == 0 and "--follow" in out, code, out, err)
    # the top-level usage mentions the runs commands
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True,
                       timeout=RUN_TIMEOUT)
    check(p.returncode == 0 and "pyoco runs" in p.stdout, p.stdout)


class Fake:
    """A fake Kanban server: routes map a path (with query) to (status,
    headers, body bytes); anything else is 404 {"detail": "Not Found"}."""

    def __init__(self, routes):
        outer = self
        self.routes = routes
        self.seen = []

        class H(http.server.BaseHTTPRequestHandler):
            def answer(self):
                outer.seen.append((self.command, self.path))
                status, headers, body = outer.routes.get(
                    self.path, (404, {}, b'{"detail": "Not Found"}'))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up on a huge answer

            do_GET = do_POST = answer

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def j(obj):
    return json.dumps(obj).encode()


RUN = {"run_id": "r1", "flow_name": "f", "params": {}, "status": "RUNNING",
       "start_time": 1796315000.5, "end_time": None, "tasks": {},
       "task_records": {}, "logs": [], "metadata": {},
       "run_duration_ms": None, "task_summary": {}}


def test_server_error_answers_are_1():
    fake = Fake({
        "/runs": (500, {}, j({"detail": "database on fire"})),
        "/runs?limit=5": (422, {}, j({"detail": [
            {"loc": ["query", "limit"], "msg": "too big", "type": "x"}]})),
        "/runs/r1": (503, {}, b"<html>maintenance</html>"),
        "/runs/r1/cancel": (400, {}, b""),
        "/runs/r1/logs": (302, {"Location": "/elsewhere"}, b""),
    })
    try:
        code, out, err = cli(["list"], fake.url)
        check(code == 1 and "500" in err and "database on fire" in err,
              code, err)
        code, out, err = cli(["list", "--limit", "5"], fake.url)
        check(code == 1 and "query.limit: too big" in err, code, err)
        code, out, err = cli(["show", "r1"], fake.url)
        check(code == 1 and "503" in err and "maintenance" in err, code, err)
        code, out, err = cli(["cancel", "r1"], fake.url)
        check(code == 1 and "400" in err, code, err)
        check(("POST", "/runs/r1/cancel") in fake.seen, fake.seen)
        code, out, err = cli(["logs", "r1"], fake.url)
        check(code == 1 and "302" in err, code, err)
        # 404 on a list is a server error, not "run not found"
        code, out, err = cli(["list", "--status", "FAILED"], fake.url)
        check(code == 1 and "404" in err, code, err)
    finally:
        fake.close()


def test_garbage_answers_are_1_without_crash():
    cases = [
        (["list"], "/runs", (200, {}, b"hello, not json")),
        (["list"], "/runs", (200, {}, b"")),
        (["list"], "/runs", (200, {}, j({"runs": []}))),
        (["list"], "/runs", (200, {}, j([1, 2, 3]))),
        (["list"], "/runs", (200, {}, j([dict(RUN, status=7)]))),
        (["list"], "/runs", (200, {}, j([dict(RUN, start_time="noon")]))),
        (["list"], "/runs", (200, {}, j([{"status": "RUNNING"}]))),
        (["list", "--json"], "/runs", (200, {}, b"[1, 2,")),
        (["show", "r1"], "/runs/r1", (200, {}, j([RUN]))),
        (["show", "r1"], "/runs/r1", (200, {}, j(dict(RUN, tasks=[])))),
        (["show", "r1"], "/runs/r1",
         (200, {}, j(dict(RUN, tasks={"t": 1})))),
        (["show", "r1"], "/runs/r1",
         (200, {}, j(dict(RUN, task_records={"t": {"duration_ms": "x"}})))),
        (["show", "r1", "--json"], "/runs/r1", (200, {}, b"{" * 100000)),
        (["show", "r1"], "/runs/r1", (200, {}, b"[" * 100000 + b"]" * 100000)),
        (["show", "r1"], "/runs/r1", (200, {}, bytes(range(256)) * 4096)),
        (["cancel", "r1"], "/runs/r1/cancel", (200, {}, j({"status": None}))),
        (["cancel", "r1"], "/runs/r1/cancel", (200, {}, b"CANCELLING")),
        (["logs", "r1"], "/runs/r1/logs", (200, {}, j({"logs": "lots"}))),
        (["logs", "r1"], "/runs/r1/logs",
         (200, {}, j({"run_status": "RUNNING", "logs": [5]}))),
        (["logs", "r1"], "/runs/r1/logs",
         (200, {}, j({"run_status": "RUNNING",
                      "logs": [{"task": "t", "text": {"a": 1}}]}))),
        (["logs", "r1", "--follow"], "/runs/r1/logs",
         (200, {}, j({"logs": []}))),
        (["logs", "r1", "--follow"], "/runs/r1/logs",
         (200, {}, j({"run_status": ["RUNNING"], "logs": []}))),
        # an answer declaring 1 TB is refused before it is read
        (["list"], "/runs", (200, {"Content-Length": str(10 ** 12)}, b"[")),
    ]
    fake = Fake({})
    try:
        for args, path, answer in cases:
            fake.routes = {path: answer}
            code, out, err = cli(args, fake.url)
            check(code == 1, args, answer[2][:60], "->", code, out, err[:500])
            check("bad answer" in err, args, err[:500])
            check(out == "", "nothing printed from a bad answer", args, out[:200])
    finally:
        fake.close()


def test_non_http_garbage_is_1():
    """A peer that speaks no HTTP at all, or hangs up mid-answer."""
    replies = [b"\x00\xff garbage that is not HTTP\r\n\r\n" * 100,
               b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[1,2",
               b""]
    for reply in replies:
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)

        def serve():
            try:
                conn, _ = lsock.accept()
                conn.recv(65536)
                conn.sendall(reply)
                conn.close()
            except OSError:
                pass

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            code, out, err = cli(["list"], "http://127.0.0.1:%d"
                                 % lsock.getsockname()[1])
            check(code == 1, reply[:30], code, out, err)
            check("bad answer" in err, err)
        finally:
            lsock.close()
            t.join(10)


def test_fake_server_good_answers():
    """Another server speaking the API (fields in other orders, extra
    fields, no run_duration_ms): the client reads only what it needs."""
    run = dict(RUN, status="COMPLETED", end_time=1796315062.5,
               extra={"new": True})
    del run["run_duration_ms"]
    fake = Fake({"/runs": (200, {}, j([run])),
                 "/runs/r1": (200, {}, j(run)),
                 "/kanban/runs/r%2F2": (200, {}, j(dict(run, run_id="r/2")))})
    try:
        code, out, err = cli(["list"], fake.url)
        check(code == 0, code, err)
        check(table(out)["r1"] == ["f", "COMPLETED", "2026-12-03T16:23:20Z",
                                   "1m02s"], out)
        code, out, err = cli(["show", "r1", "--json"], fake.url)
        check(code == 0 and json.loads(out) == run, out, err)
        # a server under a path prefix (trailing slash dropped); the run id
        # is escaped into one path segment
        code, out, err = cli(["show", "r/2"], fake.url + "/kanban/")
        check(code == 0 and "Run:       r/2\n" in out, code, out, err)
        check(("GET", "/kanban/runs/r%2F2") in fake.seen, fake.seen)
    finally:
        fake.close()


if __name__ == "__main__":
    run_tests(globals())
