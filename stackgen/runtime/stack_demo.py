"""A demo of the stack's own exporters that a native run has not: cAdvisor (job `cadvisor`),
serving the containers the Compose stack would run (stackgen.kpis.exporters.cadvisor), so
that the containers dashboard shows data in `stackgen smoke` and `stackgen up --demo`.

    with CadvisorDemo(project="ml-platform") as demo:
        target_map = demo.target_map()   # {("cadvisor", "cadvisor:8080"): "127.0.0.1:<port>"}
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from stackgen.generators.prometheus_config import STACK_TARGETS
from stackgen.kpis.base import COUNTER
from stackgen.kpis.exporters import cadvisor
from stackgen.runtime.procs import LOOPBACK

UPTIME = 3600.0  # counters start as if the containers had run for an hour
WOBBLE, PERIOD = 0.05, 53.0


class _Collector:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


class CadvisorDemo:
    """One HTTP server on 127.0.0.1 serving cAdvisor's series at /metrics."""

    def __init__(self, project: str, host: str = LOOPBACK, port: int = 0):
        self.project = project
        self.started = time.time() - UPTIME
        self.totals: dict = {}
        self.last: float | None = None
        self.lock = threading.Lock()
        demo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                ok = self.path.split("?")[0] == "/metrics"
                body = demo.exposition() if ok else b"not found\n"
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST if ok else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.2}, daemon=True,
                                       name="demo-cadvisor")

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def target_map(self) -> dict:
        """For NativeStack: the generated cadvisor job's target -> this server."""
        return {(cadvisor.JOB, STACK_TARGETS[cadvisor.JOB]): self.address}

    def samples(self, now: float) -> list:
        out = []

        def wobble(key):
            phase = zlib.crc32(key.encode()) % 1000 / 1000 * 2 * math.pi
            return 1 + WOBBLE * math.sin(2 * math.pi * now / PERIOD + phase)

        def add(family, ftype, name, labels, kind, value):
            out.append((family, ftype, name, dict(labels), kind, float(value)))

        cadvisor.demo_samples(self.project, self.started, wobble, add)
        return out

    def exposition(self) -> bytes:
        with self.lock:
            now = time.time()
            dt = 0.0 if self.last is None else max(0.0, now - self.last)
            self.last = now
            families: dict = {}
            for family, ftype, name, labels, kind, value in self.samples(now):
                if kind == COUNTER:
                    key = (name, tuple(sorted(labels.items())))
                    self.totals[key] = self.totals.get(key, value * UPTIME) + value * dt
                    value = self.totals[key]
                fam = families.get(family)
                if fam is None:
                    fam = families[family] = Metric(family, f"stackgen demo cAdvisor: {family}",
                                                    ftype)
                fam.add_sample(name, labels, value)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(list(families.values())))
        return generate_latest(registry)

    def start(self) -> "CadvisorDemo":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
