"""The sse plugin over real HTTP: the real binary with rest + sse, a run
driven through poll and heartbeats, streams read line by line."""
import os
import signal
import subprocess
import tempfile
import threading
import time

from pyoco_test import BIN, PLUGIN_DIR, check, run_tests, to_yaml
from sse_common import (Stream, heartbeat, id_key, log_entry, ok, poll,
                        sse_server, submit)

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def check_ids_increase(events):
    ids = [e["id"] for e in events if e["id"] is not None]
    keys = [id_key(i) for i in ids]
    check(keys == sorted(keys) and len(set(keys)) == len(keys),
          "ids not strictly increasing", ids)


def drive_to_completion(srv, run_id):
    """poll, RUNNING with a task and two logs, COMPLETED with a record."""
    got = poll(srv)
    check(got["run_id"] == run_id, got)
    heartbeat(srv, run_id, "RUNNING", {"t1": "RUNNING"},
              logs=[log_entry(0, "hello"), log_entry(1, "line two\nmore")])
    heartbeat(srv, run_id, "COMPLETED", {"t1": "SUCCEEDED"},
              records={"t1": {"state": "SUCCEEDED", "duration_ms": 12.5,
                              "ended_at": 1796315002.0}})


def test_lifecycle_events_and_close():
    with sse_server() as srv:
        run_id = submit(srv, params={"x": 1})
        s = Stream(srv, run_id)
        check(s.status == 200, s.status)
        check(s.headers.get("content-type", "").startswith("text/event-stream"),
              s.headers)
        check(s.headers.get("cache-control") == "no-cache", s.headers)
        check(s.headers.get("connection") == "close", s.headers)
        snap = s.next()
        check(snap["event"] == "snapshot", snap)
        check(snap["data"] == ok(srv, "GET", "/runs/" + run_id), snap,
              "snapshot differs from GET /runs/{id}")
        check(snap["data"]["status"] == "PENDING", snap)
        check(len(snap["data_lines"]) == 1, "compact JSON on one line", snap)

        drive_to_completion(srv, run_id)
        events = s.rest()
        check(s.closed, "server did not close the stream")
        types = [e["event"] for e in events]
        check(types == ["assigned", "status", "task", "log", "log", "status",
                        "task", "task", "finished", "end"], types)
        check_ids_increase([snap] + events)
        by = {t: [e for e in events if e["event"] == t] for t in set(types)}
        check(by["assigned"][0]["data"] == {"worker_id": "w1"}, by["assigned"])
        st = [e["data"] for e in by["status"]]
        check(st[0] == {"status": "RUNNING", "prev_status": "PENDING",
                        "end_time": None}, st)
        check(st[1]["status"] == "COMPLETED" and
              st[1]["prev_status"] == "RUNNING" and
              isinstance(st[1]["end_time"], float), st)
        tasks = [e["data"] for e in by["task"]]
        check(tasks[0] == {"task": "t1", "state": "RUNNING", "record": None},
              tasks)
        rec = tasks[-1]["record"]
        check(tasks[-1]["state"] == "SUCCEEDED" and
              rec["duration_ms"] == 12.5 and rec["ended_at"] == 1796315002.0,
              tasks)
        logs = [e["data"] for e in by["log"]]
        check([l["text"] for l in logs] == ["hello", "line two\nmore"], logs)
        check(logs[0] == log_entry(0, "hello"), logs[0])
        # one bus event with two entries: "<seq>.0" and "<seq>.1"
        lids = [e["id"] for e in by["log"]]
        check(lids[0].endswith(".0") and lids[1].endswith(".1") and
              lids[0].split(".")[0] == lids[1].split(".")[0], lids)
        fin = by["finished"][0]["data"]
        run = ok(srv, "GET", "/runs/" + run_id)
        check(fin["status"] == "COMPLETED", fin)
        check(abs(fin["run_duration_ms"] - run["run_duration_ms"]) < 1e-6,
              fin, run["run_duration_ms"])
        end = by["end"][0]
        check(end["id"] is None and end["data"] == {"status": "COMPLETED"},
              end)
        s.close()


def test_unknown_run_404():
    with sse_server() as srv:
        st, body = srv.json("GET", "/runs/no-such-run/events")
        check(st == 404 and body == {"detail": "Run not found"}, st, body)
        # the rest plugin's routes are untouched next to ours
        st, body = srv.json("GET", "/runs/no-such-run")
        check(st == 404, st, body)


def test_terminal_run_snapshot_then_end():
    with sse_server() as srv:
        run_id = submit(srv)
        drive_to_completion(srv, run_id)
        s = Stream(srv, run_id)
        events = s.rest()
        check([e["event"] for e in events] == ["snapshot", "end"], events)
        check(events[0]["data"]["status"] == "COMPLETED", events[0])
        s.close()


def test_cancel_flow():
    with sse_server() as srv:
        run_id = submit(srv)
        s = Stream(srv, run_id)
        check(s.next()["event"] == "snapshot")
        ok(srv, "POST", "/runs/%s/cancel" % run_id)
        ev = s.next()
        check(ev["event"] == "status" and ev["data"]["status"] == "CANCELLING"
              and ev["data"]["prev_status"] == "PENDING", ev)
        heartbeat(srv, run_id, "CANCELLED")
        events = s.rest()
        check([e["event"] for e in events] == ["status", "finished", "end"],
              events)
        check(events[1]["data"]["status"] == "CANCELLED", events)
        s.close()


def test_resume_with_last_event_id():
    with sse_server() as srv:
        run_id = submit(srv)
        poll(srv)
        s = Stream(srv, run_id)
        seen = s.until("snapshot")
        heartbeat(srv, run_id, "RUNNING", {"t1": "RUNNING"},
                  logs=[log_entry(i, "first %d" % i) for i in range(3)])
        seen += s.until("task")
        seen.append(s.next())  # the first log entry only
        check(seen[-1]["event"] == "log" and
              seen[-1]["data"]["text"] == "first 0", seen)
        last = seen[-1]["id"]
        s.close()
        # the client is away while more happens
        heartbeat(srv, run_id, "RUNNING", {"t2": "RUNNING"},
                  logs=[log_entry(3, "second")])
        for how in ("header", "query"):
            if how == "header":
                r = Stream(srv, run_id, last_event_id=last)
            else:
                r = Stream(srv, run_id, query="?last_event_id=" + last)
            got = r.until("log")
            got += [r.next(), r.next(), r.next()]
            types = [e["event"] for e in got]
            check(types == ["log", "log", "task", "log"], how, types)
            check([e["data"]["text"] for e in got if e["event"] == "log"] ==
                  ["first 1", "first 2", "second"], how, got)
            check(all(id_key(e["id"]) > id_key(last) for e in got), how, got)
            check_ids_increase(got)
            r.close()
        # resuming from the newest id: nothing to replay, live events follow
        newest = got[-1]["id"]
        r = Stream(srv, run_id, last_event_id=newest)
        heartbeat(srv, run_id, "COMPLETED", {"t2": "SUCCEEDED"})
        events = r.rest()
        check([e["event"] for e in events] ==
              ["status", "task", "finished", "end"], events)
        r.close()
        # resuming a finished run after its end: only the end again
        r = Stream(srv, run_id, last_event_id=events[-2]["id"])
        check([e["event"] for e in r.rest()] == ["end"])
        r.close()


def test_resume_too_old_gets_reset_and_snapshot():
    with sse_server(sse={"replay_events": 3}) as srv:
        run_id = submit(srv)
        s = Stream(srv, run_id)
        snap = s.until("snapshot")[-1]
        s.close()
        poll(srv)
        heartbeat(srv, run_id, "RUNNING",
                  logs=[log_entry(i, "x%d" % i) for i in range(10)])
        for last in (snap["id"], "garbage", "99999999999"):
            r = Stream(srv, run_id, last_event_id=last)
            reset = r.next()
            check(reset["event"] == "reset" and
                  reset["data"]["last_event_id"] == last, reset)
            snap2 = r.next()
            check(snap2["event"] == "snapshot" and
                  len(snap2["data"]["logs"]) == 10, snap2)
            check(id_key(snap2["id"]) > id_key(snap["id"]), snap2, snap)
            r.close()
        # a resume from inside the ring still replays
        r = Stream(srv, run_id, last_event_id=snap2["id"])
        heartbeat(srv, run_id, "RUNNING", logs=[log_entry(10, "late")])
        ev = r.next()
        check(ev["event"] == "log" and ev["data"]["text"] == "late", ev)
        r.close()


def test_evicted_run_drops_history():
    # one run in memory: finishing a second run evicts the first
    with sse_server(env={"PYOCO_MAX_RUN_HISTORY": "1"}) as srv:
        a = submit(srv)
        s = Stream(srv, a)
        events = s.until("snapshot")
        drive_to_completion(srv, a)
        events += s.rest()
        s.close()
        check(events[-1]["event"] == "end", events)
        last = events[-2]["id"]
        # still in memory: the resume replays nothing and ends
        r = Stream(srv, a, last_event_id=last)
        check([e["event"] for e in r.rest()] == ["end"])
        r.close()
        b = submit(srv)
        drive_to_completion(srv, b)
        # without an archive source (storage) the evicted run is gone
        st, body = srv.json("GET", "/runs/%s/events" % a,
                            headers={"Last-Event-ID": last})
        check(st == 404 and body == {"detail": "Run not found"}, st, body)
        # the other run streams as usual
        r = Stream(srv, b)
        check([e["event"] for e in r.rest()] == ["snapshot", "end"])
        r.close()


def test_stuck_runs_requeued_then_failed():
    # the core's stuck-run watch changes runs without a request: streams
    # see it as it happens
    cfg = {"registry": {"assignment_lease": 1.0, "heartbeat_timeout": 1.0}}
    with sse_server(config=cfg) as srv:
        run_id = submit(srv)
        s = Stream(srv, run_id)
        check(s.next()["event"] == "snapshot")
        poll(srv, "w-lost")
        ev = s.next()
        check(ev["event"] == "assigned" and
              ev["data"] == {"worker_id": "w-lost"}, ev)
        ev = s.next()  # no heartbeat within the lease
        check(ev["event"] == "requeued" and
              ev["data"] == {"lease_expired_worker_id": "w-lost",
                             "requeued": 1}, ev)
        poll(srv, "w2")
        heartbeat(srv, run_id, "RUNNING", {"t1": "RUNNING"})
        # then silence: the heartbeat timeout fails the run
        events = s.rest()
        types = [e["event"] for e in events]
        check(types == ["assigned", "status", "task", "status", "finished",
                        "end"], types)
        check(events[3]["data"]["status"] == "FAILED" and
              events[4]["data"]["status"] == "FAILED", events)
        s.close()


def test_keepalive_comment():
    with sse_server(sse={"keepalive": 0.2}) as srv:
        run_id = submit(srv)
        s = Stream(srv, run_id)
        s.next()
        # no event comes; the comment does (blank-line separated)
        raw = b""
        while b": keepalive\n\n" not in raw:
            line = s.resp.readline()
            check(line, "stream closed")
            raw += line
        s.close()


def test_slow_client_dropped_server_stays_responsive():
    import socket
    big = "y" * 16000
    # the bound is above one heartbeat's worth (4 x 16 kB), so a reader that
    # keeps up is never dropped; the one that never reads must be
    with sse_server(sse={"max_buffer_bytes": 262144, "keepalive": 0},
                    plugins={"rest": {}, "sse": {}, "prometheus": {}},
                    env={"PYOCO_MAX_LOG_BYTES": "200000000"}) as srv:
        run_id = submit(srv)
        poll(srv)
        # a client that never reads, with a tiny receive window
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((srv.host, srv.port))
        sock.sendall(("GET /runs/%s/events HTTP/1.1\r\nHost: x\r\n\r\n" %
                      run_id).encode())
        # a well-behaved client on the same run
        good = Stream(srv, run_id)
        check(good.next()["event"] == "snapshot")
        texts = []
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                ev = good.next()
                if ev is None:
                    return
                if ev["event"] == "log":
                    texts.append(ev["data"]["seq"])
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        seq = 0
        dropped = False
        for batch in range(1000):
            heartbeat(srv, run_id, "RUNNING",
                      logs=[log_entry(seq + i, big) for i in range(4)])
            seq += 4
            # other requests are answered meanwhile (generous timeout)
            st, _ = srv.json("GET", "/runs/%s/logs?tail=1" % run_id,
                             timeout=10)
            check(st == 200, st)
            if any("dropping slow event stream" in l
                   for l in srv.log_lines):
                dropped = True
                break
        check(dropped, "slow client never dropped after", seq, "entries")
        st, _, body = srv.request("GET", "/metrics")
        check(st == 200, st)
        values = dict(l.split(" ", 1) for l in body.decode().splitlines()
                      if l.startswith("pyoco_sse_"))
        check(float(values.get("pyoco_sse_dropped_total", -1)) == 1, values)
        check(float(values.get("pyoco_sse_streams", -1)) == 1, values)
        # the good client got everything so far, in order
        heartbeat(srv, run_id, "COMPLETED")
        t.join(60)
        check(not t.is_alive(), "good reader did not finish")
        check(texts == list(range(seq)), len(texts), seq)
        check(good.closed)
        # the dropped connection is ended by the server (EOF after data)
        sock.settimeout(30)
        total = 0
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        check(total > 0, total)
        sock.close()
        good.close()


def test_big_snapshot_is_not_a_slow_client():
    # A run with ~8 MB of logs: its snapshot alone is far over
    # max_buffer_bytes and over what the sockets hold. A client that reads
    # it a moment later is not dropped for that; live events follow.
    import socket
    big = "z" * 60000
    with sse_server(sse={"max_buffer_bytes": 65536, "keepalive": 0},
                    env={"PYOCO_MAX_LOG_BYTES": "200000000"}) as srv:
        run_id = submit(srv)
        poll(srv)
        for b in range(35):
            heartbeat(srv, run_id, "RUNNING",
                      logs=[log_entry(b * 4 + i, big) for i in range(4)])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((srv.host, srv.port))
        sock.sendall(("GET /runs/%s/events HTTP/1.1\r\nHost: x\r\n\r\n" %
                      run_id).encode())
        time.sleep(0.3)  # not reading yet: the snapshot waits in the server
        heartbeat(srv, run_id, "RUNNING", logs=[log_entry(1000, "live")])
        heartbeat(srv, run_id, "COMPLETED")
        sock.settimeout(30)
        data = bytearray()
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        sock.close()
        text = data.decode()
        check(text.startswith("HTTP/1.1 200"), text[:200])
        check(len(data) > 8000000, len(data))
        for want in ("event: snapshot", '"text":"live"', "event: finished",
                     "event: end"):
            check(want in text, want, "missing;", text[-600:])
        check(not any("dropping slow event stream" in l
                      for l in srv.log_lines), srv.log())


def test_many_concurrent_streams_and_limit():
    n = 40
    with sse_server(sse={"max_streams": n}) as srv:
        runs = [submit(srv) for _ in range(4)]
        streams = [Stream(srv, runs[i % 4]) for i in range(n)]
        for s in streams:
            check(s.status == 200 and s.next()["event"] == "snapshot")
        st, body = srv.json("GET", "/runs/%s/events" % runs[0])
        check(st == 503 and "detail" in body, st, body)
        for r in runs:
            drive_to_completion(srv, r)
        for i, s in enumerate(streams):
            events = s.rest()
            check([e["event"] for e in events] ==
                  ["assigned", "status", "task", "log", "log", "status",
                   "task", "task", "finished", "end"], i, events)
            s.close()
        # slots freed: a new stream is accepted again
        s = Stream(srv, runs[0])
        check(s.status == 200, s.status)
        check([e["event"] for e in s.rest()] == ["snapshot", "end"])
        s.close()


def test_sigterm_with_open_streams_exits_0():
    srv = sse_server()
    srv.start()
    try:
        run_id = submit(srv)
        streams = [Stream(srv, run_id) for _ in range(5)]
        for s in streams:
            check(s.next()["event"] == "snapshot")
        rc = srv.stop(signal.SIGTERM, timeout=20)
        check(rc == 0, "exit status", rc, srv.log())
        for s in streams:
            check(s.rest() == [] and s.closed)
            s.close()
    finally:
        srv.kill()


def test_sighup_reload_applies_limits():
    def write(sse):
        with open(srv.config_path, "w") as f:
            f.write(to_yaml({"plugin_path": [os.path.abspath(PLUGIN_DIR)],
                             "plugins": {"rest": {}, "sse": sse}}))

    with sse_server(sse={"max_streams": 1, "keepalive": 0}) as srv:
        run_id = submit(srv)
        first = Stream(srv, run_id)
        check(first.next()["event"] == "snapshot")
        st, _ = srv.json("GET", "/runs/%s/events" % run_id)
        check(st == 503, st)
        write({"max_streams": 2, "keepalive": 0.2})
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"\[sse\] reloaded: keepalive 0.2 s.*max_streams 2")
        second = Stream(srv, run_id)
        check(second.status == 200 and second.next()["event"] == "snapshot")
        # the new keepalive reaches the stream opened before the reload
        line = first.resp.readline()
        check(line == b": keepalive\n", line)
        # a bad value is refused and the running limits stay
        write({"max_streams": 0})
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"plugins.sse.max_streams: expected an integer")
        st, _ = srv.json("GET", "/runs/%s/events" % run_id)
        check(st == 503, "max_streams 2 still applies", st)
        first.close()
        second.close()


def test_bad_config_names_key():
    d = tempfile.mkdtemp(prefix="pyoco-sse-")
    cfg = os.path.join(d, "pyoco.yaml")
    with open(cfg, "w") as f:
        f.write(to_yaml({"plugin_path": [os.path.abspath(PLUGIN_DIR)],
                         "plugins": {"sse": {"max_streams": 0}}}))
    p = subprocess.run([BIN, "server", "start", "--config", cfg, "--host",
                        "127.0.0.1", "--port", "0"], cwd=d,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    out = p.stdout.decode()
    check(p.returncode != 0, p.returncode, out)
    check("plugins.sse.max_streams" in out, out)


if __name__ == "__main__":
    run_tests(globals())
