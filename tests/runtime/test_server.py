"""The real `pyoco` binary: start-up with a fixture plugin that adds routes,
real HTTP answers, the core's 404/405, graceful shutdown, and every kind of
start-up failure (bad config, bad plugin) giving a clear message and a
non-zero exit with nothing listening."""
import json
import os
import signal
import subprocess
import tempfile

from pyoco_test import BIN, Server, check, run_tests

FX = os.environ.get("PYOCO_FIXTURE_DIR", "build/tests/fixtures")


def fx_server(block=None, **kw):
    cfg = {"plugin_path": [FX]}
    return Server(config=cfg, plugins={"fx_ok": block or {}}, **kw)


def run_cli(args, cwd=None, env=None, timeout=20):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN] + args, cwd=cwd, env=e, capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def test_fixture_route_over_http():
    with fx_server({"greeting": "hi from yaml"}) as srv:
        st, body = srv.json("GET", "/fx/hello")
        check(st == 200, st, body)
        check(body == {"greeting": "hi from yaml"}, body)
        # the plugin saw the server_started event on the bus
        st, body = srv.json("GET", "/fx/count")
        check(st == 200 and body["events"] >= 1, body)
        srv.wait_log(r"\[fx_ok\] fx_ok start")


def test_env_overrides_plugin_key():
    with fx_server({"greeting": "from yaml"}, env={"FX_GREETING": "from env"}) as srv:
        st, body = srv.json("GET", "/fx/hello")
        check(body == {"greeting": "from env"}, body)


def test_unknown_route_and_method():
    with fx_server() as srv:
        st, h, data = srv.request("GET", "/nope")
        check(st == 404, st)
        check(h.get("content-type", "").startswith("application/json"), h)
        check(json.loads(data) == {"detail": "Not Found"}, data)
        st, h, data = srv.request("POST", "/fx/hello", body="{}")
        check(st == 405, st, data)
        check(json.loads(data)["detail"] == "Method Not Allowed", data)
        check("GET" in h.get("allow", ""), h)
        # still serving
        st, _ = srv.json("GET", "/fx/hello")
        check(st == 200, st)


def test_body_over_limit_is_413_json():
    with Server(config={"plugin_path": [FX], "server": {"max_body_bytes": 100}},
                plugins={"fx_ok": {}}) as srv:
        st, h, data = srv.request("GET", "/fx/hello", body="a" * 101)
        check(st == 413, st, data)
        check("limit is 100" in json.loads(data)["detail"], data)
        # far over the limit: libevent's own hard stop, still a 413
        st, h, data = srv.request("GET", "/fx/hello", body="a" * 100000)
        check(st == 413, st)
        st, h, data = srv.request("GET", "/fx/hello", body="a" * 100)
        check(st == 200, st, data)


def test_sigterm_and_sigint_exit_zero():
    for sig in (signal.SIGTERM, signal.SIGINT):
        srv = fx_server().start()
        st, _ = srv.json("GET", "/fx/hello")
        check(st == 200, st)
        rc = srv.stop(sig)
        check(rc == 0, "exit status", rc, srv.log())
        log = srv.log()
        # lifecycle: stop and fini ran, in that order
        check(log.index("fx_ok stop") < log.index("fx_ok fini"), log)


def expect_start_failure(config_text, *must_contain, env=None, code=None):
    d = tempfile.mkdtemp(prefix="pyoco-bad-")
    path = os.path.join(d, "pyoco.yaml")
    with open(path, "w") as f:
        f.write(config_text)
    rc, out, err = run_cli(["server", "start", "--config", path, "--host",
                            "127.0.0.1", "--port", "0"], cwd=d, env=env)
    check(rc != 0, "should not start", out, err)
    if code is not None:
        check(rc == code, "exit code", rc, err)
    check("listening on" not in err, "must not listen", err)
    for m in must_contain:
        check(m.replace("$CFG", path) in err, "message lacks", m, err)
    return err


def test_bad_configs_refuse_to_start():
    expect_start_failure("server:\n  port: [1, 2]\n", "$CFG:2", "server.port", code=2)
    expect_start_failure("sever:\n  port: 1\n", "$CFG:1", "sever", code=2)
    expect_start_failure("server: {port: 80\n", "$CFG", "YAML", code=2)
    expect_start_failure(
        "plugin_path: [%s]\nplugins:\n  fx_ok:\n    times: lots\n" % json.dumps(FX),
        "$CFG:4", "times", code=1)
    expect_start_failure(
        "plugin_path: [%s]\nplugins:\n  fx_ok:\n    nosuch: 1\n" % json.dumps(FX),
        "$CFG:4", "nosuch", code=1)
    rc, out, err = run_cli(["server", "start", "--config", "/nonexistent/pyoco.yaml"])
    check(rc == 2 and "/nonexistent/pyoco.yaml" in err, rc, err)


def test_bad_plugins_refuse_to_start():
    base = "plugin_path: [%s]\nplugins:\n" % json.dumps(FX)
    expect_start_failure(base + "  missing_one: {}\n", "missing_one", "not found")
    expect_start_failure(base + "  fx_garbage: {}\n", "fx_garbage.so",
                         "cannot load as a shared object")
    expect_start_failure(base + "  fx_noentry: {}\n", "fx_noentry.so", "missing symbol")
    expect_start_failure(base + "  fx_badabi: {}\n", "fx_badabi.so", "ABI mismatch")
    # a good plugin before a failing one is unloaded again (fini runs)
    err = expect_start_failure(base + "  fx_ok: {}\n  fx_initfail: {}\n",
                               "fx_initfail.so", "boom")
    check("fx_ok fini" in err, err)


def test_bad_env_value_refuses_to_start():
    expect_start_failure("{}\n", "PYOCO_MAX_LOG_BYTES",
                         env={"PYOCO_MAX_LOG_BYTES": "lots"}, code=2)


def test_cli_version_help_usage():
    rc, out, _ = run_cli(["--version"])
    check(rc == 0 and out.startswith("pyoco ") and "ABI" in out, out)
    rc, out, _ = run_cli(["--help"])
    check(rc == 0 and "server start" in out, out)
    rc, _, err = run_cli(["frobnicate"])
    check(rc == 2 and "unknown command" in err, err)
    rc, _, err = run_cli(["server", "start", "--port", "99999"])
    check(rc == 2 and "--port" in err, err)


def test_plugins_list():
    d = tempfile.mkdtemp(prefix="pyoco-list-")
    path = os.path.join(d, "pyoco.yaml")
    with open(path, "w") as f:
        f.write("plugin_path: [%s]\n" % json.dumps(FX))
    rc, out, err = run_cli(["plugins", "list", "--config", path, "--json"])
    found = {p["name"]: p for p in json.loads(out)}
    check("fx_ok" in found, out)
    fx = found["fx_ok"]
    check(fx["version"] == "1.2.3" and fx["abi"].startswith("1."), fx)
    keys = {k["name"]: k for k in fx["config_keys"]}
    check(keys["greeting"]["type"] == "string" and keys["greeting"]["default"] == "hello", keys)
    check(keys["greeting"]["env"] == "FX_GREETING", keys)
    # the broken fixtures are reported, not listed, and the exit status says so
    check(rc == 1 and "fx_badabi" in err and "fx_badabi" not in found, rc, err)
    rc, out, _ = run_cli(["plugins", "list", "--config", path])
    check("fx_ok 1.2.3" in out and "greeting" in out, out)


if __name__ == "__main__":
    run_tests(globals())
