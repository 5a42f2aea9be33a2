"""Shared helpers for runtime tests: run the real `pyoco` binary on a loopback
port and talk real HTTP to it. Standard library only (Debian's python3).

    from pyoco_test import Server, run_tests, check

    def test_health():
        with Server(plugins={"rest": {}}) as srv:
            st, body = srv.json("GET", "/health")
            check(st == 200, body)

    if __name__ == "__main__":
        run_tests(globals())
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

BIN = os.environ.get("PYOCO_BIN", "build/core/pyoco")
PLUGIN_DIR = os.environ.get("PYOCO_PLUGIN_DIR", "build/plugins")
SOURCE_DIR = os.environ.get("PYOCO_SOURCE_DIR", ".")
BUILD_DIR = os.environ.get("PYOCO_BUILD_DIR", "build")

_LISTEN_RE = re.compile(r"listening on http://([0-9.]+):(\d+)")


class CheckFailed(AssertionError):
    pass


def check(cond, *what):
    """Assert with context; the message shows what was being compared."""
    if not cond:
        raise CheckFailed(" ".join(repr(w) if not isinstance(w, str) else w for w in what))


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Tiny YAML writer for test configs (maps, lists, scalars)."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
            elif isinstance(v, dict):
                out.append(f"{pad}{k}: {{}}\n")
            elif isinstance(v, list):
                out.append(f"{pad}{k}: []\n")
            else:
                out.append(f"{pad}{k}: {_yaml_scalar(v)}\n")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                body = to_yaml(v, indent + 1).lstrip()
                out.append(f"{pad}- {body}")
            else:
                out.append(f"{pad}- {_yaml_scalar(v) if not isinstance(v, (dict, list)) else json.dumps(v)}\n")
    else:
        out.append(pad + _yaml_scalar(obj) + "\n")
    return "".join(out)


class Server:
    """The real binary, started with --port 0 on 127.0.0.1.

    plugins: dict name -> block (dict), written under `plugins:`.
    config: extra top-level config (dict) merged in, or config_text: a
    whole pyoco.yaml written as is. env: extra environment variables.
    workdir: the server's cwd (default: a fresh temp dir, kept as .workdir).
    """

    def __init__(self, plugins=None, config=None, config_text=None, env=None,
                 workdir=None, args=(), start_timeout=20.0):
        self.workdir = workdir or tempfile.mkdtemp(prefix="pyoco-test-")
        self.config_path = os.path.join(self.workdir, "pyoco.yaml")
        if config_text is None:
            cfg = {"plugin_path": [os.path.abspath(PLUGIN_DIR)]}
            cfg.update(config or {})
            if plugins is not None:
                cfg["plugins"] = plugins
            config_text = to_yaml(cfg)
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.env = dict(os.environ)
        self.env.update({k: str(v) for k, v in (env or {}).items()})
        self.args = list(args)
        self.start_timeout = start_timeout
        self.proc = None
        self.log_lines = []
        self._log_lock = threading.Lock()
        self.host = "127.0.0.1"
        self.port = None

    # -- process control --
    def start(self):
        cmd = [BIN, "server", "start", "--config", self.config_path,
               "--host", "127.0.0.1", "--port", "0"] + self.args
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=self.env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        ready = threading.Event()

        def pump():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._log_lock:
                    self.log_lines.append(line)
                if os.environ.get("PYOCO_TEST_VERBOSE"):
                    sys.stderr.write("  server| " + line + "\n")
                m = _LISTEN_RE.search(line)
                if m and not ready.is_set():
                    self.port = int(m.group(2))
                    ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not ready.wait(self.start_timeout) or self.port is None:
            self.kill()
            raise CheckFailed("server did not start:\n" + self.log())
        return self

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Signal the server and wait; returns its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise CheckFailed("server did not exit after signal %d:\n%s" % (sig, self.log()))
        self._pump.join(5)
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc:
            self._pump.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            rc = self.stop()
            if exc[0] is None:
                check(rc == 0, "server exit status", rc, self.log())

    def log(self):
        with self._log_lock:
            return "\n".join(self.log_lines)

    def wait_log(self, pattern, timeout=10.0):
        """Wait until a log line matches the regex; returns the match."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._log_lock:
                for line in self.log_lines:
                    m = rx.search(line)
                    if m:
                        return m
            time.sleep(0.02)
        raise CheckFailed("no log line matching %r:\n%s" % (pattern, self.log()))

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    # -- HTTP --
    def request(self, method, path, body=None, headers=None, timeout=10.0):
        """Raw request: body is bytes/str/None. Returns (status, headers, bytes)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            if isinstance(body, str):
                body = body.encode()
            hdrs = dict(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def json(self, method, path, obj=None, headers=None, timeout=10.0):
        """JSON request/answer. Returns (status, decoded body or raw text)."""
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        body = None if obj is None else json.dumps(obj)
        st, h, data = self.request(method, path, body, hdrs, timeout)
        try:
            return st, json.loads(data) if data else None
        except ValueError:
            return st, data.decode("utf-8", "replace")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_tests(namespace, only=None):
    """Run every test_* function in namespace; print 'N passed, N failed'."""
    names = sorted(n for n, f in namespace.items() if n.startswith("test_") and callable(f))
    if only or len(sys.argv) > 1:
        wanted = set(only or sys.argv[1:])
        names = [n for n in names if n in wanted]
    passed = failed = 0
    for name in names:
        t0 = time.time()
        try:
            namespace[name]()
            passed += 1
            print("PASS %s (%.2fs)" % (name, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s (%.2fs)" % (name, time.time() - t0), flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    if passed + failed == 0:
        sys.exit(2)
    sys.exit(1 if failed else 0)
