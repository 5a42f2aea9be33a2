"""Helpers for the webhook runtime tests: a recording HTTP receiver (python's
http.server in a thread, answering from a script), raw-socket misbehaving
receivers, and run drivers over the rest plugin. Standard library only."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import socket
import socketserver
import threading
import time

from pyoco_test import PLUGIN_DIR, Server, check


class Receiver:
    """Records every request (path, lower-cased headers, body, arrival time)
    and answers with the next step of `script` (then with `default`).

    A step is a dict: status (int), headers (dict), body (bytes),
    sleep (seconds before answering), body_size (bytes of filler)."""

    def __init__(self, script=None, default=None, port=0):
        self.script = list(script or [])
        self.default = default or {"status": 200}
        self.requests = []
        self.lock = threading.Lock()
        self.port = port
        self.server = None

    def start(self):
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with rec.lock:
                    rec.requests.append({
                        "time": time.time(), "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body})
                    step = rec.script.pop(0) if rec.script else rec.default
                if step.get("sleep"):
                    time.sleep(step["sleep"])
                status = step.get("status", 200)
                payload = step.get("body", b"ok")
                size = step.get("body_size")
                self.send_response(status)
                for k, v in step.get("headers", {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(size if size else len(payload)))
                self.end_headers()
                try:
                    if size:
                        chunk = b"x" * 65536
                        left = size
                        while left > 0:
                            self.wfile.write(chunk[:min(left, len(chunk))])
                            left -= len(chunk)
                    else:
                        self.wfile.write(payload)
                except OSError:
                    pass  # the client stopped reading: expected for huge bodies

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def count(self, path=None):
        with self.lock:
            return len([r for r in self.requests if path is None or r["path"] == path])

    def get(self, path=None):
        with self.lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def wait(self, n, path=None, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count(path) >= n:
                return self.get(path)
            time.sleep(0.02)
        raise AssertionError("receiver got %d of %d requests on %s" % (self.count(path), n, path))


class RawReceiver:
    """A TCP listener that misbehaves: mode "hang" accepts and never answers,
    mode "garbage" answers with bytes that are not HTTP and closes."""

    def __init__(self, mode):
        self.mode = mode
        self.conns = []
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "garbage":
                try:
                    c.recv(65536)
                    c.sendall(b"SSH-2.0-OpenSSH_9.2\r\nthis is not http\r\n\r\n")
                finally:
                    c.close()
            else:
                self.conns.append(c)

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            c.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def plugin_available(name):
    return os.path.exists(os.path.join(PLUGIN_DIR, name + ".so"))


def webhook_server(endpoints=None, env=None, extra_plugins=None, block=None, **kw):
    plugins = {"rest": {}}
    plugins.update(extra_plugins or {})
    wh = dict(block or {})
    if endpoints is not None:
        wh["endpoints"] = endpoints
    plugins["webhook"] = wh
    return Server(plugins=plugins, env=env, **kw)


# ---- driving runs over the rest API ----

def submit(srv, flow="demo", params=None):
    st, body = srv.json("POST", "/runs", {"flow_name": flow, "params": params or {"x": 1}})
    check(st == 200, "submit", st, body)
    return body["run_id"]


def heartbeat(srv, run_id, status, task_states=None, task_records=None, logs=None):
    st, body = srv.json("POST", "/runs/%s/heartbeat" % run_id, {
        "task_states": task_states or {"t1": "RUNNING"},
        "task_records": task_records or {},
        "logs": logs or [],
        "run_status": status})
    check(st == 200, "heartbeat", st, body)
    return body


def start_run(srv, flow="demo"):
    """Submit, poll, first heartbeat: a RUNNING run."""
    rid = submit(srv, flow)
    st, body = srv.json("POST", "/workers/poll", {"worker_id": "w1"})
    check(st == 200 and body["run_id"] == rid, "poll", st, body)
    heartbeat(srv, rid, "RUNNING",
              task_records={"t1": {"state": "RUNNING", "started_at": 1000.0}},
              logs=[{"seq": 0, "task": "t1", "stream": "stdout", "text": "hi",
                     "timestamp": 1000.1}])
    return rid


def finish_run(srv, status, flow="demo"):
    """A run driven to `status` (COMPLETED, FAILED or CANCELLED)."""
    rid = start_run(srv, flow)
    if status == "CANCELLED":
        st, body = srv.json("POST", "/runs/%s/cancel" % rid)
        check(st == 200, "cancel", st, body)
        heartbeat(srv, rid, "CANCELLED", task_states={"t1": "CANCELLED"})
        return rid
    state = "SUCCEEDED" if status == "COMPLETED" else "FAILED"
    rec = {"state": state, "started_at": 1000.0, "ended_at": 1000.25,
           "duration_ms": 250.0, "inputs": {"x": 1},
           "output": 42 if state == "SUCCEEDED" else None,
           "error": None if state == "SUCCEEDED" else "boom"}
    heartbeat(srv, rid, status, task_states={"t1": state}, task_records={"t1": rec})
    return rid


# ---- verification ----

def verify_signature(req, key):
    """Standard Webhooks v1, computed independently with hmac/hashlib."""
    h = req["headers"]
    msg_id, ts = h["webhook-id"], h["webhook-timestamp"]
    signed = msg_id.encode() + b"." + ts.encode() + b"." + req["body"]
    expect = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    sigs = [s.split(",", 1)[1] for s in h["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expect, s) for s in sigs)


def whsec_key(secret):
    return base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()


def expected_payload(srv, run_id, event):
    st, run = srv.json("GET", "/runs/%s" % run_id)
    check(st == 200, "GET run", st, run)
    return {"event": event, "run_id": run["run_id"], "flow_name": run["flow_name"],
            "status": run["status"], "started_at": run["start_time"],
            "ended_at": run["end_time"], "duration_ms": run["run_duration_ms"],
            "tasks": run["task_records"], "metadata": run["metadata"]}
