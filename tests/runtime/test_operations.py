"""Operating the server: stuck runs (assignment lease, heartbeat timeout)
and SIGHUP reload, against the real binary over real HTTP."""
import json
import os
import signal
import time

from pyoco_test import PLUGIN_DIR, Server, check, run_tests, to_yaml

FX = os.environ.get("PYOCO_FIXTURE_DIR", "build/tests/fixtures")


def wait_for(fn, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def submit(srv, flow="demo"):
    st, body = srv.json("POST", "/runs", {"flow_name": flow, "params": {}})
    check(st == 200, st, body)
    return body["run_id"]


def test_assignment_lease_requeues():
    with Server(plugins={"rest": {}}, config={"registry": {"assignment_lease": 0.5}}) as srv:
        rid = submit(srv)
        st, got = srv.json("POST", "/workers/poll", {"worker_id": "w1"})
        check(got["run_id"] == rid, got)
        st, got = srv.json("POST", "/workers/poll", {"worker_id": "w2"})
        check(got["run_id"] is None, got)
        # w1 never sends a heartbeat: the run goes back and w2 gets it
        got = wait_for(lambda: srv.json("POST", "/workers/poll", {"worker_id": "w2"})[1]
                       .get("run_id"), what="the run to come back")
        check(got == rid, got)
        st, run = srv.json("GET", "/runs/" + rid)
        md = run["metadata"]
        check(md["worker_id"] == "w2" and md["requeued"] == 1, md)
        check(md["lease_expired_worker_id"] == "w1", md)
        check(run["status"] == "PENDING", run)
        # a heartbeat ends the lease: it is not handed out again
        st, _ = srv.json("POST", "/runs/%s/heartbeat" % rid,
                         {"task_states": {}, "run_status": "RUNNING"})
        check(st == 200, st)
        time.sleep(1.0)
        st, got = srv.json("POST", "/workers/poll", {"worker_id": "w3"})
        check(got["run_id"] is None, got)


def test_heartbeat_timeout_fails_run():
    with Server(plugins={"rest": {}, "prometheus": {}},
                config={"registry": {"heartbeat_timeout": 0.5}}) as srv:
        rid = submit(srv)
        srv.json("POST", "/workers/poll", {"worker_id": "w1"})
        srv.json("POST", "/runs/%s/heartbeat" % rid,
                 {"task_states": {"t1": "RUNNING"}, "run_status": "RUNNING"})
        run = wait_for(lambda: (lambda r: r if r["status"] == "FAILED" else None)(
            srv.json("GET", "/runs/" + rid)[1]), what="the run to fail")
        check("heartbeat timeout" in run["metadata"]["failure_reason"], run)
        check(run["end_time"] is not None and run["run_duration_ms"] > 0, run)
        st, h, text = srv.request("GET", "/metrics")
        text = text.decode()
        check('pyoco_runs_total{status="FAILED"} 1.0' in text, text)
        check("pyoco_runs_in_progress 0.0" in text, text)


def write_config(srv, cfg):
    with open(srv.config_path, "w") as f:
        f.write(to_yaml(cfg))


def test_sighup_reload():
    base = {"plugin_path": [FX, os.path.abspath(PLUGIN_DIR)],
            "registry": {"max_run_history": 50},
            "plugins": {"rest": {}, "fx_ok": {"greeting": "one"}}}
    srv = Server(config_text=to_yaml(base)).start()
    try:
        check(srv.json("GET", "/fx/hello")[1] == {"greeting": "one"}, "before")
        # a plugin with a reload hook takes its new block
        cfg = json.loads(json.dumps(base))
        cfg["plugins"]["fx_ok"]["greeting"] = "two"
        cfg["registry"]["heartbeat_timeout"] = 0.5
        write_config(srv, cfg)
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"reload: .*pyoco.yaml re-read")
        check(srv.json("GET", "/fx/hello")[1] == {"greeting": "two"}, srv.log())
        srv.wait_log(r"\[fx_ok\] fx_ok reload")
        # the new registry limit is live: a silent run now times out
        rid = submit(srv)
        srv.json("POST", "/workers/poll", {"worker_id": "w"})
        srv.json("POST", "/runs/%s/heartbeat" % rid, {"task_states": {}, "run_status": "RUNNING"})
        wait_for(lambda: srv.json("GET", "/runs/" + rid)[1]["status"] == "FAILED",
                 what="timeout after reload")
        # a refused block keeps the old one
        cfg["plugins"]["fx_ok"] = {"greeting": "three", "times": -1}
        write_config(srv, cfg)
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"fx_ok refused the reload: times must not be negative")
        check(srv.json("GET", "/fx/hello")[1] == {"greeting": "two"}, "kept")
        # a broken file changes nothing and the server keeps serving
        with open(srv.config_path, "w") as f:
            f.write("server: {port: [\n")
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"reload failed, keeping the running configuration")
        check(srv.json("GET", "/fx/hello")[1] == {"greeting": "two"}, "still")
        # what cannot change live is said
        cfg["plugins"]["fx_ok"] = {"greeting": "two"}
        cfg["server"] = {"port": 1}
        write_config(srv, cfg)
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"server.host/server.port changed; that needs a restart")
        check(srv.json("GET", "/fx/hello")[0] == 200, "serving")
    finally:
        rc = srv.stop()
    check(rc == 0, rc, srv.log())


if __name__ == "__main__":
    run_tests(globals())
