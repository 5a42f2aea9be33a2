"""A real Prometheus server scrapes /metrics through the auth plugin: one
job with basic_auth (the password from a password_file), one with a bearer
key holding the metrics role, and one with a wrong password, which must be
down with a 401. Exits 77 (skipped) when /usr/bin/prometheus is absent."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import check, free_port, run_tests  # noqa: E402
from auth_helpers import auth_server, keys_block, new_key, sha  # noqa: E402

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

JOB = """  - job_name: %(name)s
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs: [{targets: ['127.0.0.1:%(port)d']}]
%(auth)s
"""


def prometheus_config(d, port, password, key):
    def f(name, text):
        path = os.path.join(d, name)
        with open(path, "w") as fh:
            fh.write(text)
        return path
    good = f("good.pw", password)
    bad = f("bad.pw", password + "x")
    tok = f("key", key)
    jobs = [
        ("basic_ok", "    basic_auth: {username: prom, password_file: %s}" % good),
        ("bearer_ok", "    authorization: {type: Bearer, credentials_file: %s}" % tok),
        ("basic_bad", "    basic_auth: {username: prom, password_file: %s}" % bad),
    ]
    text = "global:\n  scrape_interval: 1s\nscrape_configs:\n" + "".join(
        JOB % {"name": n, "port": port, "auth": a} for n, a in jobs)
    return f("prometheus.yml", text)


def targets(port):
    url = "http://127.0.0.1:%d/api/v1/targets" % port
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    return {t["labels"]["job"]: t for t in body["data"]["activeTargets"]}


def test_prometheus_scrapes_with_basic_auth_and_bearer():
    password = "pw-" + new_key()
    mkey = new_key()
    block = {"keys": keys_block({"metrics": mkey}),
             "metrics_basic_auth": {"username": "prom",
                                    "password_sha256": sha(password)}}
    with auth_server(block, prometheus=True) as srv:
        d = tempfile.mkdtemp(prefix="pyoco-auth-prom-")
        cfg = prometheus_config(d, srv.port, password, mkey)
        pport = free_port()
        logf = open(os.path.join(d, "prometheus.log"), "w+")
        proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(d, "data"),
             "--web.listen-address=127.0.0.1:%d" % pport, "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
            cwd=d)
        try:
            deadline, last = time.time() + 60, None
            while time.time() < deadline:
                check(proc.poll() is None, "prometheus exited")
                try:
                    last = targets(pport)
                except OSError:
                    last = None
                if (last and len(last) == 3
                        and last["basic_ok"]["health"] == "up"
                        and last["bearer_ok"]["health"] == "up"
                        and last["basic_bad"]["health"] == "down"):
                    break
                time.sleep(0.5)
            else:
                logf.seek(0)
                check(False, "targets never settled", last, logf.read())
            check("401" in last["basic_bad"]["lastError"], last["basic_bad"])
            check(last["basic_ok"]["lastError"] == "", last["basic_ok"])
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            logf.close()
        # The server saw the refused scrapes; no secret reached its log.
        log = srv.log()
        check("denied GET /metrics from 127.0.0.1: invalid username or "
              "password" in log, log)
        check(password not in log and mkey not in log, "a secret was logged")
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if not os.path.exists(PROMETHEUS):
        print("prometheus not installed: skipped")
        sys.exit(77)
    run_tests(globals())
