"""A demo exporter: every metric a spec's KPIs read, with realistic values, and incidents.

One HTTP server per scrape target of the spec (threads of this process), each serving the
group's `metrics_path` in the Prometheus text format (prometheus_client). What each group
serves comes from its KPI kinds (stackgen.kpis: node_exporter's series for host groups,
DCGM's for GPU groups, the request counters, histograms and gauges a service's KPIs name,
and the inputs of custom expressions), simulated by runtime.simulation and runtime.sim;
incidents are planned by runtime.incidents. Counters grow by integrating their rate, so
rate() reads what the model says. An incident moves one KPI just past its most severe
threshold (or between warning and critical) until it ends:

    exporter.start_incident("granite-llm/response_time")          # latency spike
    POST /incident?kpi=granite-llm/error_rate&kind=error-burst     # on any target's server
    POST /incident?group=dcgm&target=0&kind=down                   # target down (503)
    DELETE /incident?id=3    POST /heal                            # end one, end all

Standalone: `stackgen demo SPEC [--port N]` (or `python -m stackgen.runtime.demo_exporter`)
prints its endpoints and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from stackgen import kpis as K
from stackgen import runtime
from stackgen.model import Group, Model
from stackgen.runtime import steady
from stackgen.runtime.incidents import DOWN, Incident, IncidentError
from stackgen.runtime.sim import Sim

UPTIME = 86400.0  # counters start as if the target had run for a day


# -- HTTP -----------------------------------------------------------------------------------
class _Target:
    """Counter totals of one scrape target, integrated from their rates."""

    def __init__(self):
        self.totals: dict = {}
        self.rates: dict = {}
        self.last: float | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, exporter, group: Group, index: int, sock=None, port=0, host="127.0.0.1"):
        self.exporter, self.group, self.index = exporter, group, index
        if sock is not None:
            super().__init__((host, 0), _Handler, bind_and_activate=False)
            self.socket.close()
            self.socket = sock
            self.server_address = sock.getsockname()
            self.server_name, self.server_port = host, self.server_address[1]
            sock.listen(64)
        else:
            super().__init__((host, port), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                       name=f"demo-{group.name}-{index}", daemon=True)


class _Handler(BaseHTTPRequestHandler):
    server_version = "stackgen-demo-exporter"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: Prometheus scrapes every second
        pass

    def _send(self, code: int, body: bytes, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code, data):
        self._send(code, (json.dumps(data, indent=1) + "\n").encode())

    def do_GET(self):
        srv: _Server = self.server
        url = urlsplit(self.path)
        if url.path == srv.group.metrics_path:
            body = srv.exporter.exposition(srv.group.name, srv.index)
            if body is None:
                self._send(503, b"target down (demo incident)\n", "text/plain")
            else:
                self._send(200, body, CONTENT_TYPE_LATEST)
        elif url.path in ("/", "/incidents"):
            self._json(200, srv.exporter.status())
        else:
            self._send(404, b"not found\n", "text/plain")

    def _params(self) -> dict:
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            raw = self.rfile.read(length).decode("utf-8", "replace")
            if raw.lstrip().startswith("{"):
                try:
                    q.update({k: str(v) for k, v in json.loads(raw).items()})
                except ValueError:
                    pass
            else:
                q.update({k: v[-1] for k, v in parse_qs(raw).items()})
        return q

    def do_POST(self):
        path = urlsplit(self.path).path
        q = self._params()
        exp = self.server.exporter
        try:
            if path == "/incident":
                inc = exp.start_incident(q.get("kpi"), kind=q.get("kind"),
                                         severity=q.get("severity"), target=q.get("target"),
                                         group=q.get("group"), mode=q.get("mode", "503"))
                self._json(200, inc.to_dict())
            elif path in ("/incident/end", "/heal"):
                self._json(200, {"ended": exp.end_matching(q.get("id"), q.get("kpi"))})
            else:
                self._send(404, b"not found\n", "text/plain")
        except IncidentError as exc:
            self._json(400, {"error": str(exc)})

    def do_DELETE(self):
        if urlsplit(self.path).path != "/incident":
            return self._send(404, b"not found\n", "text/plain")
        q = self._params()
        self._json(200, {"ended": self.server.exporter.end_matching(q.get("id"), q.get("kpi"))})


class DemoExporter:
    """Serves the model's scrape targets; start_incident / end_incident switch values."""

    def __init__(self, model: Model, host: str = "127.0.0.1", ports: dict | None = None,
                 sockets: dict | None = None):
        """ports / sockets: {(group name, target index): port or a bound socket}."""
        self.model = model
        self.host = host
        self.sim = Sim(model)
        self._ports = ports or {}
        self._sockets = sockets or {}
        self._lock = threading.RLock()
        self._targets = {(g.name, i): _Target() for g in model.groups
                         for i in range(len(g.targets))}
        self.servers: dict = {}
        self.closed: dict = {}  # (group, i) -> port, while a `down` incident closed it

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> "DemoExporter":
        try:
            for g in self.model.groups:
                for i in range(len(g.targets)):
                    self._serve(g, i, sock=self._sockets.pop((g.name, i), None),
                                port=self._ports.get((g.name, i), 0))
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self, g: Group, i: int, sock=None, port=0):
        srv = _Server(self, g, i, sock=sock, port=port, host=self.host)
        self.servers[(g.name, i)] = srv
        srv.thread.start()

    def stop(self):
        for key, srv in list(self.servers.items()):
            srv.shutdown()
            srv.server_close()
            del self.servers[key]
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def port(self, group: str, index: int) -> int:
        if (group, index) in self.closed:
            return self.closed[(group, index)]
        return self.servers[(group, index)].server_port

    def endpoints(self) -> list[dict]:
        out = []
        for g in self.model.groups:
            for i, target in enumerate(g.targets):
                port = self.port(g.name, i)
                out.append({"group": g.name, "kind": g.kind, "index": i, "target": target,
                            "address": f"{self.host}:{port}",
                            "url": f"http://{self.host}:{port}{g.metrics_path}"})
        return out

    # -- exposition ---------------------------------------------------------------------
    def _advance(self, group: str, i: int, now: float):
        st = self._targets[(group, i)]
        samples = self.sim.samples(group, i, now)
        dt = 0.0 if st.last is None else max(0.0, now - st.last)
        for s in samples:
            if s.kind != steady.COUNTER:
                continue
            key = (s.name, tuple(sorted(s.labels.items())))
            if key not in st.totals:
                st.totals[key] = s.value * UPTIME
            else:
                st.totals[key] += st.rates.get(key, s.value) * dt
            st.rates[key] = s.value
        st.last = now
        return samples

    def exposition(self, group: str, i: int) -> bytes | None:
        with self._lock:
            if self.sim.is_down(group, i):
                self._advance(group, i, time.time())
                return None
            samples = self._advance(group, i, time.time())
            st = self._targets[(group, i)]
            families: dict = {}
            for s in samples:
                fam = families.get(s.family)
                if fam is None:
                    fam = families[s.family] = Metric(
                        s.family, f"stackgen demo exporter: {s.family}", s.ftype)
                value = st.totals[(s.name, tuple(sorted(s.labels.items())))] \
                    if s.kind == steady.COUNTER else s.value
                fam.add_sample(s.name, s.labels, value)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(list(families.values())))
        return generate_latest(registry)

    # -- incidents ----------------------------------------------------------------------
    def plan(self, kpi=None, **kw) -> Incident:
        with self._lock:
            return self.sim.plan(kpi, **kw)

    def start_incident(self, kpi: str | None = None, kind: str | None = None,
                       severity: str | None = None, target=None, group: str | None = None,
                       mode: str = "503", incident: Incident | None = None) -> Incident:
        with self._lock:
            inc = incident or self.sim.plan(kpi, kind=kind, severity=severity, target=target,
                                            group=group, mode=mode)
            now = time.time()
            for key in self._targets:
                self._advance(*key, now)
            self.sim.start(inc)
            for key in self._targets:
                self._advance(*key, now)
        if inc.kind == DOWN and inc.mode == "close":
            for key in inc.down:
                srv = self.servers.pop(key, None)
                if srv is not None:
                    self.closed[key] = srv.server_port
                    srv.shutdown()
                    srv.server_close()
        return inc

    def end_incident(self, inc: Incident) -> None:
        with self._lock:
            now = time.time()
            for key in self._targets:
                self._advance(*key, now)
            self.sim.end(inc)
            for key in self._targets:
                self._advance(*key, now)
        for key in inc.down:
            if key in self.closed and not self.sim.is_down(*key):
                port = self.closed.pop(key)
                g = self.sim.group(key[0])
                self._serve(g, key[1], port=port)

    def end_matching(self, id_=None, kpi=None) -> list[int]:
        with self._lock:
            chosen = [inc for inc in self.sim.active
                      if (id_ is None and kpi is None) or (id_ is not None and str(inc.id) == id_)
                      or (kpi is not None and inc.kpi_id == kpi)]
        for inc in chosen:
            self.end_incident(inc)
        return [inc.id for inc in chosen]

    def heal(self) -> list[int]:
        return self.end_matching()

    def status(self) -> dict:
        with self._lock:
            return {
                "kpis": [f"{g.name}/{k.name}" for g in self.model.groups for k in g.kpis],
                "incident_kinds": {k: a for k, (a, _) in K.incident_kinds().items()}
                | {DOWN: "any"},
                "incidents": [inc.to_dict() for inc in self.sim.active],
                "targets": self.endpoints(),
            }


class _Families:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def reserve_sockets(model: Model, host: str = "127.0.0.1") -> dict:
    """{(group, index): a listening socket on a free port}: ports known before the exporter
    (and the spec that names them) exist, with no race for the port."""
    out = {}
    try:
        for g in model.groups if hasattr(model, "groups") else model:
            for i in range(len(g.targets)):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, 0))
                out[(g.name, i)] = sock
    except BaseException:
        for sock in out.values():
            sock.close()
        raise
    return out


# -- standalone ---------------------------------------------------------------------------
def serve(spec: str, first_port: int = 0, as_json: bool = False, echo=None) -> int:
    """`stackgen demo`: serve SPEC's targets until Ctrl-C. Returns the exit code."""
    from stackgen.problems import SpecError, render_text
    from stackgen.spec import load

    say = echo or runtime.echo

    try:
        model, _ = load(spec)
    except SpecError as exc:
        say(render_text(exc.problems).rstrip("\n"), err=True)
        say(f"stackgen demo: {spec} is invalid", err=True)
        return 2
    ports = {}
    if first_port:
        n = itertools.count(first_port)
        ports = {(g.name, i): next(n) for g in model.groups for i in range(len(g.targets))}
    exporter = DemoExporter(model, ports=ports)
    try:
        exporter.start()
    except OSError as exc:
        say(f"demo exporter: cannot listen: {exc}", err=True)
        return 1
    try:
        eps = exporter.endpoints()
        if as_json:
            say(json.dumps(eps))
        else:
            for ep in eps:
                say(f"{ep['group']:<20} {ep['target']:<24} {ep['url']}")
            first = eps[0]["address"] if eps else None
            if first:
                say(f"incidents: POST http://{first}/incident?kpi=<group>/<kpi>[&kind=..."
                    f"&severity=warning|critical] ; DELETE http://{first}/incident?id=N ; "
                    f"GET http://{first}/incidents")
            for note in exporter.sim.notes:
                say(f"note: {note}")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        exporter.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m stackgen.runtime.demo_exporter",
        description="Serve every metric a spec's KPIs read, with healthy values and incidents "
                    "on demand (POST /incident?kpi=<group>/<kpi>[&kind=...]); the same as "
                    "`stackgen demo`.")
    ap.add_argument("spec", nargs="?", default="specs/stack.yaml")
    ap.add_argument("--port", type=int, default=0,
                    help="first port; each further target takes the next (default: free ports)")
    ap.add_argument("--json", action="store_true", help="print the endpoints as one JSON line")
    args = ap.parse_args(argv)
    return serve(args.spec, args.port, args.json)


if __name__ == "__main__":
    sys.exit(main())
