"""Runtime test of rest with the storage plugin: every change the rest
plugin answered 200 survives a SIGKILL of the server (the reply waits for
the durability barrier), and the queue comes back in order."""
import os
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import PLUGIN_DIR, check, run_tests  # noqa: E402
from rest_common import (get_run, heartbeat, ok, poll, rest_server,  # noqa: E402
                         submit)


def _storage_server(workdir):
    return rest_server(plugins={"storage": {"path": "runs.db"}, "rest": {}},
                       workdir=workdir)


def test_answered_changes_survive_sigkill():
    workdir = tempfile.mkdtemp(prefix="pyoco-rest-storage-")
    srv = _storage_server(workdir).start()
    try:
        health = ok(srv, "GET", "/health")
        check(health["plugins"] == ["storage", "rest"], health)
        done = submit(srv, "done", {"x": 1.0, "nested": {"a": [1, None]}})
        check(poll(srv, "w1")["run_id"] == done)
        heartbeat(srv, done, "RUNNING", {"t1": "RUNNING"},
                  logs=[{"seq": 0, "task": "t1", "stream": "stdout",
                         "text": "hello", "timestamp": 5.5}])
        heartbeat(srv, done, "COMPLETED", {"t1": "SUCCEEDED"},
                  {"t1": {"state": "SUCCEEDED", "started_at": 1.0,
                          "ended_at": 1.5, "duration_ms": 500.0,
                          "inputs": {"x": 1.0}, "output": [42]}})
        cancelled = submit(srv, "cancel-me")
        ok(srv, "POST", "/runs/%s/cancel" % cancelled)
        queued = [submit(srv, "queued", {"i": i}, tags=["t"] if i else None)
                  for i in range(3)]
        before = {r: get_run(srv, r) for r in [done, cancelled] + queued}
        listed = ok(srv, "GET", "/runs")
    finally:
        srv.stop(signal.SIGKILL)

    with _storage_server(workdir) as srv:
        for run_id, run in before.items():
            check(get_run(srv, run_id) == run, "run changed across restart",
                  run_id, get_run(srv, run_id), run)
        check(ok(srv, "GET", "/runs") == listed)
        logs = ok(srv, "GET", "/runs/%s/logs" % done)
        check(logs["run_status"] == "COMPLETED" and len(logs["logs"]) == 1,
              logs)
        # The queue is restored in order; the cancelled run stays out.
        check(poll(srv, "w2")["run_id"] == queued[0])
        check(poll(srv, "w2")["run_id"] is None)
        check(poll(srv, "w3", ["t"])["run_id"] == queued[1])
        check(poll(srv, "w3", ["t"])["run_id"] == queued[2])
        check(poll(srv, "w3", ["t"])["run_id"] is None)


if __name__ == "__main__":
    if not os.path.exists(os.path.join(PLUGIN_DIR, "storage.so")):
        print("SKIP: storage plugin not built (%s/storage.so)" % PLUGIN_DIR)
        sys.exit(77)  # ctest SKIP_RETURN_CODE: reported as skipped
    run_tests(globals())
