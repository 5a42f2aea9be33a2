"""The webhook outbox with the storage plugin: a notification is durable once
the heartbeat that finished the run is answered, survives SIGTERM and
SIGKILL, is delivered after the restart with the same webhook-id, and a
delivered one is not sent again."""
import json
import re
import signal
import tempfile
import time

from pyoco_test import check, run_tests
from webhook_helpers import Receiver, finish_run, free_port, verify_signature, webhook_server


def config(port):
    return [{"name": "durable", "url": "http://127.0.0.1:%d/hook" % port,
             "secret": "tok", "attempts": 50, "backoff_initial": 0.2,
             "backoff_max": 0.5}]


def server(port, wd):
    return webhook_server(config(port), extra_plugins={"storage": {}}, workdir=wd)


def resumed_delivery(port, wd, rid, msg_id=None):
    """Restart with the receiver up; the notification arrives once."""
    with Receiver(port=port) as rx:
        with server(port, wd) as srv:
            srv.wait_log(r"endpoint durable: resuming msg_\S+ from the outbox")
            reqs = rx.wait(1)
            srv.wait_log(r"endpoint durable: delivered")
            body = json.loads(reqs[0]["body"])
            check(body["run_id"] == rid and body["event"] == "run.completed", body)
            check(verify_signature(reqs[0], b"tok"), reqs[0]["headers"])
            if msg_id:
                check(reqs[0]["headers"]["webhook-id"] == msg_id, "same webhook-id",
                      reqs[0]["headers"], msg_id)
        # delivered: a further restart sends nothing
        with server(port, wd) as srv:
            time.sleep(1.0)
            check("resuming" not in srv.log(), srv.log())
            check(rx.count() == 1, "delivered once", rx.count())


def test_outbox_survives_sigterm():
    port = free_port()
    wd = tempfile.mkdtemp(prefix="pyoco-wh-")
    with server(port, wd) as srv:
        rid = finish_run(srv, "COMPLETED")
        m = srv.wait_log(r"endpoint durable: attempt 2/50 of (msg_\S+) failed")
        msg_id = m.group(1)
    resumed_delivery(port, wd, rid, msg_id)


def test_outbox_survives_sigkill_right_after_the_heartbeat():
    port = free_port()
    wd = tempfile.mkdtemp(prefix="pyoco-wh-")
    srv = server(port, wd).start()
    try:
        rid = finish_run(srv, "COMPLETED")  # answered: the outbox entry is durable
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
    finally:
        srv.kill()
    resumed_delivery(port, wd, rid)


if __name__ == "__main__":
    run_tests(globals())
