"""Helpers for the sse plugin's runtime tests: a small Server-Sent Events
reader over http.client, and the worker side of a run (submit, poll,
heartbeat) over the rest plugin."""
import http.client
import json

from pyoco_test import Server, check

PLUGINS = {"rest": {}, "sse": {}}


def sse_server(sse=None, plugins=None, **kw):
    """The real binary with rest + sse (sse block merged with `sse`)."""
    p = dict(plugins or PLUGINS)
    p["sse"] = dict(p.get("sse") or {}, **(sse or {}))
    return Server(plugins=p, **kw)


def ok(srv, method, path, obj=None):
    st, body = srv.json(method, path, obj)
    check(st == 200, method, path, "->", st, body)
    return body


def submit(srv, flow="demo", params=None):
    return ok(srv, "POST", "/runs", {"flow_name": flow,
                                     "params": params or {}})["run_id"]


def poll(srv, worker="w1"):
    return ok(srv, "POST", "/workers/poll", {"worker_id": worker})


def heartbeat(srv, run_id, run_status, states=None, records=None, logs=None):
    req = {"task_states": states or {}, "run_status": run_status}
    if records is not None:
        req["task_records"] = records
    if logs is not None:
        req["logs"] = logs
    return ok(srv, "POST", "/runs/%s/heartbeat" % run_id, req)


def log_entry(seq, text, task="t1", stream="stdout", ts=1796315001.5):
    return {"seq": seq, "task": task, "stream": stream, "text": text,
            "timestamp": ts}


class Stream:
    """One GET /runs/{id}/events, read event by event as the SSE parser in a
    browser would (id/event/data fields, comments, blank-line dispatch)."""

    def __init__(self, srv, run_id, last_event_id=None, query="",
                 timeout=20.0):
        self.conn = http.client.HTTPConnection(srv.host, srv.port,
                                               timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", "/runs/%s/events%s" % (run_id, query),
                          headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.comments = []
        self.closed = False

    def body(self):
        return self.resp.read()

    def next(self):
        """The next event as a dict {id, event, data (decoded JSON), raw},
        or None once the server closed the stream."""
        ev = {"id": None, "event": None, "data_lines": []}
        seen = False
        while True:
            raw = self.resp.readline()
            if not raw:
                self.closed = True
                check(not seen, "stream ended inside an event", ev)
                return None
            line = raw.decode("utf-8")
            check(line.endswith("\n"), "unterminated line", line)
            line = line[:-1]
            if line == "":
                if not seen:
                    continue
                ev["raw"] = "\n".join(ev["data_lines"])
                ev["data"] = json.loads(ev["raw"])
                return ev
            if line.startswith(":"):
                self.comments.append(line)
                continue
            seen = True
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                ev["data_lines"].append(value)
            elif field in ("id", "event"):
                ev[field] = value
            else:
                check(False, "unexpected field", line)

    def until(self, event_type, limit=100000):
        """Events up to and including the first of event_type."""
        out = []
        for _ in range(limit):
            ev = self.next()
            check(ev is not None, "stream closed before", event_type, out)
            out.append(ev)
            if ev["event"] == event_type:
                return out
        check(False, "no", event_type, "within", limit, "events")

    def rest(self):
        """Every event until the server closes the stream."""
        out = []
        while True:
            ev = self.next()
            if ev is None:
                return out
            out.append(ev)

    def close(self):
        self.conn.close()


def id_key(event_id):
    """Ids as sortable tuples: "12" -> (12, inf), "12.3" -> (12, 3)."""
    seq, _, idx = event_id.partition(".")
    return (int(seq), int(idx) if idx else float("inf"))
