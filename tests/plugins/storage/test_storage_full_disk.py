"""A full disk: the database lives on a small tmpfs that a filler file fills
up. Heartbeats then get 503 (their change is not durable), the server keeps
serving reads and does not crash; once space is freed the failed batch is
retried and committed, heartbeats get 200 again, and after a restart every
line sent is there in order (the acknowledged ones and the 503 ones, which
were applied in memory and retried, never dropped).

Needs `mount -t tmpfs` (root with mount privileges); otherwise it exits 77
(skipped) with the reason. The write-error path is also covered without
mounts by the CUnit tests (PRAGMA max_page_count -> SQLITE_FULL)."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import check, run_tests  # noqa: E402
from storage_common import (SKIP, ok, poll, require_plugins,  # noqa: E402
                            storage_server, submit)


def _mount(mnt):
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode == 0, p.stdout.decode("utf-8", "replace").strip()


def _free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_full_disk_503_then_recovery():
    mnt = tempfile.mkdtemp(prefix="pyoco-storage-full-")
    mounted, why = _mount(mnt)
    if not mounted:
        print("SKIP: cannot mount a 2 MiB tmpfs on %s: %s" % (mnt, why))
        sys.exit(SKIP)
    workdir = tempfile.mkdtemp(prefix="pyoco-storage-fullwd-")
    db = os.path.join(mnt, "runs.db")
    filler = os.path.join(mnt, "filler")
    try:
        srv = storage_server(workdir, storage={"path": db}).start()
        try:
            run_id = submit(srv, "big")
            check(poll(srv, "w") == run_id)
            # leave ~96 KiB free
            with open(filler, "wb") as f:
                f.write(b"\0" * max(0, _free_bytes(mnt) - 96 * 1024))
            sent, acked, failed = [], [], 0
            text = "x" * 16000
            for i in range(200):
                line = "%d:%s" % (i, text)
                sent.append(line)
                st, body = srv.json(
                    "POST", "/runs/%s/heartbeat" % run_id,
                    {"task_states": {"t": "RUNNING"}, "run_status": "RUNNING",
                     "logs": [{"seq": i, "task": "t", "stream": "stdout",
                               "text": line}]})
                if st == 200:
                    acked.append(line)
                    continue
                check(st == 503, "expected 503 on a full disk", st, body)
                check(isinstance(body, dict) and body.get("detail"), body)
                failed += 1
                if failed >= 3:
                    break
            check(failed >= 3, "the disk never filled up", len(acked))
            srv.wait_log(r"\[storage\].*failed, retrying")
            # reads still work, the process is alive
            run = ok(srv, "GET", "/runs/" + run_id)
            check(run["status"] == "RUNNING", run["status"])
            check(srv.proc.poll() is None, "server died")

            os.unlink(filler)
            got = None
            for _ in range(20):  # the writer retries at most every 2 s
                st, body = srv.json(
                    "POST", "/runs/%s/heartbeat" % run_id,
                    {"task_states": {"t": "RUNNING"}, "run_status": "RUNNING",
                     "logs": []}, timeout=10)
                if st == 200:
                    got = body
                    break
                check(st == 503, st, body)
                time.sleep(0.2)
            check(got is not None, "writes did not recover after freeing space")
            srv.wait_log(r"\[storage\].*succeed again")
            ok(srv, "POST", "/runs/%s/heartbeat" % run_id,
               {"task_states": {"t": "SUCCEEDED"}, "run_status": "COMPLETED"})
        finally:
            rc = srv.stop()
        check(rc == 0, "exit status", rc, srv.log())

        with storage_server(workdir, storage={"path": db}) as srv2:
            run = ok(srv2, "GET", "/runs/" + run_id)
            check(run["status"] == "COMPLETED", run["status"])
            texts = [e["text"] for e in run["logs"]]
            check(texts == sent, "stored lines differ from the lines sent",
                  len(texts), len(sent))
    finally:
        subprocess.run(["umount", "-l", mnt])


if __name__ == "__main__":
    require_plugins("storage", "rest")
    run_tests(globals())
