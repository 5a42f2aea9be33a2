"""Storage measurements on /metrics (with the prometheus plugin): commit
latency and batch size histograms count the commits, and the write error
counter is exported at 0 from the start. Skipped (77) while the prometheus
plugin is not built in this tree."""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyoco_test import Server, check, run_tests  # noqa: E402
from storage_common import heartbeat, poll, require_plugins, submit  # noqa: E402


def _sample(text, name):
    m = re.search(r"^%s(?:\{\})? (\S+)$" % re.escape(name), text, re.M)
    check(m is not None, "no sample", name, text)
    return float(m.group(1))


def test_storage_metrics():
    workdir = tempfile.mkdtemp(prefix="pyoco-storage-metrics-")
    with Server(plugins={"storage": {"path": "runs.db"}, "rest": {},
                         "prometheus": {}}, workdir=workdir) as srv:
        st, _, body = srv.request("GET", "/metrics")
        check(st == 200, st)
        text = body.decode()
        check("# TYPE pyoco_storage_write_errors_total counter" in text, text)
        check(_sample(text, "pyoco_storage_write_errors_total") == 0, text)
        run_id = submit(srv)
        check(poll(srv) == run_id)
        heartbeat(srv, run_id, "COMPLETED", {"t": "SUCCEEDED"})
        st, _, body = srv.request("GET", "/metrics")
        text = body.decode()
        check("# TYPE pyoco_storage_commit_seconds histogram" in text, text)
        check("# TYPE pyoco_storage_batch_events histogram" in text, text)
        commits = _sample(text, "pyoco_storage_commit_seconds_count")
        check(commits >= 1, commits)
        check(_sample(text, "pyoco_storage_batch_events_count") == commits,
              text)
        # every event of submit, poll and heartbeat was written: at least
        # submitted + assigned + status + task
        check(_sample(text, "pyoco_storage_batch_events_sum") >= 4, text)
        check(_sample(text, "pyoco_storage_commit_seconds_sum") >= 0, text)


if __name__ == "__main__":
    require_plugins("storage", "rest", "prometheus")
    run_tests(globals())
