"""The auth plugin in the real binary (rest + auth (+ prometheus)) over real
HTTP: each role on each route, both header forms, 401/403 answers and their
headers, /health open, basic auth on /metrics, key_file, bad configuration,
that refused requests change no state, logging and the outcome counter."""
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import PLUGIN_DIR, check, run_tests, to_yaml  # noqa: E402
from auth_helpers import (ROLES, auth_server, basic, call, hdr,  # noqa: E402
                          keys_block, new_key, ok, refused, role_keys, sha,
                          submit, write)

# (method, path template, body, roles allowed besides admin)
ROUTES = (
    ("POST", "/runs", {"flow_name": "demo"}, {"submitter"}),
    ("GET", "/runs", None, {"reader"}),
    ("GET", "/runs/{id}", None, {"reader"}),
    ("GET", "/runs/{id}/logs", None, {"reader"}),
    ("POST", "/runs/{id}/cancel", None, {"submitter"}),
    ("POST", "/workers/poll", {"worker_id": "w1"}, {"worker"}),
    ("POST", "/runs/{id}/heartbeat",
     {"task_states": {"t1": "RUNNING"}, "run_status": "RUNNING"}, {"worker"}),
    ("GET", "/metrics", None, {"metrics"}),
    ("GET", "/health", None, set(ROLES)),
)


def test_each_role_on_each_route_both_header_forms():
    keys = role_keys()
    with auth_server({"keys": keys_block(keys)}, prometheus=True) as srv:
        for method, tmpl, body, allowed in ROUTES:
            for role in ROLES:
                for form in ("x-api-key", "bearer"):
                    rid = submit(srv, keys["admin"])
                    path = tmpl.replace("{id}", rid)
                    st, got, www = call(srv, method, path, body,
                                        hdr(keys[role], form))
                    if role == "admin" or role in allowed:
                        check(st == 200, role, form, method, path, st, got)
                    else:
                        need = next(iter(allowed))
                        check(st == 403, role, form, method, path, st, got)
                        check(got == {"detail": "key '%s' lacks the '%s' right"
                                      % (role, need)}, got)
                        check(www == [], "no challenge on 403", www)


def test_unknown_and_missing_credentials_401():
    keys = role_keys()
    with auth_server({"keys": keys_block(keys)}) as srv:
        rid = submit(srv, keys["submitter"])
        cases = (
            ("wrong key", hdr(new_key())),
            ("wrong key as bearer", hdr(new_key(), "bearer")),
            ("key with one character changed", hdr(keys["reader"][:-1] + (
                "A" if keys["reader"][-1] != "A" else "B"))),
            ("the digest instead of the key", hdr(sha(keys["reader"]))),
            ("no header", {}),
            ("empty X-API-Key", {"X-API-Key": ""}),
            ("empty bearer", {"Authorization": "Bearer "}),
            ("other scheme", {"Authorization": "Token " + keys["reader"]}),
            ("basic off the metrics path", basic("reader", keys["reader"])),
        )
        for what, h in cases:
            st, body, www = call(srv, "GET", "/runs/" + rid, None, h)
            check(st == 401, what, st, body)
            check(isinstance(body, dict) and isinstance(body.get("detail"), str)
                  and body["detail"], what, body)
            check(www == ["Bearer"], what, www)
        # /health stays open without a key, and with a wrong one.
        for h in ({}, hdr(new_key())):
            st, body, _ = call(srv, "GET", "/health", None, h)
            check(st == 200, "health", h, st, body)


def test_refused_requests_change_no_state():
    keys = role_keys()
    with auth_server({"keys": keys_block(keys)}) as srv:
        rid = submit(srv, keys["admin"])
        before = ok(srv, keys["admin"], "GET", "/runs")
        hb = {"task_states": {"t1": "RUNNING"}, "run_status": "RUNNING"}
        attempts = (
            ("POST", "/runs", {"flow_name": "sneaky"}),
            ("POST", "/runs/%s/cancel" % rid, None),
            ("POST", "/workers/poll", {"worker_id": "intruder"}),
            ("POST", "/runs/%s/heartbeat" % rid, hb),
        )
        for method, path, body in attempts:
            for h in ({}, hdr(new_key()), hdr(keys["reader"]),
                      hdr(keys["metrics"], "bearer")):
                st, got, _ = call(srv, method, path, body, h)
                check(st in (401, 403), method, path, h, st, got)
        after = ok(srv, keys["admin"], "GET", "/runs")
        check(after == before, "runs changed", before, after)
        run = ok(srv, keys["admin"], "GET", "/runs/" + rid)
        check(run["status"] == "PENDING", run)
        check(not any(r["flow_name"] == "sneaky" for r in after), after)
        # The run is still queued: the first allowed poll gets it.
        got = ok(srv, keys["worker"], "POST", "/workers/poll",
                 {"worker_id": "w1"})
        check(got["run_id"] == rid, got, rid)


def test_metrics_basic_auth_and_counter():
    keys = role_keys()
    block = {"keys": keys_block(keys),
             "metrics_basic_auth": {"username": "prom",
                                    "password_sha256": sha("s3cret:pw")}}
    with auth_server(block, prometheus=True) as srv:
        st, body, _ = call(srv, "GET", "/metrics", None, basic("prom", "s3cret:pw"))
        check(st == 200, st, body)
        check("pyoco_runs_total" in body, body[:200])
        for what, h in (("wrong password", basic("prom", "s3cret:px")),
                        ("wrong user", basic("prometheus", "s3cret:pw")),
                        ("empty password", basic("prom", "")),
                        ("not base64", {"Authorization": "Basic !!!!"}),
                        ("no colon", {"Authorization": "Basic cHJvbQ=="}),
                        ("no credentials", {})):
            st, got, www = call(srv, "GET", "/metrics", None, h)
            check(st == 401, what, st, got)
            check(www == ["Bearer", 'Basic realm="pyoco"'], what, www)
        # The right credentials for /metrics open nothing else.
        st, got, www = call(srv, "GET", "/runs", None, basic("prom", "s3cret:pw"))
        check(st == 401 and www == ["Bearer"], st, got, www)
        # Keys with the metrics right still work there.
        st, _, _ = call(srv, "GET", "/metrics", None, hdr(keys["metrics"], "bearer"))
        check(st == 200, st)
        # One forbidden request, then read the counter.
        st, _, _ = call(srv, "GET", "/metrics", None, hdr(keys["reader"]))
        check(st == 403, st)
        st, text, _ = call(srv, "GET", "/metrics", None, hdr(keys["admin"]))
        check(st == 200, st)
        counts = {}
        for m in re.finditer(r'^pyoco_auth_requests_total\{outcome="(\w+)"\} (\S+)$',
                             text, re.M):
            counts[m.group(1)] = float(m.group(2))
        # allowed: basic ok, metrics key; the admin scrape is counted
        # before it renders, so it is in its own output too.
        check(counts == {"allowed": 3.0, "unauthenticated": 7.0,
                         "forbidden": 1.0}, counts, text[-2000:])


def test_key_file_and_inline_keys_together():
    d = tempfile.mkdtemp(prefix="pyoco-auth-")
    wk, ro, inline = new_key(), new_key(), new_key()
    path = write(os.path.join(d, "keys.txt"),
                 "# pyoco API keys: name sha256 roles\n"
                 "\n"
                 "ci-worker   %s   worker\n"
                 "dash %s reader,metrics   # the dashboard\n" % (sha(wk), sha(ro)))
    block = {"keys": [{"name": "ops", "sha256": sha(inline).upper(),
                       "roles": ["submitter", "reader"]}],
             "key_file": path}
    with auth_server(block, prometheus=True) as srv:
        rid = submit(srv, inline)
        check(ok(srv, ro, "GET", "/runs/" + rid)["status"] == "PENDING")
        st, _, _ = call(srv, "GET", "/metrics", None, hdr(ro, "bearer"))
        check(st == 200, st)
        got = ok(srv, wk, "POST", "/workers/poll", {"worker_id": "w1"})
        check(got["run_id"] == rid, got)
        st, body, _ = call(srv, "POST", "/runs", {"flow_name": "x"}, hdr(wk))
        check(st == 403 and body == {"detail": "key 'ci-worker' lacks the "
                                     "'submitter' right"}, st, body)
        st, body, _ = call(srv, "POST", "/workers/poll", {"worker_id": "w"},
                           hdr(inline))
        check(st == 403 and body == {"detail": "key 'ops' lacks the 'worker' "
                                     "right"}, st, body)


def test_bad_config_refused_naming_file_line_and_key():
    good = sha("k")
    cases = (
        ({"keys": [{"name": "a", "sha256": "zz" * 32, "roles": ["reader"]}]},
         r"pyoco\.yaml:\d+: plugins\.auth\.keys\[0\]: key 'a': sha256"),
        ({"keys": [{"name": "a", "sha256": good[:-2], "roles": ["reader"]}]},
         r"pyoco\.yaml:\d+: plugins\.auth\.keys\[0\]: key 'a': sha256"),
        ({"keys": [{"name": "a", "sha256": good, "roles": ["reader"]},
                   {"name": "b", "sha256": sha("j"), "roles": ["wroker"]}]},
         r"pyoco\.yaml:\d+: plugins\.auth\.keys\[1\]: key 'b': roles\[0\]: "
         r"unknown role 'wroker'"),
        ({"keys": [{"name": "a", "sha256": good, "roles": ["reader"]},
                   {"name": "a", "sha256": sha("j"), "roles": ["admin"]}]},
         r"pyoco\.yaml:\d+: plugins\.auth\.keys\[1\]: key 'a': duplicate name"),
        ({"keys": [{"name": "a", "sha256": good, "roles": []}]},
         r"plugins\.auth\.keys\[0\]: key 'a': roles"),
        ({"keys": [{"name": "a", "key": "plaintext", "roles": ["admin"]}]},
         r"plugins\.auth\.keys\[0\]: unknown key 'key'"),
        ({"metrics_basic_auth": {"username": "p", "password_sha256": "nothex"}},
         r"pyoco\.yaml:\d+: plugins\.auth\.metrics_basic_auth: password_sha256"),
        ({"open_routes": ["health"]}, r"pyoco\.yaml:\d+: plugins\.auth\.open_routes"),
        ({"metrics_path": "metrics"}, r"pyoco\.yaml:\d+: plugins\.auth\.metrics_path"),
        ({"bogus": 1}, r"plugins\.auth\.bogus"),
    )
    for block, want in cases:
        log = refused(block)
        check(re.search(want, log), block, want, log)
    d = tempfile.mkdtemp(prefix="pyoco-auth-")
    kf = write(os.path.join(d, "keys.txt"),
               "# header\nok %s reader\nbad %s reader,wizard\n" % (good, sha("x")))
    log = refused({"key_file": kf})
    check(re.search(r"plugins\.auth\.key_file: .*keys\.txt:3: key 'bad': "
                    r"unknown role 'wizard'", log), log)
    kf2 = write(os.path.join(d, "dup.txt"), "a %s reader\n" % sha("y"))
    log = refused({"keys": [{"name": "a", "sha256": good, "roles": ["admin"]}],
                   "key_file": kf2})
    check(re.search(r"dup\.txt:1: key 'a': duplicate name", log), log)
    log = refused({"key_file": os.path.join(d, "missing.txt")})
    check("missing.txt: cannot open key file" in log, log)


def test_disabled_lets_everything_through():
    with auth_server({"enabled": False, "keys": keys_block(role_keys())}) as srv:
        rid = submit(srv, None)
        got = ok(srv, None, "POST", "/workers/poll", {"worker_id": "w1"})
        check(got["run_id"] == rid, got, rid)
        check(ok(srv, None, "GET", "/runs/" + rid)["run_id"] == rid)
        srv.wait_log(r"WARN\s+\[auth\] disabled")


def test_open_routes_configurable():
    keys = role_keys()
    with auth_server({"keys": keys_block(keys),
                      "open_routes": ["/runs/{run_id}"]}) as srv:
        rid = submit(srv, keys["submitter"])
        st, body, _ = call(srv, "GET", "/runs/" + rid)
        check(st == 200 and body["run_id"] == rid, st, body)
        st, _, _ = call(srv, "GET", "/health")  # no longer in the list
        check(st == 401, st)
        st, _, _ = call(srv, "GET", "/runs")
        check(st == 401, st)


def test_denials_logged_rate_limited_without_keys():
    keys = role_keys()
    with auth_server({"keys": keys_block(keys)}) as srv:
        bad = new_key()
        st, _, _ = call(srv, "POST", "/workers/poll", {"worker_id": "w"},
                        hdr(keys["reader"]))
        check(st == 403, st)
        srv.wait_log(r"WARN\s+\[auth\] denied POST /workers/poll from 127\.0\.0\.1: "
                     r"key 'reader' lacks the 'worker' right")
        t0 = time.time()
        n = 40
        for i in range(n):
            st, _, _ = call(srv, "GET", "/runs", None, hdr(bad, "bearer"))
            check(st == 401, st)
        elapsed = time.time() - t0
        srv.stop()
        log = srv.log()
        denied = [l for l in log.splitlines() if "[auth] denied" in l]
        # At most one line a second (plus the first one above).
        check(len(denied) <= 2 + int(elapsed), len(denied), elapsed, denied)
        check(len(denied) < n, len(denied))
        for k in list(keys.values()) + [bad]:
            check(k not in log, "a key was logged", log)


def _rewrite(srv, auth_block):
    cfg = {"plugin_path": [os.path.abspath(PLUGIN_DIR)],
           "plugins": {"rest": {}, "auth": auth_block}}
    with open(srv.config_path, "w") as f:
        f.write(to_yaml(cfg))


def _hup_and_wait(srv, pattern):
    """SIGHUP, then wait for the n-th line matching pattern (n = seen + 1)."""
    rx = re.compile(pattern)
    seen = sum(1 for l in srv.log().splitlines() if rx.search(l))
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 20
    while time.time() < deadline:
        if sum(1 for l in srv.log().splitlines() if rx.search(l)) > seen:
            return
        time.sleep(0.02)
    check(False, "no new log line matching", pattern, srv.log())


def test_sighup_reloads_inline_keys_and_keeps_them_on_error():
    k1, k2 = new_key(), new_key()
    with auth_server({"keys": keys_block({"reader": k1})}) as srv:
        check(call(srv, "GET", "/runs", None, hdr(k1))[0] == 200)
        check(call(srv, "GET", "/runs", None, hdr(k2))[0] == 401)
        _rewrite(srv, {"keys": [{"name": "r2", "sha256": sha(k2),
                                 "roles": ["reader"]}]})
        _hup_and_wait(srv, r"reload: plugin auth reloaded with its new block")
        check(call(srv, "GET", "/runs", None, hdr(k2))[0] == 200)
        check(call(srv, "GET", "/runs", None, hdr(k1))[0] == 401)
        # A bad block: refused, naming the key; k2 still works.
        _rewrite(srv, {"keys": [{"name": "r3", "sha256": sha(k1),
                                 "roles": ["reeder"]}]})
        _hup_and_wait(srv, r"plugin auth refused the reload: .*key 'r3': "
                           r"roles\[0\]: unknown role 'reeder'")
        check(call(srv, "GET", "/runs", None, hdr(k2))[0] == 200)
        check(call(srv, "GET", "/runs", None, hdr(k1))[0] == 401)


def test_sighup_rereads_key_file_when_block_unchanged():
    d = tempfile.mkdtemp(prefix="pyoco-auth-")
    k1, k2 = new_key(), new_key()
    kf = write(os.path.join(d, "keys.txt"), "one %s reader\n" % sha(k1))
    with auth_server({"key_file": kf}) as srv:
        check(call(srv, "GET", "/runs", None, hdr(k1))[0] == 200)
        write(kf, "# rotated\ntwo %s reader\n" % sha(k2))
        # the host calls reload on every SIGHUP: the file is re-read
        _hup_and_wait(srv, r"reload: plugin auth reloaded$")
        check(call(srv, "GET", "/runs", None, hdr(k2))[0] == 200)
        check(call(srv, "GET", "/runs", None, hdr(k1))[0] == 401)
        # A broken file: logged with file:line, the previous keys stay.
        write(kf, "two %s reader\nthree nothex reader\n" % sha(k2))
        _hup_and_wait(srv, r"ERROR\s+\[core\] reload: plugin auth refused the "
                           r"reload: .*keys\.txt:2: key 'three': sha256")
        check(call(srv, "GET", "/runs", None, hdr(k2))[0] == 200)
        check(call(srv, "GET", "/runs", None, hdr(k1))[0] == 401)
        # Block and file changed together: one reload reads both.
        k3 = new_key()
        write(kf, "three %s reader\n" % sha(k3))
        _rewrite(srv, {"key_file": kf, "keys": keys_block({"admin": k1})})
        _hup_and_wait(srv, r"reload: plugin auth reloaded with its new block")
        check(call(srv, "GET", "/runs", None, hdr(k3))[0] == 200)
        check(call(srv, "GET", "/runs", None, hdr(k1))[0] == 200)
        check(call(srv, "GET", "/runs", None, hdr(k2))[0] == 401)


if __name__ == "__main__":
    run_tests(globals())
