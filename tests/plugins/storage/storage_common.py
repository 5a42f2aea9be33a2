"""Helpers shared by the storage plugin's runtime tests: the real binary
with the storage and rest plugins, talked to over real HTTP."""
import os
import subprocess
import sys

from pyoco_test import BIN, PLUGIN_DIR, Server, check, to_yaml

SKIP = 77  # ctest SKIP_RETURN_CODE


def require_plugins(*names):
    """Exit with SKIP (reported by ctest as skipped, with the reason) when a
    plugin these tests drive is not built in this tree."""
    missing = [n for n in names
               if not os.path.exists(os.path.join(PLUGIN_DIR, n + ".so"))]
    if missing:
        print("SKIP: plugin(s) %s not built in %s" % (", ".join(missing),
                                                     PLUGIN_DIR))
        sys.exit(SKIP)


def storage_server(workdir, storage=None, env=None, rest=True, **kw):
    plugins = {"storage": dict({"path": "runs.db"}, **(storage or {}))}
    if rest:
        plugins["rest"] = {}
    return Server(plugins=plugins, workdir=workdir, env=env, **kw)


def ok(srv, method, path, obj=None, timeout=10.0):
    st, body = srv.json(method, path, obj, timeout=timeout)
    check(st == 200, method, path, "->", st, body)
    return body


def submit(srv, flow="demo", params=None, tags=None):
    req = {"flow_name": flow, "params": params or {}}
    if tags is not None:
        req["tags"] = tags
    return ok(srv, "POST", "/runs", req)["run_id"]


def poll(srv, worker="w1", tags=None):
    return ok(srv, "POST", "/workers/poll",
              {"worker_id": worker, "tags": tags or []})["run_id"]


def heartbeat(srv, run_id, status, states=None, records=None, logs=None):
    return ok(srv, "POST", "/runs/%s/heartbeat" % run_id,
              {"task_states": states or {}, "task_records": records or {},
               "logs": logs or [], "run_status": status})


def log_entry(seq, text, task="t1", stream="stdout", ts=None):
    e = {"seq": seq, "task": task, "stream": stream, "text": text}
    if ts is not None:
        e["timestamp"] = ts
    return e


STATUSES = {"PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLING",
            "CANCELLED"}
NUM = (int, float)


def check_run_typed(run):
    """A GET /runs/{id} object with every field of the right type."""
    check(isinstance(run, dict), run)
    check(isinstance(run.get("run_id"), str) and len(run["run_id"]) == 36, run)
    check(isinstance(run.get("flow_name"), str) and run["flow_name"], run)
    check(isinstance(run.get("params"), dict), run)
    check(run.get("status") in STATUSES, run)
    check(isinstance(run.get("start_time"), NUM), run)
    check(run.get("end_time") is None or isinstance(run["end_time"], NUM), run)
    check(isinstance(run.get("tasks"), dict), run)
    check(all(isinstance(v, str) for v in run["tasks"].values()), run)
    check(isinstance(run.get("task_records"), dict), run)
    check(all(isinstance(v, dict) for v in run["task_records"].values()), run)
    check(isinstance(run.get("logs"), list), run)
    for e in run["logs"]:
        check(isinstance(e, dict) and isinstance(e.get("text"), str) and
              isinstance(e.get("seq"), int), e)
    check(isinstance(run.get("metadata"), dict), run)
    check(run.get("run_duration_ms") is None or
          isinstance(run["run_duration_ms"], NUM), run)
    check(isinstance(run.get("task_summary"), dict), run)


def write_config(workdir, plugins):
    path = os.path.join(workdir, "pyoco.yaml")
    with open(path, "w") as f:
        f.write(to_yaml({"plugin_path": [os.path.abspath(PLUGIN_DIR)],
                         "plugins": plugins}))
    return path


def start_must_fail(workdir, plugins, wrapper=(), timeout=20):
    """Run `pyoco server start` and expect it to refuse: non-zero exit, no
    listener. Returns the combined output."""
    cfg = write_config(workdir, plugins)
    cmd = list(wrapper) + [BIN, "server", "start", "--config", cfg,
                           "--host", "127.0.0.1", "--port", "0"]
    p = subprocess.run(cmd, cwd=workdir, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    check(p.returncode != 0, "server started but should not have:", out)
    check("listening on" not in out, "a listener was opened:", out)
    return out
