"""Restart: runs in every state survive a SIGTERM and a restart on the same
database; every run GETs identical, the list is the same, queued runs are
handed out in their original order (tags respected), assigned runs are not
handed out again, and the plugin logs what it restored."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import check, run_tests  # noqa: E402
from storage_common import (heartbeat, log_entry, ok, poll,  # noqa: E402
                            require_plugins, storage_server, submit)


def _populate(srv):
    runs = {}
    # completed, with tasks, a full record, logs (one with a timestamp) and
    # unicode / nested params
    done = submit(srv, "etl", {"x": 1, "name": "ä€𝄞", "deep": {"l": [1, None,
                                                                      2.5]}})
    check(poll(srv, "w-done") == done)
    heartbeat(srv, done, "RUNNING", {"extract": "RUNNING"},
              logs=[log_entry(0, "start"), log_entry(1, "line\nbreak",
                                                     stream="stderr",
                                                     ts=1700000000.125)])
    heartbeat(srv, done, "COMPLETED",
              {"extract": "SUCCEEDED", "load": "SUCCEEDED"},
              {"extract": {"state": "SUCCEEDED", "started_at": 10.0,
                           "ended_at": 10.25, "duration_ms": 250.0,
                           "inputs": {"x": 1}, "output": {"rows": 3}},
               "load": {"state": "SUCCEEDED", "error": None,
                        "artifacts": {"f": "out.csv"}}},
              [log_entry(2, "done", task="load")])
    runs["done"] = done
    # failed
    failed = submit(srv, "etl")
    check(poll(srv, "w-fail") == failed)
    heartbeat(srv, failed, "FAILED", {"t": "FAILED"},
              {"t": {"state": "FAILED", "error": "boom",
                     "traceback": "Traceback...\n"}})
    runs["failed"] = failed
    # running, with a record for a task that has no state yet
    running = submit(srv, "long", tags=["gpu"])
    check(poll(srv, "w-run", ["gpu"]) == running)
    heartbeat(srv, running, "RUNNING", {"a": "RUNNING"},
              {"b": {"state": "PENDING"}}, [log_entry(0, "tick")])
    runs["running"] = running
    # assigned but not yet heartbeated: PENDING, out of the queue
    assigned = submit(srv, "assigned")
    check(poll(srv, "w-as") == assigned)
    runs["assigned"] = assigned
    # cancelled while queued, and cancelling while running
    cq = submit(srv, "cancel-queued")
    ok(srv, "POST", "/runs/%s/cancel" % cq)
    runs["cancel_queued"] = cq
    cr = submit(srv, "cancel-running")
    check(poll(srv, "w-cr") == cr)
    heartbeat(srv, cr, "RUNNING", {"a": "RUNNING"})
    ok(srv, "POST", "/runs/%s/cancel" % cr)
    runs["cancelling"] = cr
    # queued, some tagged
    queued = [submit(srv, "q", {"i": i}, tags=["gpu"] if i % 2 else None)
              for i in range(6)]
    return runs, queued


def test_restart_same_db():
    workdir = tempfile.mkdtemp(prefix="pyoco-storage-restart-")
    with storage_server(workdir) as srv:
        runs, queued = _populate(srv)
        ids = list(runs.values()) + queued
        before = {r: ok(srv, "GET", "/runs/" + r) for r in ids}
        listed = ok(srv, "GET", "/runs?limit=200")
        logs_before = ok(srv, "GET", "/runs/%s/logs" % runs["done"])
        check(len(listed) == len(ids), listed)
    # (the with-block asserted exit status 0 after SIGTERM)

    with storage_server(workdir) as srv:
        srv.wait_log(r"restored %d runs, 6 queued, 0 outbox" % len(ids))
        for r in ids:
            got = ok(srv, "GET", "/runs/" + r)
            check(got == before[r], "run differs after restart", r, got,
                  before[r])
        check(ok(srv, "GET", "/runs?limit=200") == listed)
        check(ok(srv, "GET", "/runs/%s/logs" % runs["done"]) == logs_before)
        # CANCELLING survives and is still reported to the worker
        hb = heartbeat(srv, runs["cancelling"], "RUNNING")
        check(hb["cancel_requested"] is True, hb)
        # FIFO: untagged worker gets the untagged runs in order ...
        check(poll(srv, "w1") == queued[0])
        check(poll(srv, "w1") == queued[2])
        # ... a gpu worker takes the oldest remaining run it may run
        check(poll(srv, "w2", ["gpu"]) == queued[1])
        check(poll(srv, "w2", ["gpu"]) == queued[3])
        # never handed out: assigned-before-restart and cancelled runs
        check(poll(srv, "w1") == queued[4])
        check(poll(srv, "w1") is None)

    # the assignments above were persisted too: one restart later only the
    # last gpu run is still queued
    with storage_server(workdir) as srv:
        srv.wait_log(r"restored %d runs, 1 queued" % len(ids))
        check(poll(srv, "w1") is None)
        check(poll(srv, "w3", ["gpu"]) == queued[5])
        check(poll(srv, "w3", ["gpu"]) is None)
        for r in queued[:5]:
            run = ok(srv, "GET", "/runs/" + r)
            check(run["status"] == "PENDING" and run["metadata"], run)


if __name__ == "__main__":
    require_plugins("storage", "rest")
    run_tests(globals())
