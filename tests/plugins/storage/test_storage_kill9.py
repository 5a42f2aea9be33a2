"""kill -9 under load: client threads send heartbeats, each with a unique
log line, and record which were answered 200. The server is SIGKILLed at a
random moment and restarted on the same database: every acknowledged line
is there, in order, nothing duplicated (at most the one unanswered request
in flight per client may also have landed), every run parses with typed
fields, and runs from earlier rounds are unchanged. Five rounds."""
import os
import random
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import check, run_tests  # noqa: E402
from storage_common import (check_run_typed, ok, poll,  # noqa: E402
                            require_plugins, storage_server, submit)

ROUNDS = 5
CLIENTS = 4


def _client(srv, run_id, prefix, acked, stop):
    i = 0
    while not stop.is_set():
        text = "%s-%d" % (prefix, i)
        body = {"task_states": {"t": "RUNNING"}, "run_status": "RUNNING",
                "logs": [{"seq": i, "task": "t", "stream": "stdout",
                          "text": text}]}
        try:
            st, _ = srv.json("POST", "/runs/%s/heartbeat" % run_id, body,
                             timeout=5)
        except Exception:
            return  # the server is gone
        if st == 200:
            acked.append(text)
        else:
            return
        i += 1


def test_kill9_under_load():
    workdir = tempfile.mkdtemp(prefix="pyoco-storage-kill9-")
    rng = random.Random(os.getpid())
    seen = {}  # run_id -> GET object after a restart (earlier rounds)
    for rnd in range(ROUNDS):
        srv = storage_server(workdir).start()
        try:
            runs = [submit(srv, "load", {"round": rnd, "client": k})
                    for k in range(CLIENTS)]
            for k in range(CLIENTS):
                check(poll(srv, "w%d" % k) == runs[k])
            acked = [[] for _ in range(CLIENTS)]
            stop = threading.Event()
            threads = [threading.Thread(target=_client,
                                        args=(srv, runs[k],
                                              "r%d-c%d" % (rnd, k), acked[k],
                                              stop))
                       for k in range(CLIENTS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, 1.0))
        finally:
            srv.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(30)
        check(sum(len(a) for a in acked) > 0, "no heartbeat was answered")

        with storage_server(workdir) as srv:
            for k, run_id in enumerate(runs):
                run = ok(srv, "GET", "/runs/" + run_id)
                check_run_typed(run)
                check(run["status"] == "RUNNING", run["status"])
                texts = [e["text"] for e in run["logs"]]
                n = len(acked[k])
                check(texts[:n] == acked[k], "acknowledged lines lost",
                      "round", rnd, "client", k, texts[:n][-3:],
                      acked[k][-3:])
                check(len(texts) <= n + 1, "unexpected extra lines", texts[n:])
                check(run["tasks"] == {"t": "RUNNING"}, run["tasks"])
                lg = ok(srv, "GET", "/runs/%s/logs" % run_id)
                check([e["text"] for e in lg["logs"]] == texts)
            for run_id, before in seen.items():
                check(ok(srv, "GET", "/runs/" + run_id) == before,
                      "an earlier round's run changed", run_id)
            for run_id in runs:
                seen[run_id] = ok(srv, "GET", "/runs/" + run_id)
        print("round %d: %s acknowledged lines, all present" %
              (rnd, [len(a) for a in acked]), flush=True)


if __name__ == "__main__":
    require_plugins("storage", "rest")
    run_tests(globals())
