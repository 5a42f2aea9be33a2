"""Helpers shared by the auth plugin's runtime tests."""
import base64
import hashlib
import http.client
import json
import os
import secrets

from pyoco_test import Server, check

ROLES = ("worker", "submitter", "reader", "metrics", "admin")


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def new_key():
    return "pk_" + secrets.token_urlsafe(24)


def role_keys():
    """One fresh key per role, named after the role: {role: key}."""
    return {r: new_key() for r in ROLES}


def keys_block(keys):
    """The `keys` list of the auth block for {name: key} (role = name)."""
    return [{"name": n, "sha256": sha(k), "roles": [n]} for n, k in keys.items()]


def auth_server(auth, prometheus=False, **kw):
    plugins = {"rest": {}, "auth": auth}
    if prometheus:
        plugins["prometheus"] = {}
    return Server(plugins=plugins, **kw)


def hdr(key, form="x-api-key"):
    if key is None:
        return {}
    if form == "bearer":
        return {"Authorization": "Bearer " + key}
    return {"X-API-Key": key}


def basic(user, password):
    tok = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    return {"Authorization": "Basic " + tok}


def call(srv, method, path, obj=None, headers=None):
    """(status, decoded body, list of WWW-Authenticate values)."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        conn.request(method, path, body=None if obj is None else json.dumps(obj),
                     headers=h)
        r = conn.getresponse()
        data = r.read()
        www = r.msg.get_all("WWW-Authenticate") or []
        try:
            body = json.loads(data) if data else None
        except ValueError:
            body = data.decode("utf-8", "replace")
        return r.status, body, www
    finally:
        conn.close()


def ok(srv, key, method, path, obj=None):
    st, body, _ = call(srv, method, path, obj, hdr(key))
    check(st == 200, method, path, "->", st, body)
    return body


def submit(srv, key, flow="demo"):
    return ok(srv, key, "POST", "/runs", {"flow_name": flow})["run_id"]


def refused(block, start_timeout=10):
    """Start with an auth block that must be refused; returns the log."""
    srv = auth_server(block, start_timeout=start_timeout)
    from pyoco_test import CheckFailed
    try:
        srv.start()
    except CheckFailed:
        pass
    else:
        srv.stop()
        check(False, "started with", block)
    finally:
        srv.kill()
    check(srv.proc.returncode not in (0, None), "exit status", srv.proc.returncode)
    return srv.log()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return os.path.abspath(path)
