"""Stuck runs and restarts. A run whose assignment lease expired goes back
into the queue: a restart right after that must not change the order in
which workers then get the queued runs (the same scenario is played with
and without a restart and the poll orders compared). A RUNNING run whose
heartbeats stopped is FAILED with its reason and stays so after a restart.
Skipped (77) while the core has no registry.assignment_lease setting."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import CheckFailed, Server, check, run_tests  # noqa: E402
from storage_common import (SKIP, heartbeat, ok, poll,  # noqa: E402
                            require_plugins, submit)

REGISTRY = {"assignment_lease": 0.3, "heartbeat_timeout": 0.6}


def _server(workdir):
    return Server(plugins={"storage": {"path": "runs.db"}, "rest": {}},
                  config={"registry": REGISTRY}, workdir=workdir)


def _start(workdir):
    srv = _server(workdir)
    try:
        return srv.start()
    except CheckFailed as e:
        if "assignment_lease" in str(e):
            print("SKIP: this core has no registry.assignment_lease")
            sys.exit(SKIP)
        raise


def _wait_run(srv, run_id, pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = ok(srv, "GET", "/runs/" + run_id)
        if pred(run):
            return run
        time.sleep(0.05)
    check(False, "run never reached the expected state", run)


def _scenario(restart):
    """Returns the poll order (as flow names) after a lease expiry."""
    workdir = tempfile.mkdtemp(prefix="pyoco-storage-requeue-")
    srv = _start(workdir)
    ids = {n: submit(srv, n) for n in ("a", "b", "c")}
    check(poll(srv, "w-lost") == ids["a"])
    run_a = _wait_run(srv, ids["a"], lambda r: r["metadata"].get("requeued"))
    check(run_a["status"] == "PENDING", run_a)
    if restart:
        check(srv.stop() == 0, srv.log())
        srv = _server(workdir).start()
        srv.wait_log(r"restored 3 runs, 3 queued")
        check(ok(srv, "GET", "/runs/" + ids["a"]) == run_a)
    order = []
    try:
        for _ in range(4):
            got = poll(srv, "w2")
            if got is None:
                break
            order.append(ok(srv, "GET", "/runs/" + got)["flow_name"])
    finally:
        rc = srv.stop()
    check(rc == 0, "exit status", rc, srv.log())
    return order


def test_requeued_run_keeps_its_queue_place():
    live = _scenario(restart=False)
    restarted = _scenario(restart=True)
    check(sorted(live) == ["a", "b", "c"], live)
    check(restarted == live, "queue order changed by the restart", restarted,
          live)


def test_timed_out_run_stays_failed():
    workdir = tempfile.mkdtemp(prefix="pyoco-storage-timeout-")
    srv = _start(workdir)
    try:
        run_id = submit(srv, "silent")
        check(poll(srv, "w") == run_id)
        heartbeat(srv, run_id, "RUNNING", {"t": "RUNNING"})
        run = _wait_run(srv, run_id, lambda r: r["status"] == "FAILED")
        check("failure_reason" in run["metadata"], run)
    finally:
        rc = srv.stop()
    check(rc == 0, "exit status", rc, srv.log())
    with _server(workdir) as srv:
        check(ok(srv, "GET", "/runs/" + run_id) == run)


if __name__ == "__main__":
    require_plugins("storage", "rest")
    run_tests(globals())
