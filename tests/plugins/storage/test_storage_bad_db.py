"""A database the server must not use: it refuses to start (non-zero exit,
no listener) with a message naming the file, and leaves the file alone.
Cases: owned by a running server, read-only file, garbage, a newer schema,
a directory that does not exist, a bad setting."""
import os
import shutil
import signal
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import check, run_tests  # noqa: E402
from storage_common import (ok, require_plugins, start_must_fail,  # noqa: E402
                            storage_server, submit)


def _plugins(path, **extra):
    return {"storage": dict({"path": path}, **extra), "rest": {}}


def _tmp(tag):
    return tempfile.mkdtemp(prefix="pyoco-storage-bad-%s-" % tag)


def test_locked_by_running_server():
    d1, d2 = _tmp("lock1"), _tmp("lock2")
    db = os.path.join(d1, "runs.db")
    with storage_server(d1, storage={"path": db}) as srv:
        run_id = submit(srv, "first")
        out = start_must_fail(d2, _plugins(db))
        check("in use by another server" in out and db in out, out)
        # the first server is unaffected
        check(ok(srv, "GET", "/runs/" + run_id)["flow_name"] == "first")
    # once it is gone the database is free again
    with storage_server(d2, storage={"path": db}) as srv:
        check(ok(srv, "GET", "/runs/" + run_id)["flow_name"] == "first")


def test_read_only_file():
    d = _tmp("ro")
    with storage_server(d) as srv:
        submit(srv)
    db = os.path.join(d, "runs.db")
    os.chmod(db, 0o444)
    wrapper = ()
    if os.geteuid() == 0:
        # root writes read-only files anyway: run the server as nobody
        setpriv = shutil.which("setpriv")
        check(setpriv is not None, "setpriv is needed to drop root")
        wrapper = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
        os.chmod(d, 0o777)
        os.chmod(db + ".lock", 0o666)
    before = open(db, "rb").read()
    out = start_must_fail(d, _plugins("runs.db"), wrapper=wrapper)
    check("read-only" in out and "runs.db" in out, out)
    check(open(db, "rb").read() == before, "the file was modified")


def test_garbage_file():
    d = _tmp("garbage")
    db = os.path.join(d, "runs.db")
    junk = b"this is not a database\n" * 500
    with open(db, "wb") as f:
        f.write(junk)
    out = start_must_fail(d, _plugins("runs.db"))
    check("file is not a database" in out and "runs.db" in out, out)
    check(open(db, "rb").read() == junk, "the file was modified")


def test_newer_schema():
    d = _tmp("newer")
    db = os.path.join(d, "runs.db")
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, future BLOB)")
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    out = start_must_fail(d, _plugins("runs.db"))
    check("database schema v99 is newer than this server (v1)" in out, out)
    check("runs.db" in out, out)
    con = sqlite3.connect(db)
    check(con.execute("PRAGMA user_version").fetchone()[0] == 99)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    con.close()
    check("schema_migrations" not in names, names)


def test_missing_directory_and_bad_settings():
    d = _tmp("dir")
    out = start_must_fail(d, _plugins("no/such/dir/runs.db"))
    check("no/such/dir/runs.db" in out and "lock file" in out, out)
    out = start_must_fail(d, _plugins("runs.db", synchronous="SOMETIMES"))
    check("synchronous" in out and "SOMETIMES" in out, out)
    out = start_must_fail(d, _plugins("runs.db", batch_max=0))
    check("batch_max" in out, out)
    out = start_must_fail(d, _plugins("runs.db", unknown_key=1))
    check("unknown_key" in out, out)


def test_clean_restart_after_sigkill_keeps_lock_usable():
    # a crashed owner leaves the lock file behind: flock locks die with the
    # process, so the next start must not be refused
    d = _tmp("crash")
    srv = storage_server(d).start()
    run_id = submit(srv)
    srv.stop(signal.SIGKILL)
    check(os.path.exists(os.path.join(d, "runs.db.lock")))
    with storage_server(d) as srv:
        ok(srv, "GET", "/runs/" + run_id)


if __name__ == "__main__":
    require_plugins("storage", "rest")
    run_tests(globals())
