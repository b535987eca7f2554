"""A demo exporter: every metric a spec's KPIs read, with realistic values, and incidents.

One HTTP server per scrape target of the spec (threads of this process), each serving the
group's `metrics_path` in the Prometheus text format (prometheus_client):

- services: the request counter(s) of `throughput` / `error_rate`, split into series whose
  labels do and do not match the KPI's `errors` selector; the `response_time` histogram with
  buckets that include every latency threshold and SLO threshold; the `drift` and `accuracy`
  gauges; and the inputs of each custom KPI's expression (found with promql_parser: names
  read through rate() or ending in _total are counters, the rest gauges);
- host groups: node_exporter's CPU, memory and filesystem series;
- GPU groups: DCGM's DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED and DCGM_FI_DEV_FB_FREE per GPU.

Values are healthy by default: below every warning threshold, above every `*_below` one,
with error and latency budgets that no SLO burns, and a few percent of slow wobble. Counters
grow by integrating their rate, so rate() reads what the model says. An incident moves one
KPI just past its most severe threshold (or between warning and critical) until it ends:

    exporter.start_incident("granite-llm/response_time")          # latency spike
    POST /incident?kpi=granite-llm/error_rate&kind=error-burst     # on any target's server
    POST /incident?group=dcgm&target=0&kind=down                   # target down (503)
    DELETE /incident?id=3    POST /heal                            # end one, end all

Custom KPIs are driven by solving for their inputs with the steady-state evaluator
(stackgen.runtime.steady), which keeps ratios such as cache hits / requests within 0..1.

Standalone: `stackgen demo SPEC [--port N]` (or `python -m stackgen.runtime.demo_exporter`)
prints its endpoints and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import socket
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from statistics import NormalDist
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from stackgen.generators.rule_tests import baseline, beyond, crosses
from stackgen.kpis.error_rate import label_values as _error_label_values
from stackgen.model import GPUS, HOSTS, SERVICES, Group, Kpi, Model, Threshold
from stackgen import runtime
from stackgen.runtime import steady

GIB = 2**30
MIB = 2**20
NORMAL = NormalDist()

# How each KPI kind moves in an incident: the kinds of incident and the side they push to.
INCIDENT_KINDS = {
    "cpu-high": ("cpu", "above"),
    "memory-full": ("memory", "above"),
    "disk-full": ("disk", "below"),
    "gpu-busy": ("gpu_utilization", "above"),
    "gpu-memory-full": ("gpu_memory", "above"),
    "latency-spike": ("response_time", "above"),
    "throughput-drop": ("throughput", "below"),
    "throughput-spike": ("throughput", "above"),
    "error-burst": ("error_rate", "above"),
    "drift-rise": ("drift", "above"),
    "accuracy-drop": ("accuracy", "below"),
    "custom-crossing": ("custom", None),  # whichever side its most severe threshold is on
    "custom-high": ("custom", "above"),
    "custom-low": ("custom", "below"),
}
DOWN = "down"  # any group: the target answers scrapes with 503 (or closes its port)
DEFAULT_KIND = {
    "cpu": "cpu-high", "memory": "memory-full", "disk": "disk-full",
    "gpu_utilization": "gpu-busy", "gpu_memory": "gpu-memory-full",
    "response_time": "latency-spike", "throughput": "throughput-drop",
    "error_rate": "error-burst", "drift": "drift-rise", "accuracy": "accuracy-drop",
    "custom": "custom-crossing",
}
RANK = {"warning": 1, "critical": 2}

# Realistic healthy values where the spec's thresholds leave room for them.
HEALTHY = {"cpu": 0.35, "memory": 0.55, "gpu_utilization": 0.45, "gpu_memory": 0.40,
           "response_time": 0.12, "error_rate": 0.002, "drift": 0.05, "accuracy": 0.93}
LOAD_PER_TARGET = 5.0  # requests per second
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                   10.0)
SIGMA = 0.5  # spread of the log-normal request latency
SLO_HEADROOM = 0.25  # healthy SLIs spend at most this share of the error budget's rate
CPUS, MEM_TOTAL = 2, 16 * GIB
GPUS_PER_TARGET, FB_TOTAL_MIB = 2, 81920
GPU_MODEL = "NVIDIA A100-SXM4-80GB"
WOBBLE, WOBBLE_PERIOD = 0.03, 47.0  # +-3% over 47 s: alive, never near a threshold
UPTIME = 86400.0  # counters start as if the target had run for a day


class IncidentError(ValueError):
    """An incident that cannot be run: unknown KPI or kind, or a KPI that cannot be driven."""


@dataclass
class Sample:
    family: str  # metric family name as exposed in # TYPE
    ftype: str  # counter | gauge | histogram | unknown
    name: str  # sample name
    labels: dict
    kind: str  # steady.COUNTER (value = rate per second) | steady.GAUGE
    value: float


@dataclass
class Incident:
    id: int
    group: str
    kind: str
    kpi: str | None = None  # KPI name within the group; None for `down`
    targets: tuple = ()  # target indexes it applies to
    value: float | None = None  # the KPI value it aims at
    threshold: Threshold | None = None  # the most severe threshold it crosses
    crossed: tuple = ()  # every threshold the value crosses
    overrides: dict = field(default_factory=dict)  # (group, target|None, key) -> value
    down: tuple = ()  # ((group, index), ...)
    mode: str = "503"  # down: "503" or "close"
    started: float | None = None

    @property
    def kpi_id(self) -> str:
        return f"{self.group}/{self.kpi}" if self.kpi else f"{self.group}/{DOWN}"

    def to_dict(self) -> dict:
        return {
            "id": self.id, "group": self.group, "kpi": self.kpi, "kind": self.kind,
            "targets": list(self.targets), "value": self.value,
            "crosses": [{"severity": t.severity, "op": t.op, "threshold": t.text}
                        for t in self.crossed],
            "started": self.started,
        }


# -- what each group serves -------------------------------------------------------------
@dataclass
class FreeInput:
    """A custom KPI's input series that no built-in KPI serves."""

    metric: str
    kind: str  # counter | gauge
    label_sets: list = field(default_factory=list)


def _satisfying(name: str, op: str, value: str) -> str:
    """A label value that satisfies one matcher."""
    sym = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}[op]
    bad, _ = _error_label_values(f"{name}{sym}{json.dumps(value)}")
    return bad[name]


def _lognormal(quantile_value: float, q: float):
    """(median, cdf) of request latencies whose q-quantile is `quantile_value`."""
    median = quantile_value / math.exp(SIGMA * NORMAL.inv_cdf(q))

    def cdf(x: float) -> float:
        if x <= 0:
            return 0.0
        return NORMAL.cdf((math.log(x) - math.log(median)) / SIGMA)

    return median, cdf


def _clamp(x, lo=0.0, hi=1.0):
    return min(max(x, lo), hi)


def _comfortable(kpi: Kpi, v: float) -> bool:
    for t in kpi.thresholds:
        if t.below and not (v >= t.value * 1.25 if t.value > 0 else v > t.value):
            return False
        if not t.below and not (v <= t.value * 0.8 if t.value > 0 else v < t.value):
            return False
    return True


def healthy_value(kpi: Kpi, default: float) -> float:
    """`default` if it sits well inside every threshold, else a value that does."""
    if not kpi.thresholds or _comfortable(kpi, default):
        return default
    above = [t.value for t in kpi.thresholds if not t.below]
    below = [t.value for t in kpi.thresholds if t.below]
    if above and below:
        lo, hi = max(below), min(above)
        return math.sqrt(lo * hi) if lo > 0 and hi > 0 else (lo + hi) / 2
    return baseline(kpi, bool(below))


def _between(a: float, b: float) -> float:
    return math.sqrt(a * b) if a > 0 and b > 0 else (a + b) / 2


def _synthetic(kpi: Kpi, healthy: float, direction: str) -> float:
    if direction == "above":
        return healthy + (1 - healthy) * 0.75 if kpi.unit == "percentunit" else healthy * 4
    return healthy / 4


class GroupSim:
    """The series of one group's targets, from a few parameters per group or target."""

    def __init__(self, model: Model, group: Group, free: dict):
        self.model, self.group, self.free = model, group, free
        self.n = len(group.targets)
        self.base: dict = {}
        self.kpis = {k.name: k for k in group.kpis}
        self.request_counters: list = []
        self.err_counter: str | None = None
        self.err_labels: tuple = ({}, {})
        self.histograms: list = []  # (metric base, quantile, buckets)
        self.gauges: list = []
        self.disk_size = 100 * GIB
        if group.kind == SERVICES:
            self._service()
        elif group.kind == HOSTS:
            self._hosts()
        else:
            self._gpus()
        for inp in free.values():
            self.base[f"free:{inp.metric}"] = 1.0
        # The wobble of a parameter stays well inside the distance to its KPI's thresholds.
        self.amplitude: dict = {}
        for kpi in group.kpis:
            p = self.kpi_param(kpi)
            healthy = self.healthy_of(kpi)
            if p is None or not healthy or not kpi.thresholds:
                continue
            margin = min(abs(healthy - t.value) / abs(healthy) for t in kpi.thresholds)
            keys = [p[0]]
            if group.kind == GPUS:  # every GPU of a target wobbles like the first
                keys = [f"{p[0].split(':')[0]}:{g}" for g in range(GPUS_PER_TARGET)]
            for key in keys:
                self.amplitude[key] = min(self.amplitude.get(key, WOBBLE), margin / 4)

    # -- set-up -------------------------------------------------------------------------
    def _service(self):
        hist_names = set()
        slo = {s.kind: s for s in self.group.slos}
        for kpi in self.group.kpis:
            if kpi.kind == "response_time":
                metric = kpi.inputs[0].metric
                ts = [t.value for t in kpi.thresholds]
                extra = ts + [s.threshold for s in self.group.slos if s.threshold]
                top = max(extra, default=1.0)
                buckets = sorted({*DEFAULT_BUCKETS, *extra, top * 2, top * 5})
                self.histograms.append((metric, kpi.quantile or 0.95, buckets))
                hist_names.update({f"{metric}_bucket", f"{metric}_count", f"{metric}_sum"})
                value = healthy_value(kpi, HEALTHY["response_time"])
                if "latency" in slo and slo["latency"].threshold:
                    s = slo["latency"]
                    allowed = SLO_HEADROOM * (1 - s.objective)
                    z = NORMAL.inv_cdf(kpi.quantile or 0.95) - NORMAL.inv_cdf(1 - allowed)
                    value = min(value, s.threshold * math.exp(SIGMA * z) * 0.9)
                self.base[f"lat:{metric}"] = value
        for kpi in self.group.kpis:
            if kpi.kind in ("throughput", "error_rate"):
                metric = kpi.inputs[0].metric
                if metric not in self.request_counters and metric not in hist_names:
                    self.request_counters.append(metric)
            if kpi.kind == "error_rate":
                self.err_counter = kpi.inputs[0].metric
                self.err_labels = _error_label_values(kpi.errors)
                value = healthy_value(kpi, HEALTHY["error_rate"])
                if "availability" in slo:
                    value = min(value, SLO_HEADROOM * (1 - slo["availability"].objective))
                self.base["err"] = value
            if kpi.kind in ("drift", "accuracy"):
                metric = kpi.inputs[0].metric
                self.gauges.append(metric)
                self.base[f"gauge:{metric}"] = healthy_value(kpi, HEALTHY[kpi.kind])
        total = LOAD_PER_TARGET * self.n
        for kpi in self.group.kpis:
            if kpi.kind == "throughput":
                total = healthy_value(kpi, total)
        self.base["load"] = total / self.n
        self.base.setdefault("err", 0.0)

    def _hosts(self):
        ts = [t.value for k in self.group.kpis if k.kind == "disk" for t in k.thresholds]
        self.disk_size = max(100 * GIB, 4 * max(ts, default=0))
        defaults = {"cpu": HEALTHY["cpu"], "memory": HEALTHY["memory"],
                    "disk": self.disk_size * 0.6}
        for key, param in (("cpu", "cpu"), ("memory", "mem"), ("disk", "disk")):
            kpi = next((k for k in self.group.kpis if k.kind == key), None)
            self.base[param] = healthy_value(kpi, defaults[key]) if kpi else defaults[key]

    def _gpus(self):
        for key, param in (("gpu_utilization", "util"), ("gpu_memory", "fbmem")):
            kpi = next((k for k in self.group.kpis if k.kind == key), None)
            value = healthy_value(kpi, HEALTHY[key]) if kpi else HEALTHY[key]
            for g in range(GPUS_PER_TARGET):
                self.base[f"{param}:{g}"] = value

    # -- KPI -> parameter ---------------------------------------------------------------
    def kpi_param(self, kpi: Kpi):
        """(parameter key, per target?, KPI value -> parameter value), or None (custom)."""
        k = kpi.kind
        same = lambda v: v  # noqa: E731
        if k in ("cpu", "memory", "disk"):
            return {"cpu": "cpu", "memory": "mem", "disk": "disk"}[k], True, same
        if k == "gpu_utilization":
            return "util:0", True, same
        if k == "gpu_memory":
            return "fbmem:0", True, same
        if k == "response_time":
            return f"lat:{kpi.inputs[0].metric}", False, same
        if k == "throughput":
            return "load", False, lambda v: v / self.n
        if k == "error_rate":
            return "err", False, same
        if k in ("drift", "accuracy"):
            return f"gauge:{kpi.inputs[0].metric}", False, same
        return None

    def healthy_of(self, kpi: Kpi) -> float | None:
        p = self.kpi_param(kpi)
        if p is None:
            return None
        key, _, to_param = p
        value = self.base[key]
        return value * self.n if kpi.kind == "throughput" else value

    # -- series -------------------------------------------------------------------------
    def samples(self, i: int, p, wobble) -> list[Sample]:
        out: list[Sample] = []

        def add(family, ftype, name, labels, kind, value):
            out.append(Sample(family, ftype, name, dict(labels), kind, float(value)))

        if self.group.kind == SERVICES:
            load = p("load") * wobble("load")
            for metric in self.request_counters:
                fam, ftype = (metric[:-6], "counter") if metric.endswith("_total") else \
                    (metric, "unknown")
                if metric == self.err_counter:
                    bad, good = self.err_labels
                    e = _clamp(p("err"))
                    add(fam, ftype, metric, bad, steady.COUNTER, load * e)
                    add(fam, ftype, metric, good, steady.COUNTER, load * (1 - e))
                else:
                    add(fam, ftype, metric, {}, steady.COUNTER, load)
            for metric, q, buckets in self.histograms:
                lat = p(f"lat:{metric}") * wobble(f"lat:{metric}", 0.02)
                median, cdf = _lognormal(lat, q)
                for le in buckets:
                    add(metric, "histogram", f"{metric}_bucket", {"le": floatToGoString(le)},
                        steady.COUNTER, load * cdf(le))
                add(metric, "histogram", f"{metric}_bucket", {"le": "+Inf"}, steady.COUNTER,
                    load)
                add(metric, "histogram", f"{metric}_count", {}, steady.COUNTER, load)
                add(metric, "histogram", f"{metric}_sum", {}, steady.COUNTER,
                    load * median * math.exp(SIGMA**2 / 2))
            for metric in self.gauges:
                add(metric, "gauge", metric, {}, steady.GAUGE,
                    p(f"gauge:{metric}") * wobble(f"gauge:{metric}", 0.02))
        elif self.group.kind == HOSTS:
            busy = _clamp(p("cpu") * wobble("cpu"))
            shares = {"idle": 1 - busy, "user": busy * 0.7, "system": busy * 0.25,
                      "iowait": busy * 0.05}
            for cpu in range(CPUS):
                for mode, rate in shares.items():
                    add("node_cpu_seconds", "counter", "node_cpu_seconds_total",
                        {"cpu": str(cpu), "mode": mode}, steady.COUNTER, rate)
            used = _clamp(p("mem") * wobble("mem", 0.01))
            avail = MEM_TOTAL * (1 - used)
            add("node_memory_MemTotal_bytes", "gauge", "node_memory_MemTotal_bytes", {},
                steady.GAUGE, MEM_TOTAL)
            add("node_memory_MemAvailable_bytes", "gauge", "node_memory_MemAvailable_bytes",
                {}, steady.GAUGE, avail)
            add("node_memory_MemFree_bytes", "gauge", "node_memory_MemFree_bytes", {},
                steady.GAUGE, avail * 0.4)
            root = {"device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
            run = {"device": "tmpfs", "fstype": "tmpfs", "mountpoint": "/run"}
            free = _clamp(p("disk") * wobble("disk", 0.005), 0, self.disk_size)
            for labels, size, avail_b in ((root, self.disk_size, free),
                                          (run, 1.6 * GIB, 1.5 * GIB)):
                add("node_filesystem_avail_bytes", "gauge", "node_filesystem_avail_bytes",
                    labels, steady.GAUGE, avail_b)
                add("node_filesystem_size_bytes", "gauge", "node_filesystem_size_bytes",
                    labels, steady.GAUGE, size)
        else:
            host = self.group.targets[i].rsplit(":", 1)[0]
            for g in range(GPUS_PER_TARGET):
                uid = zlib.crc32(f"{self.group.name}/{i}/{g}".encode())
                labels = {"gpu": str(g), "UUID": f"GPU-{uid:08x}-0000-4000-8000-{uid:012x}",
                          "device": f"nvidia{g}", "modelName": GPU_MODEL, "Hostname": host}
                util = _clamp(p(f"util:{g}") * wobble(f"util:{g}"))
                used = _clamp(p(f"fbmem:{g}") * wobble(f"fbmem:{g}", 0.01))
                add("DCGM_FI_DEV_GPU_UTIL", "gauge", "DCGM_FI_DEV_GPU_UTIL", labels,
                    steady.GAUGE, util * 100)
                add("DCGM_FI_DEV_FB_USED", "gauge", "DCGM_FI_DEV_FB_USED", labels,
                    steady.GAUGE, used * FB_TOTAL_MIB)
                add("DCGM_FI_DEV_FB_FREE", "gauge", "DCGM_FI_DEV_FB_FREE", labels,
                    steady.GAUGE, (1 - used) * FB_TOTAL_MIB)
        scale = p("load") * wobble("load") if self.group.kind == SERVICES else 1.0
        for inp in self.free.values():
            k = max(0.0, p(f"free:{inp.metric}"))
            if inp.kind == steady.COUNTER:
                fam, ftype = (inp.metric[:-6], "counter") if inp.metric.endswith("_total") \
                    else (inp.metric, "unknown")
                value = scale * k
            else:
                fam, ftype = inp.metric, "gauge"
                value = k * wobble(f"free:{inp.metric}", 0.02)
            for labels in inp.label_sets:
                add(fam, ftype, inp.metric, labels, inp.kind, value)
        return out


def free_inputs(model: Model) -> dict:
    """{group name: {metric: FreeInput}} for the inputs of custom KPIs no KPI serves."""
    sims = {g.name: GroupSim(model, g, {}) for g in model.groups}
    served: dict = {}
    for g in model.groups:
        names = set()
        for s in sims[g.name].samples(0, lambda k, s=sims[g.name]: s.base.get(k, 1.0),
                                      lambda *a: 1.0):
            names.add(s.name)
        served[g.name] = names
    by_job = {g.job: g for g in model.groups}
    out: dict = {g.name: {} for g in model.groups}
    for g in model.groups:
        own = {n for n, _ in g.target_labels} | {"job", "instance"}
        for kpi in g.kpis:
            if kpi.kind != "custom":
                continue
            for metric, matchers, in_rate in steady.metric_selectors(kpi.expr):
                job = next((v for n, op, v in matchers if n == "job" and op == "Equal"), None)
                owner = by_job[job] if job in by_job else g
                if metric in served[owner.name]:
                    continue
                kind = steady.COUNTER if in_rate or metric.endswith(("_total", "_count", "_sum",
                                                                        "_bucket")) \
                    else steady.GAUGE
                inp = out[owner.name].setdefault(metric, FreeInput(metric, kind))
                if in_rate:
                    inp.kind = steady.COUNTER
                labels = {n: _satisfying(n, op, v) for n, op, v in matchers
                          if n not in own and n != "__name__"}
                if labels not in inp.label_sets:
                    inp.label_sets.append(labels)
    return out


# -- the whole model ---------------------------------------------------------------------
class Sim:
    """Parameters of every group and target, the incidents in force, and the series."""

    def __init__(self, model: Model):
        self.model = model
        free = free_inputs(model)
        self.groups = {g.name: GroupSim(model, g, free[g.name]) for g in model.groups}
        self.active: list = []
        self._ids = itertools.count(1)
        self.notes: list = []
        for g in model.groups:
            for kpi in g.kpis:
                if kpi.kind == "custom" and kpi.thresholds:
                    self._calibrate_healthy(g, kpi)

    # -- parameters ---------------------------------------------------------------------
    def param(self, group: str, i: int, key: str, overrides=None, active=True) -> float:
        layers = ([overrides] if overrides else []) + \
            ([inc.overrides for inc in reversed(self.active)] if active else [])
        for layer in layers:
            if (group, i, key) in layer:
                return layer[(group, i, key)]
            if (group, None, key) in layer:
                return layer[(group, None, key)]
        return self.groups[group].base.get(key, 0.0)

    def is_down(self, group: str, i: int) -> bool:
        return any((group, i) in inc.down for inc in self.active)

    def samples(self, group: str, i: int, now: float | None = None, overrides=None,
                active=True) -> list[Sample]:
        sim = self.groups[group]

        def p(key):
            return self.param(group, i, key, overrides, active)

        def wobble(key, amplitude=WOBBLE):
            """A slow +-few % drift; none while an incident pins the parameter."""
            if now is None or (active and any((group, i, key) in inc.overrides or
                                              (group, None, key) in inc.overrides
                                              for inc in self.active)):
                return 1.0
            amplitude = min(amplitude, sim.amplitude.get(key, amplitude))
            phase = zlib.crc32(f"{group}/{i}/{key}".encode()) % 1000 / 1000 * 2 * math.pi
            return 1 + amplitude * math.sin(2 * math.pi * now / WOBBLE_PERIOD + phase)

        return sim.samples(i, p, wobble)

    def world(self, overrides=None, down=(), active=False) -> steady.World:
        w = steady.World(scrape_interval=1.0, now=time.time())
        for g in self.model.groups:
            for i, target in enumerate(g.targets):
                if (g.name, i) in down or (active and self.is_down(g.name, i)):
                    continue
                base = {"job": g.job, "instance": target, **dict(g.target_labels)}
                for s in self.samples(g.name, i, None, overrides, active):
                    w.series.append(steady.series(s.name, {**s.labels, **base}, s.kind,
                                                  s.value))
        return w

    def kpi_values(self, overrides=None, down=()) -> dict:
        """{group/kpi: {labels: value}} in steady state, with no incident but the given."""
        w = self.world(overrides, down)
        out = {}
        for g in self.model.groups:
            for kpi in g.kpis:
                try:
                    res = steady.evaluate(kpi.expr, w)
                except steady.Unsupported:
                    res = None
                if isinstance(res, float):
                    res = [({}, res)]
                out[f"{g.name}/{kpi.name}"] = None if res is None else \
                    {steady._key(lb): v for lb, v in res}
        return out

    def value(self, group: Group, kpi: Kpi, overrides=None) -> float | None:
        try:
            vals = steady.values(kpi.expr, self.world(overrides))
        except (steady.Unsupported, ZeroDivisionError, ValueError):
            return None
        vals = [v for v in vals if not math.isnan(v)]
        return sum(vals) / len(vals) if vals else None

    # -- custom KPIs --------------------------------------------------------------------
    def _custom_keys(self, group: Group, kpi: Kpi, builtin=False) -> list:
        """(group, key) parameters that move a custom KPI: its free inputs, in the order the
        expression names them (the numerator of a ratio first), then optionally built-ins."""
        keys = []
        for metric, _, _ in steady.metric_selectors(kpi.expr):
            for name, sim in self.groups.items():
                if metric in sim.free and (name, f"free:{metric}") not in keys:
                    keys.append((name, f"free:{metric}"))
        if builtin:
            for metric, _, _ in steady.metric_selectors(kpi.expr):
                for name, sim in self.groups.items():
                    cands = []
                    if metric in sim.request_counters:
                        cands += ["err"] if metric == sim.err_counter else []
                        cands += ["load"]
                    for hist, _, _ in sim.histograms:
                        if metric.startswith(hist + "_"):
                            cands += [f"lat:{hist}", "load"]
                    if metric in sim.gauges:
                        cands.append(f"gauge:{metric}")
                    for c in cands:
                        if (name, c) not in keys:
                            keys.append((name, c))
        return keys

    def solve(self, group: Group, kpi: Kpi, target: float, builtin=False,
              overrides=None) -> dict | None:
        """Overrides that put the custom KPI at `target`: scale one input (or all of them)."""
        overrides = dict(overrides or {})
        keys = self._custom_keys(group, kpi, builtin)
        options = [[k] for k in keys] + ([keys] if len(keys) > 1 else [])
        for chosen in options:
            start = {k: self.param(k[0], None, k[1], overrides, active=False) or 1.0
                     for k in chosen}

            def f(m, chosen=chosen, start=start):
                ov = dict(overrides)
                for (gname, key) in chosen:
                    ov[(gname, None, key)] = start[(gname, key)] * m
                v = self.value(group, kpi, ov)
                return (v if v is not None else math.nan), ov

            grid = [10 ** (e / 4) for e in range(-20, 21)]
            prev = None
            for m in grid:
                v, _ = f(m)
                if math.isnan(v):
                    prev = None
                    continue
                if prev is not None and (prev[1] - target) * (v - target) <= 0:
                    lo, hi = prev[0], m
                    flo = prev[1]
                    for _ in range(60):
                        mid = math.sqrt(lo * hi)
                        fm, _ = f(mid)
                        if math.isnan(fm):
                            break
                        if (flo - target) * (fm - target) <= 0:
                            hi = mid
                        else:
                            lo, flo = mid, fm
                    got, ov = f(hi)
                    if not math.isnan(got) and abs(got - target) <= 1e-6 * max(1, abs(target)):
                        return {k: v for k, v in ov.items() if k not in overrides} or ov
                    break
                prev = (m, v)
        return None

    def _calibrate_healthy(self, group: Group, kpi: Kpi):
        # Always aim at the computed healthy value: free inputs start at 1 per request, which
        # would make e.g. cache hits / requests a perfect (and unrealistic) 100%.
        target = healthy_value(kpi, math.nan)
        if kpi.unit == "percentunit":
            target = _clamp(target, 0.0, 1.0)
        ov = self.solve(group, kpi, target)
        if ov is None:
            self.notes.append(f"custom KPI {group.name}/{kpi.name}: cannot choose healthy "
                              f"inputs for `{kpi.expr}`")
            return
        for (gname, _, key), v in ov.items():
            self.groups[gname].base[key] = v

    # -- incidents ----------------------------------------------------------------------
    def group(self, name: str) -> Group:
        for g in self.model.groups:
            if g.name == name:
                return g
        raise IncidentError(f"no group {name!r} (groups: "
                            f"{', '.join(g.name for g in self.model.groups)})")

    def target_index(self, group: Group, target) -> int:
        if target is None or target == "":
            return 0
        if isinstance(target, int) or str(target).isdigit():
            i = int(target)
            if 0 <= i < len(group.targets):
                return i
        elif str(target) in group.targets:
            return group.targets.index(str(target))
        raise IncidentError(f"{group.name} has no target {target!r} (targets: "
                            f"{', '.join(group.targets)})")

    def plan(self, kpi: str | None = None, kind: str | None = None,
             severity: str | None = None, target=None, group: str | None = None,
             mode: str = "503") -> Incident:
        """An incident, not yet started: which KPI moves, to what value, crossing what."""
        if kpi and "/" in kpi:
            group, kpi = kpi.split("/", 1)
        if not group:
            raise IncidentError("name the KPI as <group>/<kpi> (or give group= for kind=down)")
        g = self.group(group)
        if kind == DOWN or kpi == DOWN:
            i = self.target_index(g, target)
            return Incident(next(self._ids), g.name, DOWN, targets=(i,), down=((g.name, i),),
                            mode=mode if mode in ("503", "close") else "503")
        k = next((x for x in g.kpis if x.name == kpi), None)
        if k is None:
            raise IncidentError(f"{g.name} has no KPI {kpi!r} (KPIs: "
                                f"{', '.join(x.name for x in g.kpis) or 'none'})")
        kind = kind or DEFAULT_KIND[k.kind]
        if kind not in INCIDENT_KINDS:
            raise IncidentError(f"unknown incident kind {kind!r} (kinds: "
                                f"{', '.join([*INCIDENT_KINDS, DOWN])})")
        applies, direction = INCIDENT_KINDS[kind]
        if applies != k.kind:
            fits = [n for n, (a, _) in INCIDENT_KINDS.items() if a == k.kind]
            raise IncidentError(f"incident {kind!r} does not apply to {g.name}/{k.name} (a "
                                f"{k.kind} KPI; use {', '.join(fits)} or {DOWN})")
        if severity and severity not in RANK:
            raise IncidentError(f"severity must be warning or critical, not {severity!r}")
        sim = self.groups[g.name]
        healthy = sim.healthy_of(k)
        if healthy is None:
            healthy = self.value(g, k)
        value, main = self._aim(k, direction, severity, healthy)
        crossed = tuple(t for t in k.thresholds if crosses(t, value))
        param = sim.kpi_param(k)
        if param is not None:
            key, per_target, to_param = param
            if per_target:
                targets = (self.target_index(g, target),)
                overrides = {(g.name, targets[0], key): to_param(value)}
            else:
                targets = tuple(range(len(g.targets)))
                overrides = {(g.name, None, key): to_param(value)}
        else:
            targets = tuple(range(len(g.targets)))
            overrides = self.solve(g, k, value) or self.solve(g, k, value, builtin=True)
            if overrides is None:
                raise IncidentError(f"custom KPI {g.name}/{k.name} cannot be driven to "
                                    f"{value:g}: no input of `{k.expr}` moves it there")
        return Incident(next(self._ids), g.name, kind, kpi=k.name, targets=targets,
                        value=value, threshold=main, crossed=crossed, overrides=overrides)

    def _aim(self, kpi: Kpi, direction, severity, healthy):
        ts = [t for t in kpi.thresholds
              if direction is None or t.below == (direction == "below")]
        if severity:
            ts = [t for t in ts if t.severity == severity]
        if not ts:
            if severity:
                raise IncidentError(f"{kpi.name} has no {severity} threshold on that side")
            if direction is None:
                direction = "above"
            if healthy is None:
                raise IncidentError(f"{kpi.name} has no threshold and no known value")
            return _synthetic(kpi, healthy, direction), None
        main = max(ts, key=lambda t: RANK.get(t.severity, 0))
        worse = [t for t in kpi.thresholds if t.below == main.below
                 and RANK.get(t.severity, 0) > RANK.get(main.severity, 0)]
        if worse:
            nearest = min(worse, key=lambda t: abs(t.value - main.value))
            value = _between(main.value, nearest.value)
        else:
            value = beyond(kpi, main)
        return value, main

    def start(self, inc: Incident) -> Incident:
        inc.started = time.time()
        self.active.append(inc)
        return inc

    def end(self, inc: Incident) -> None:
        if inc in self.active:
            self.active.remove(inc)

    def affected(self, inc: Incident, before: dict | None = None) -> set:
        """KPIs (group/kpi) whose steady value the incident changes."""
        before = before if before is not None else self.kpi_values()
        after = self.kpi_values(inc.overrides, inc.down)
        out = set()
        for key, b in before.items():
            a = after.get(key)
            if a is None or b is None:
                if a != b:
                    out.add(key)
                continue
            if set(a) != set(b):
                out.add(key)
                continue
            for lb, v in b.items():
                w = a[lb]
                if not (v == w or (math.isnan(v) and math.isnan(w))
                        or abs(v - w) <= 1e-6 * max(abs(v), abs(w), 1e-12)):
                    out.add(key)
                    break
        return out


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
                "incident_kinds": {k: a for k, (a, _) in INCIDENT_KINDS.items()} | {DOWN: "any"},
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
