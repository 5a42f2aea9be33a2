"""Load and soak against the real binary (rest + prometheus when built).

test_load_soak: 500 concurrent keep-alive connections, held open at once,
run a mixed workload (submit, poll, heartbeats with unique log lines, GETs)
for LOAD_SECONDS (default 20, as two rounds of 10). After each round: every
heartbeat answered 200 must have its log line in GET /runs/{id}/logs; the
server still answers; all runs are finished and retention evicts them. The
server's RSS (VmRSS from /proc/PID/status) after round 2 must be near the
baseline, the RSS after round 1 (+ RSS_SLACK_MB, default 30 MB; 200 MB
under ASan, whose quarantine keeps freed memory). The figures are printed.

test_slowloris / test_max_connections / test_idle_keepalive: the HTTP
limits of docs/limits.md that libevent 2.1's evhttp cannot enforce on its
own. They exit 77 (ctest: skipped) until core/http.c carries the
connection-level limits (see /work/briefs/harden-core.patch); then they
run for real.

asyncio streams over raw TCP; standard library only.
"""
import asyncio
import json
import os
import random
import resource
import socket
import sys
import time

from pyoco_test import BIN, PLUGIN_DIR, SOURCE_DIR, Server, check, run_tests

CONNECTIONS = int(os.environ.get("LOAD_CONNECTIONS", "500"))
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "20"))
MAX_RUNS = 1500  # submits during the load (keeps the verification bounded)
HISTORY = 50     # registry.max_run_history


def _sanitized():
    """True when the binary is built with ASan (PYOCO_SANITIZE=ON)."""
    with open(BIN, "rb") as f:
        return b"__asan_init" in f.read()


RSS_SLACK_MB = float(os.environ.get("RSS_SLACK_MB",
                                    "200" if _sanitized() else "30"))


def raise_nofile(want):
    """Raise this process's soft RLIMIT_NOFILE; the server (a child)
    inherits it, so it can hold as many connections as the test opens."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def plugins():
    p = {"rest": {}}
    if os.path.exists(os.path.join(PLUGIN_DIR, "prometheus.so")):
        p["prometheus"] = {}
    return p


# ---- a minimal HTTP/1.1 keep-alive client over asyncio streams -----------

class Conn:
    def __init__(self, port):
        self.port = port
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)

    def close(self):
        if self.w:
            self.w.close()
            self.w = None

    async def request(self, method, path, obj=None, timeout=60.0):
        return await asyncio.wait_for(self._request(method, path, obj), timeout)

    async def _request(self, method, path, obj):
        if self.w is None:
            await self.open()
        body = b"" if obj is None else json.dumps(obj).encode()
        head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % (method, path, len(body))).encode()
        self.w.write(head + body)
        await self.w.drain()
        line = await self.r.readline()
        if not line:
            self.close()
            raise ConnectionError("server closed the connection")
        status = int(line.split()[1])
        headers = {}
        while True:
            h = await self.r.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            data = await self.r.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int((await self.r.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.r.readline()
                    break
                data += await self.r.readexactly(size)
                await self.r.readline()
        else:
            data = await self.r.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, data


def as_json(data):
    return json.loads(data) if data else None


# ---- the workload ---------------------------------------------------------

class Load:
    def __init__(self, port, metrics):
        self.port = port
        self.metrics = metrics
        self.submitted = []           # run ids
        self.acked = {}               # run_id -> set of log texts answered 200
        self.owned = {}               # client id -> [run ids it works on]
        self.counts = {}              # (op, status) -> n
        self.errors = []              # transport errors / unexpected statuses
        self.requests = 0

    def count(self, op, status):
        self.counts[(op, status)] = self.counts.get((op, status), 0) + 1
        self.requests += 1
        if status != 200:
            self.errors.append("%s -> %s" % (op, status))

    async def client(self, cid, conn, deadline, rnd):
        owned = self.owned.setdefault(cid, [])
        n = 0
        while time.monotonic() < deadline:
            x = rnd.random()
            n += 1
            try:
                if owned and x < 0.45:
                    run_id = rnd.choice(owned)
                    text = "c%d-n%d-%s" % (cid, n, run_id[:8])
                    st, _ = await conn.request("POST", "/runs/%s/heartbeat" % run_id, {
                        "task_states": {"t%d" % (n % 3): "RUNNING"},
                        "logs": [{"seq": n, "task": "t%d" % (n % 3), "stream": "stdout",
                                  "text": text, "timestamp": time.time()}],
                        "run_status": "RUNNING"})
                    self.count("heartbeat", st)
                    if st == 200:
                        self.acked.setdefault(run_id, set()).add(text)
                elif x < 0.60 and len(self.submitted) < MAX_RUNS:
                    st, data = await conn.request("POST", "/runs", {
                        "flow_name": "load%d" % (cid % 5),
                        "params": {"cid": cid, "n": n}})
                    self.count("submit", st)
                    if st == 200:
                        self.submitted.append(as_json(data)["run_id"])
                elif x < 0.75 and len(owned) < 2:
                    st, data = await conn.request("POST", "/workers/poll",
                                                  {"worker_id": "w%d" % cid})
                    self.count("poll", st)
                    got = as_json(data) if st == 200 else None
                    if got and got.get("run_id"):
                        owned.append(got["run_id"])
                else:
                    paths = ["/health", "/runs?limit=10"]
                    if self.submitted:
                        rid = rnd.choice(self.submitted)
                        paths += ["/runs/" + rid, "/runs/%s/logs?tail=5" % rid]
                    if self.metrics:
                        paths.append("/metrics")
                    path = rnd.choice(paths)
                    st, _ = await conn.request("GET", path)
                    self.count("GET " + path.split("?")[0].split("/")[1], st)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    ValueError) as e:
                self.errors.append("client %d: %r" % (cid, e))
                conn.close()

    async def run(self, seconds):
        conns = [Conn(self.port) for _ in range(CONNECTIONS)]
        await asyncio.gather(*(c.open() for c in conns))
        # Every connection has been answered once: all are open at once.
        res = await asyncio.gather(*(c.request("GET", "/health") for c in conns),
                                   return_exceptions=True)
        bad = [r for r in res if isinstance(r, Exception) or r[0] != 200]
        check(not bad, "not all %d connections answered" % CONNECTIONS, bad[:5])
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(self.client(i, c, deadline, random.Random(i))
                               for i, c in enumerate(conns)))
        for c in conns:
            c.close()

    async def verify(self):
        """Every acknowledged log line is stored (runs are still RUNNING,
        so nothing has been evicted yet)."""
        items = list(self.acked.items())
        missing = []
        pool = [Conn(self.port) for _ in range(16)]

        async def worker(k):
            for run_id, texts in items[k::len(pool)]:
                st, data = await pool[k].request("GET", "/runs/%s/logs" % run_id)
                check(st == 200, "logs of", run_id, st)
                stored = {e["text"] for e in as_json(data)["logs"]}
                lost = texts - stored
                if lost:
                    missing.append((run_id, sorted(lost)[:3], len(lost)))
        await asyncio.gather(*(worker(k) for k in range(len(pool))))
        for c in pool:
            c.close()
        return missing

    async def finish_all(self):
        """Complete every run (owned ones, then whatever is still queued),
        so that retention can evict them."""
        c = Conn(self.port)
        done = {"task_states": {"t0": "SUCCEEDED"}, "run_status": "COMPLETED"}
        for runs in self.owned.values():
            for run_id in runs:
                st, _ = await c.request("POST", "/runs/%s/heartbeat" % run_id, done)
                check(st == 200, "complete", run_id, st)
        while True:
            st, data = await c.request("POST", "/workers/poll", {"worker_id": "drain"})
            check(st == 200, "drain poll", st)
            got = as_json(data)
            if not got.get("run_id"):
                break
            st, _ = await c.request("POST", "/runs/%s/heartbeat" % got["run_id"], done)
            check(st == 200, "complete queued", st)
        c.close()


def load_round(srv, pid, name, seconds, archived_before):
    """One full cycle: load, verify, finish every run, let retention evict.
    Returns (peak RSS kB, RSS kB after eviction, runs submitted)."""
    load = Load(srv.port, os.path.exists(os.path.join(PLUGIN_DIR, "prometheus.so")))
    t0 = time.monotonic()
    asyncio.run(load.run(seconds))
    elapsed = time.monotonic() - t0
    peak = rss_kb(pid)
    hb = sum(n for (op, s), n in load.counts.items() if op == "heartbeat" and s == 200)
    print("%s: %d connections, %.1fs, %d requests (%.0f/s), %d runs submitted, "
          "%d heartbeats acked on %d runs, %d errors"
          % (name, CONNECTIONS, elapsed, load.requests, load.requests / elapsed,
             len(load.submitted), hb, len(load.acked), len(load.errors)), flush=True)
    print("  by op/status:", sorted(load.counts.items()), flush=True)
    check(not load.errors, "errors under load", load.errors[:10])
    check(hb > 0 and load.submitted, "the workload did nothing")

    missing = asyncio.run(load.verify())
    check(not missing, "acknowledged heartbeats missing from state", missing[:5])

    st, body = srv.json("GET", "/health")
    check(st == 200, "server does not answer after the load", st, body)

    asyncio.run(load.finish_all())
    for status in ("PENDING", "RUNNING", "CANCELLING"):
        st, runs = srv.json("GET", "/runs?status=%s&limit=200" % status)
        check(st == 200 and runs == [], "runs still", status, st, runs)
    st, runs = srv.json("GET", "/runs")
    check(st == 200 and len(runs) <= HISTORY,
          "retention did not evict", st, len(runs) if isinstance(runs, list) else runs)
    # Evicted runs are written to the archive by a background thread: let
    # it finish before reading RSS (a bounded wait, not a timing check).
    archive = os.path.join(srv.workdir, "artifacts", "runs")
    want = archived_before + len(load.submitted) - HISTORY
    for _ in range(300):
        if os.path.isdir(archive) and len(os.listdir(archive)) >= want:
            break
        time.sleep(0.1)
    return peak, rss_kb(pid), len(load.submitted)


def test_load_soak():
    """Two identical rounds in one server. The first (warm-up) takes the
    allocator to its working size: glibc keeps freed heap pages mapped (with
    everything evicted, malloc_stats showed ~0.3 MB in use against ~46 MB
    RSS; malloc_trim(0) gave it back), so "near baseline" is measured
    against the RSS after the warm-up round; a leak or an unbounded
    structure still grows it by the second round's whole volume."""
    nofile = raise_nofile(CONNECTIONS * 2 + 256)
    check(nofile == resource.RLIM_INFINITY or nofile >= CONNECTIONS + 64,
          "RLIMIT_NOFILE too low for the test", nofile)
    cfg = {"registry": {"max_run_history": HISTORY}}
    with Server(plugins=plugins(), config=cfg) as srv:
        pid = srv.proc.pid
        st, _ = srv.json("GET", "/health")
        check(st == 200, "health", st)
        start = rss_kb(pid)
        half = LOAD_SECONDS / 2
        peak1, warm, n1 = load_round(srv, pid, "round 1 (warm-up)", half, 0)
        peak2, after, _ = load_round(srv, pid, "round 2", half, max(0, n1 - HISTORY))
        print("RSS: at start %.1f MB; round 1 peak %.1f MB, after eviction %.1f MB "
              "(the baseline); round 2 peak %.1f MB, after eviction %.1f MB "
              "(bound: baseline + %.0f MB)"
              % (start / 1024, peak1 / 1024, warm / 1024, peak2 / 1024,
                 after / 1024, RSS_SLACK_MB), flush=True)
        check(after < warm + RSS_SLACK_MB * 1024,
              "RSS did not come back near baseline", warm, peak2, after)


# ---- connection-level limits (need core support) ---------------------------

def core_has_conn_limits():
    """The limits need per-connection state in the core (the proposal in
    harden-core.patch adds core/http_conn.c, marked PYOCO_HTTP_CONN_LIMITS,
    behind evhttp_set_bevcb)."""
    core = os.path.join(SOURCE_DIR, "core")
    for name in sorted(os.listdir(core)) if os.path.isdir(core) else []:
        if name.startswith("http") and name.endswith(".c"):
            with open(os.path.join(core, name)) as f:
                if "PYOCO_HTTP_CONN_LIMITS" in f.read():
                    return True
    return False


def skip_unless_conn_limits(what):
    # LOAD_FORCE_LIMITS=1 runs them anyway (to see today's behaviour).
    if not core_has_conn_limits() and not os.environ.get("LOAD_FORCE_LIMITS"):
        print("SKIP %s: core/http*.c has no connection-level limits yet "
              "(libevent 2.1 evhttp re-arms its read timeout on every byte and "
              "has no connection cap; see docs/limits.md and "
              "/work/briefs/harden-core.patch)" % what, flush=True)
        sys.exit(77)


def test_slowloris():
    """A client trickling its header one byte at a time must be cut off once
    server.read_timeout has passed since the request began, not kept alive
    by each byte."""
    skip_unless_conn_limits("slow-loris")
    with Server(plugins={"rest": {}}, config={"server": {"read_timeout": 1}}) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.settimeout(0.2)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = False
        # 60 s is the guard against a hang, 60x the deadline; not a timing check.
        end = time.monotonic() + 60
        while time.monotonic() < end and not closed:
            try:
                s.sendall(b"X")
                data = s.recv(4096)
                closed = data == b"" or data.startswith(b"HTTP/1.1 408")
            except socket.timeout:
                continue
            except OSError:
                closed = True
        s.close()
        check(closed, "a trickling client kept its connection for 60 s")
        st, _ = srv.json("GET", "/health")
        check(st == 200, "server does not answer after slow-loris", st)


def test_max_connections():
    """Past server.max_connections a new connection is answered 503 or
    closed, and the ones already open keep working."""
    skip_unless_conn_limits("max_connections")
    limit = 20
    with Server(plugins={"rest": {}}, config={"server": {"max_connections": limit}}) as srv:
        held = []
        for _ in range(limit):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            check(s.recv(4096).startswith(b"HTTP/1.1 200"), "held connection")
            held.append(s)
        extra = socket.create_connection(("127.0.0.1", srv.port))
        extra.settimeout(30)  # the guard against a hang, not a timing check
        try:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = extra.recv(4096)
        except socket.timeout:
            data = None  # neither answered nor closed: fails below
        except OSError:
            data = b""  # reset: closed
        check(data == b"" or (data or b"").startswith(b"HTTP/1.1 503"),
              "connection over the limit was not refused", (data or b"")[:80])
        extra.close()
        held[0].sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        check(held[0].recv(4096).startswith(b"HTTP/1.1 200"), "held connection broken")
        for s in held:
            s.close()
        # Closed connections are counted out: a new one is served again
        # (the server sees the closes asynchronously, hence the retries).
        served = False
        end = time.monotonic() + 30
        while not served and time.monotonic() < end:
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.settimeout(30)
            try:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                served = s.recv(4096).startswith(b"HTTP/1.1 200")
            except OSError:
                pass
            s.close()
            if not served:
                time.sleep(0.1)
        check(served, "no connection served after the held ones closed")


def test_idle_keepalive():
    """A keep-alive connection idle for server.idle_timeout is closed."""
    skip_unless_conn_limits("idle keep-alive timeout")
    with Server(plugins={"rest": {}}, config={"server": {"idle_timeout": 1}}) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        check(s.recv(4096).startswith(b"HTTP/1.1 200"), "first request")
        s.settimeout(60)  # the guard against a hang, 60x the timeout
        try:
            data = s.recv(4096)
        except socket.timeout:
            data = None
        s.close()
        check(data == b"", "idle connection not closed", data)


if __name__ == "__main__":
    # ctest runs the soak and the limit tests as separate tests (LOAD_ONLY),
    # so that the limit tests can be reported as skipped on their own.
    only = os.environ.get("LOAD_ONLY")
    run_tests(globals(), only=only.split(",") if only else None)
