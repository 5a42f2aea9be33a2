"""The webhook plugin in the real binary: runs driven to a terminal status
over the rest API, notifications received by a python http.server on a free
127.0.0.1 port (or a misbehaving raw socket), and the server checked to stay
alive and responsive throughout."""
import base64
import json
import os
import re
import signal
import time

from pyoco_test import PLUGIN_DIR, Server, check, run_tests, to_yaml
from webhook_helpers import (RawReceiver, Receiver, expected_payload, finish_run,
                             free_port, heartbeat, plugin_available, start_run,
                             verify_signature, webhook_server, whsec_key)

RAW_SECRET = "s3cret-token"
STD_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def ep(name, url, **kw):
    d = {"name": name, "url": url}
    d.update(kw)
    return d


def test_payload_and_headers_for_each_terminal_status():
    with Receiver() as rx:
        eps = [ep("raw", rx.url("/raw"), secret=RAW_SECRET),
               ep("std", rx.url("/std"), secret=STD_SECRET),
               ep("plain", rx.url("/plain")),
               ep("failures", rx.url("/failures"), events=["run.failed"])]
        with webhook_server(eps) as srv:
            runs = {}
            for status, event in (("COMPLETED", "run.completed"),
                                  ("FAILED", "run.failed"),
                                  ("CANCELLED", "run.cancelled")):
                runs[finish_run(srv, status)] = event
            rx.wait(3, "/raw")
            rx.wait(3, "/std")
            rx.wait(3, "/plain")
            rx.wait(1, "/failures")
            for path in ("/raw", "/std", "/plain"):
                reqs = rx.get(path)
                check(len(reqs) == 3, path, len(reqs))
                got = {}
                for r in reqs:
                    h = r["headers"]
                    check(h.get("content-type") == "application/json", h)
                    body = json.loads(r["body"])
                    check(body["run_id"] in runs, body)
                    got[body["run_id"]] = body
                    if path == "/plain":
                        check("x-pyoco-token" not in h and "webhook-signature" not in h, h)
                        continue
                    secret = RAW_SECRET if path == "/raw" else STD_SECRET
                    check(h.get("x-pyoco-token") == secret, h)
                    check(re.fullmatch(r"msg_[0-9a-f-]{36}", h["webhook-id"]), h)
                    check(abs(int(h["webhook-timestamp"]) - time.time()) < 600, h)
                    check(verify_signature(r, whsec_key(secret)), "signature", path, h)
                    # a wrong key must not verify (the check can fail)
                    check(not verify_signature(r, b"wrong"), "wrong key verified")
                for rid, event in runs.items():
                    check(got[rid] == expected_payload(srv, rid, event), path, got[rid],
                          expected_payload(srv, rid, event))
                    check(list(got[rid].keys()) == ["event", "run_id", "flow_name", "status",
                                                    "started_at", "ended_at", "duration_ms",
                                                    "tasks", "metadata"], got[rid])
            # every notification has its own id
            ids = {r["headers"]["webhook-id"] for r in rx.get("/raw") + rx.get("/std")}
            check(len(ids) == 6, ids)
            # the event filter: only the failed run went to "failures"
            time.sleep(0.3)
            f = rx.get("/failures")
            check(len(f) == 1 and json.loads(f[0]["body"])["event"] == "run.failed", f)
            body = json.loads(f[0]["body"])
            check(body["status"] == "FAILED" and body["tasks"]["t1"]["error"] == "boom", body)


def test_500_then_200_delivered_once_on_second_attempt():
    with Receiver(script=[{"status": 500}, {"status": 200}]) as rx:
        eps = [ep("flaky", rx.url(), secret=RAW_SECRET, attempts=3, backoff_initial=0.05)]
        with webhook_server(eps) as srv:
            finish_run(srv, "COMPLETED")
            reqs = rx.wait(2)
            srv.wait_log(r"\[webhook\].*endpoint flaky: delivered .*attempt 2")
            time.sleep(0.5)  # a third request would show up here
            reqs = rx.get()
            check(len(reqs) == 2, "requests", len(reqs))
            check(reqs[0]["body"] == reqs[1]["body"], "same body")
            check(reqs[0]["headers"]["webhook-id"] == reqs[1]["headers"]["webhook-id"],
                  "webhook-id stable across retries")
            for r in reqs:
                check(verify_signature(r, RAW_SECRET.encode()), r["headers"])
            check(re.search(r"WARN.*endpoint flaky: attempt 1/3 .*HTTP 500", srv.log()),
                  srv.log())


def test_retry_after_is_honoured():
    with Receiver(script=[{"status": 503, "headers": {"Retry-After": "2"}},
                          {"status": 200}]) as rx:
        eps = [ep("ra", rx.url(), attempts=2, backoff_initial=0.01)]
        with webhook_server(eps) as srv:
            finish_run(srv, "COMPLETED")
            reqs = rx.wait(2)
            # backoff alone would retry after ~10 ms; the receiver asked for 2 s
            gap = reqs[1]["time"] - reqs[0]["time"]
            check(gap >= 1.9, "retried after", gap)
            m = srv.wait_log(r"endpoint ra: attempt 1/2 .*HTTP 503; retrying in ([0-9.]+)s")
            check(float(m.group(1)) >= 2.0, m.group(0))
            srv.wait_log(r"endpoint ra: delivered")


def test_redirect_not_followed_and_counted_as_failure():
    with Receiver(script=[{"status": 302, "headers": {"Location": "/elsewhere"}}]) as rx:
        eps = [ep("redir", rx.url("/hook"), attempts=1)]
        with webhook_server(eps) as srv:
            finish_run(srv, "COMPLETED")
            rx.wait(1)
            srv.wait_log(r"ERROR.*endpoint redir: giving up on msg_\S+ after 1 attempt: HTTP 302")
            time.sleep(0.3)
            check(rx.count() == 1 and rx.count("/elsewhere") == 0, rx.get())


def test_receiver_down_then_up():
    port = free_port()
    rx = Receiver(port=port)
    eps = [ep("late", "http://127.0.0.1:%d/hook" % port, attempts=8,
              backoff_initial=0.2, backoff_max=0.5)]
    with webhook_server(eps) as srv:
        rid = finish_run(srv, "FAILED")
        srv.wait_log(r"WARN.*endpoint late: attempt 1/8 .*(Connection refused|Couldn't connect)")
        srv.wait_log(r"WARN.*endpoint late: attempt 2/8 ")
        rx.start()
        try:
            reqs = rx.wait(1)
            srv.wait_log(r"endpoint late: delivered")
            check(json.loads(reqs[0]["body"])["run_id"] == rid, reqs[0])
        finally:
            rx.stop()


def test_slow_receiver_does_not_block_heartbeats():
    with Receiver(default={"status": 200, "sleep": 3.0}) as rx:
        eps = [ep("slow", rx.url(), timeout=10)]
        with webhook_server(eps) as srv:
            busy = start_run(srv, "busy")
            finish_run(srv, "COMPLETED")
            rx.wait(1)  # the receiver is now sitting on the request for 3 s
            t_end = rx.get()[0]["time"] + 2.0
            latencies = []
            n = 0
            while time.time() < t_end:
                t0 = time.time()
                heartbeat(srv, busy, "RUNNING", logs=[
                    {"seq": n, "task": "t1", "stream": "stdout", "text": "tick",
                     "timestamp": t0}])
                latencies.append(time.time() - t0)
                n += 1
                time.sleep(0.05)
            check("endpoint slow: delivered" not in srv.log(),
                  "the delivery was still in flight while heartbeats were measured")
            check(len(latencies) > 0, "heartbeats answered", len(latencies))
            check(max(latencies) < 1.0, "slowest heartbeat", max(latencies))
            srv.wait_log(r"endpoint slow: delivered", timeout=15)


def test_shutdown_waits_for_the_delivery_in_flight():
    with Receiver(default={"status": 200, "sleep": 1.0}) as rx:
        srv = webhook_server([ep("drain", rx.url(), timeout=5)]).start()
        try:
            finish_run(srv, "COMPLETED")
            rx.wait(1)  # in flight: the receiver holds it for 1 s
            rc = srv.stop()
        finally:
            srv.kill()
        log = srv.log()
        check(rc == 0, "exit status", rc, log)
        check("waiting for 1 delivery(ies) in flight" in log, log)
        check(log.index("waiting for 1 delivery") < log.index("endpoint drain: delivered"),
              log)


def rewrite_config(srv, endpoints):
    cfg = {"plugin_path": [os.path.abspath(PLUGIN_DIR)],
           "plugins": {"rest": {}, "webhook": {"endpoints": endpoints}}}
    with open(srv.config_path, "w") as f:
        f.write(to_yaml(cfg))


def test_sighup_reloads_endpoints():
    with Receiver() as rx:
        with webhook_server([ep("hook", rx.url("/old"))]) as srv:
            finish_run(srv, "COMPLETED")
            rx.wait(1, "/old")
            # a bad block is refused and the old one keeps working
            rewrite_config(srv, [ep("hook", "gopher://127.0.0.1/")])
            srv.proc.send_signal(signal.SIGHUP)
            # (the host's wording around the plugin's message is its own)
            srv.wait_log(r"ERROR.*reload.*webhook.*plugins\.webhook\.endpoints\[0\]\.url")
            finish_run(srv, "COMPLETED")
            rx.wait(2, "/old")
            # a good one applies: new URL, a second endpoint, a secret
            rewrite_config(srv, [ep("hook", rx.url("/new"), secret=RAW_SECRET),
                                 ep("extra", rx.url("/extra"))])
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_log(r"\[webhook\] reloaded: 2 endpoint\(s\)")
            rid = finish_run(srv, "FAILED")
            reqs = rx.wait(1, "/new")
            rx.wait(1, "/extra")
            check(json.loads(reqs[0]["body"])["run_id"] == rid, reqs[0])
            check(verify_signature(reqs[0], RAW_SECRET.encode()), reqs[0]["headers"])
            check(rx.count("/old") == 2, "old URL no longer used", rx.count("/old"))


def test_broken_receivers_are_logged_retried_and_the_server_lives():
    hang = RawReceiver("hang")
    garbage = RawReceiver("garbage")
    closed = free_port()
    try:
        with Receiver(default={"status": 200, "body_size": 20 << 20}) as huge:
            eps = [ep("unreachable", "http://127.0.0.1:%d/x" % closed, attempts=2,
                      backoff_initial=0.05),
                   ep("hang", hang.url(), attempts=2, timeout=0.5, backoff_initial=0.05),
                   ep("garbage", garbage.url(), attempts=2, backoff_initial=0.05),
                   ep("huge", huge.url(), attempts=2, backoff_initial=0.05),
                   ep("badport", "http://127.0.0.1:0/x", attempts=2,
                      backoff_initial=0.05)]
            with webhook_server(eps) as srv:
                rid = finish_run(srv, "COMPLETED")
                for name in ("unreachable", "hang", "garbage", "badport"):
                    srv.wait_log(r"WARN.*endpoint %s: attempt 1/2 .* failed: " % name)
                    srv.wait_log(r"ERROR.*endpoint %s: giving up on msg_\S+ after 2 "
                                 r"attempts: \S" % name)
                check(re.search(r"endpoint hang: giving up.*[Tt]imed? ?out", srv.log()),
                      srv.log())
                srv.wait_log(r"endpoint huge: delivered")
                check(huge.count() == 1, "huge delivered once", huge.count())
                check(hang.accepted == 2, "hang attempts", hang.accepted)
                check(garbage.accepted == 2, "garbage attempts", garbage.accepted)
                # still serving, and still sending
                st, body = srv.json("GET", "/runs/%s" % rid)
                check(st == 200 and body["status"] == "COMPLETED", st, body)
                finish_run(srv, "FAILED")
                huge.wait(2)
    finally:
        hang.close()
        garbage.close()


def test_bad_url_refuses_to_start_with_a_clear_message():
    for url, why in (("ftp://127.0.0.1/x", "http"), ("not a url", "URL")):
        srv = webhook_server([ep("bad", url)])
        try:
            srv.start()
        except AssertionError:
            pass
        else:
            srv.stop()
            check(False, "server started with url", url)
        log = srv.log()
        check("plugins.webhook.endpoints[0].url" in log and why in log, log)
        check("pyoco.yaml" in log, "names the file", log)
    srv = webhook_server([ep("x", "http://127.0.0.1:9/", attempts=0)])
    try:
        srv.start()
    except AssertionError:
        pass
    else:
        srv.stop()
        check(False, "started with attempts 0")
    check("plugins.webhook.endpoints[0].attempts" in srv.log(), srv.log())


def test_env_configures_the_default_endpoint():
    with Receiver(script=[{"status": 500}, {"status": 200}]) as rx:
        env = {"PYOCO_WEBHOOK_URL": rx.url("/env"), "PYOCO_WEBHOOK_SECRET": "tok",
               "PYOCO_WEBHOOK_RETRIES": "2", "PYOCO_WEBHOOK_TIMEOUT": "2.5"}
        with webhook_server(None, env=env) as srv:
            srv.wait_log(r"endpoint default: http://127.0.0.1:\d+/env \(attempts 2, "
                         r"timeout 2.5s, signed\)")
            rid = finish_run(srv, "CANCELLED")
            reqs = rx.wait(2)
            srv.wait_log(r"endpoint default: delivered .*attempt 2")
            for r in reqs:
                check(r["headers"].get("x-pyoco-token") == "tok", r["headers"])
                check(verify_signature(r, b"tok"), r["headers"])
            body = json.loads(reqs[1]["body"])
            check(body == expected_payload(srv, rid, "run.cancelled"), body)
    # the environment overrides the file; retries below 1 mean one attempt
    with Receiver(script=[{"status": 500}]) as rx:
        env = {"PYOCO_WEBHOOK_URL": rx.url("/env2"), "PYOCO_WEBHOOK_RETRIES": "0"}
        with webhook_server(None, env=env, block={"url": "http://127.0.0.1:9/file"}) as srv:
            srv.wait_log(r"endpoint default: http://127.0.0.1:\d+/env2 \(attempts 1,")
            finish_run(srv, "COMPLETED")
            rx.wait(1, "/env2")
            srv.wait_log(r"ERROR.*endpoint default: giving up .* after 1 attempt: HTTP 500")


def test_no_endpoint_loads_and_does_nothing():
    with webhook_server(None) as srv:
        srv.wait_log(r"\[webhook\].*no endpoint configured")
        rid = finish_run(srv, "COMPLETED")
        st, body = srv.json("GET", "/runs/%s" % rid)
        check(st == 200 and body["status"] == "COMPLETED", body)


if plugin_available("prometheus"):
    def test_outcomes_in_metrics():
        with Receiver(script=[{"status": 500}, {"status": 200}]) as rx:
            eps = [ep("m", rx.url(), attempts=2, backoff_initial=0.05)]
            with webhook_server(eps, extra_plugins={"prometheus": {}}) as srv:
                finish_run(srv, "COMPLETED")
                rx.wait(2)
                srv.wait_log(r"endpoint m: delivered")
                st, h, data = srv.request("GET", "/metrics")
                text = data.decode()
                check(st == 200, st)
                for line in ('pyoco_webhook_deliveries_total{endpoint="m",outcome="success"} 1',
                             'pyoco_webhook_deliveries_total{endpoint="m",outcome="retry"} 1',
                             'pyoco_webhook_deliveries_total{endpoint="m",outcome="failed"} 0',
                             'pyoco_webhook_in_flight 0'):
                    check(line in text, line, text)
                check(re.search(r'pyoco_webhook_attempt_duration_seconds_count\{endpoint="m"\} 2',
                                text), text)
                check(re.search(r'pyoco_webhook_last_failure_timestamp_seconds\{endpoint="m"\} '
                                r'\d', text), text)


if __name__ == "__main__":
    run_tests(globals())
