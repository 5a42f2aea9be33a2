"""Helpers shared by the rest plugin's runtime tests."""
import os

from pyoco_test import Server, check

HERE = os.path.dirname(os.path.abspath(__file__))


def rest_server(**kw):
    """The real binary with only the rest plugin loaded."""
    plugins = kw.pop("plugins", {"rest": {}})
    return Server(plugins=plugins, **kw)


def ok(srv, method, path, obj=None):
    """A request that must answer 200; returns the decoded body."""
    st, body = srv.json(method, path, obj)
    check(st == 200, method, path, "->", st, body)
    return body


def submit(srv, flow="demo", params=None, tags=None):
    req = {"flow_name": flow}
    if params is not None:
        req["params"] = params
    if tags is not None:
        req["tags"] = tags
    body = ok(srv, "POST", "/runs", req)
    check(set(body) == {"run_id", "status"}, body)
    check(body["status"] == "PENDING", body)
    check(isinstance(body["run_id"], str) and len(body["run_id"]) == 36, body)
    return body["run_id"]


def poll(srv, worker="w1", tags=None):
    req = {"worker_id": worker}
    if tags is not None:
        req["tags"] = tags
    body = ok(srv, "POST", "/workers/poll", req)
    check(set(body) == {"run_id", "flow_name", "params"}, body)
    return body


def heartbeat(srv, run_id, run_status, task_states=None, records=None,
              logs=None):
    req = {"task_states": task_states or {}, "run_status": run_status}
    if records is not None:
        req["task_records"] = records
    if logs is not None:
        req["logs"] = logs
    body = ok(srv, "POST", "/runs/%s/heartbeat" % run_id, req)
    check(set(body) == {"cancel_requested"}, body)
    check(isinstance(body["cancel_requested"], bool), body)
    return body["cancel_requested"]


def get_run(srv, run_id):
    return ok(srv, "GET", "/runs/" + run_id)


def start_running(srv, flow="demo", params=None, worker="w1"):
    """Submit, poll and first heartbeat: a RUNNING run."""
    run_id = submit(srv, flow, params)
    got = poll(srv, worker)
    check(got["run_id"] == run_id, got, run_id)
    check(heartbeat(srv, run_id, "RUNNING", {"t1": "RUNNING"}) is False)
    return run_id


def check_detail_422(st, body, loc=None):
    """A FastAPI-shaped 422; when loc is given one entry has exactly it."""
    check(st == 422, "status", st, body)
    check(isinstance(body, dict) and isinstance(body.get("detail"), list)
          and body["detail"], body)
    for e in body["detail"]:
        check(set(e) >= {"loc", "msg", "type"}, e)
        check(isinstance(e["loc"], list) and e["loc"], e)
        check(isinstance(e["msg"], str) and isinstance(e["type"], str), e)
    if loc is not None:
        locs = [e["loc"] for e in body["detail"]]
        check(loc in locs, "expected loc", loc, "in", locs)

