"""Eviction: with a small PYOCO_MAX_RUN_HISTORY, finished runs leave memory
but GET /runs/{id} still answers them from the database (the archive files
are removed first, so only the storage plugin can answer), identical to
what was served before; they are not restored into memory (GET /runs does
not list them) and remain readable after a restart. With
archive_lookup: false the same run is 404."""
import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import check, run_tests  # noqa: E402
from storage_common import (heartbeat, log_entry, ok, poll,  # noqa: E402
                            require_plugins, storage_server, submit)

ENV = {"PYOCO_MAX_RUN_HISTORY": "2", "PYOCO_RUN_ARCHIVE_DIR": "archive"}


def _finish(srv, i):
    run_id = submit(srv, "evict", {"i": i})
    check(poll(srv, "w") == run_id)
    heartbeat(srv, run_id, "RUNNING", {"t": "RUNNING"},
              logs=[log_entry(0, "run %d" % i)])
    heartbeat(srv, run_id, "COMPLETED", {"t": "SUCCEEDED"},
              {"t": {"state": "SUCCEEDED", "started_at": 1.0, "ended_at": 2.0,
                     "duration_ms": 1000.0, "output": i}})
    return run_id


def _drop_archive_files(workdir, run_ids):
    """Wait for the core's archive files, then remove them."""
    for r in run_ids:
        path = os.path.join(workdir, "archive", r + ".json")
        for _ in range(500):
            if os.path.exists(path):
                break
            time.sleep(0.01)
    for f in glob.glob(os.path.join(workdir, "archive", "*.json")):
        os.unlink(f)


def test_evicted_run_readable():
    workdir = tempfile.mkdtemp(prefix="pyoco-storage-evict-")
    with storage_server(workdir, env=ENV) as srv:
        ids, before = [], {}
        for i in range(5):
            ids.append(_finish(srv, i))
            before[ids[-1]] = ok(srv, "GET", "/runs/" + ids[-1])
        listed = [r["run_id"] for r in ok(srv, "GET", "/runs?limit=200")]
        # the two newest stay in memory, the three oldest were evicted
        check(sorted(listed) == sorted(ids[-2:]), listed, ids)
        evicted = ids[:3]
        _drop_archive_files(workdir, evicted)
        for r in evicted:
            check(ok(srv, "GET", "/runs/" + r) == before[r],
                  "evicted run differs", r)
        st, body = srv.json("GET", "/runs/00000000-0000-4000-8000-000000000000")
        check(st == 404, st, body)

    with storage_server(workdir, env=ENV) as srv:
        srv.wait_log(r"restored 2 runs, 0 queued")
        listed2 = [r["run_id"] for r in ok(srv, "GET", "/runs?limit=200")]
        check(sorted(listed2) == sorted(listed), listed2, listed)
        for r in ids:
            check(ok(srv, "GET", "/runs/" + r) == before[r], r)

    with storage_server(workdir, env=ENV,
                        storage={"archive_lookup": False}) as srv:
        for r in evicted:
            st, body = srv.json("GET", "/runs/" + r)
            check(st == 404, "archive_lookup off still found", r, st)


if __name__ == "__main__":
    require_plugins("storage", "rest")
    run_tests(globals())
