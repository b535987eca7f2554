"""The demo exporter's series of one group: a few parameters per group or target, and the
samples they give.

Each KPI kind (stackgen.kpis) says what it serves: its `demo_setup` chooses healthy
parameters, its `demo_samples` writes the series. Host and GPU kinds serve their series
whether or not the spec names the KPI (as node_exporter and the DCGM exporter do); service
kinds serve what the spec names. Shared here: a service's request counters (throughput and
error_rate may read the same one), the GPUs of a target, and the inputs of custom KPIs that
no kind serves ("free" inputs).

Values are healthy by default: below every warning threshold, above every `*_below` one,
with a few percent of slow wobble that stays well inside the thresholds.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field

from stackgen import kpis as K
from stackgen.generators.rule_tests import baseline
from stackgen.kpis import exporters
from stackgen.kpis.base import COUNTER, GAUGE, LOAD, clamp
from stackgen.kpis.error_rate import label_values
from stackgen.model import GPUS, SERVICES, Group, Kpi, Model
from stackgen.runtime import steady

LOAD_PER_TARGET = 5.0  # requests per second
GPUS_PER_TARGET = 2
GPU_MODEL = "NVIDIA A100-SXM4-80GB"
WOBBLE, WOBBLE_PERIOD = 0.03, 47.0  # +-3% over 47 s: alive, never near a threshold


@dataclass
class Sample:
    family: str  # metric family name as exposed in # TYPE
    ftype: str  # counter | gauge | histogram | unknown
    name: str  # sample name
    labels: dict
    kind: str  # COUNTER (value = rate per second) | GAUGE
    value: float


@dataclass
class FreeInput:
    """A custom KPI's input series that no built-in KPI serves."""

    metric: str
    kind: str  # counter | gauge
    label_sets: list = field(default_factory=list)


def satisfying(name: str, op: str, value: str) -> str:
    """A label value that satisfies one matcher."""
    sym = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}[op]
    bad, _ = label_values(f"{name}{sym}{json.dumps(value)}")
    return bad[name]


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


# The Prometheus client libraries' default histogram buckets (s), for a free `_bucket` input.
FREE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.inf)


def counter_family(metric: str) -> tuple[str, str]:
    """(family, type) that exposes a counter sample named `metric`."""
    return (metric[:-6], "counter") if metric.endswith("_total") else (metric, "unknown")


class GroupSim:
    """The series of one group's targets, from a few parameters per group or target.

    For the kinds: `base` (parameter -> healthy value), `state` (kind -> what it keeps),
    `serve` / `serve_requests` (series it serves, and which parameters move them), `n`
    (targets), `gpus` and `gpu_labels` (GPUs of a target), `healthy`."""

    def __init__(self, model: Model, group: Group, free: dict):
        self.model, self.group, self.free = model, group, free
        self.n = len(group.targets)
        self.gpus = GPUS_PER_TARGET if group.kind == GPUS else 0
        self.base: dict = {}
        self.state: dict = {}
        self.kpis = {k.name: k for k in group.kpis}
        self.requests: dict = {}  # request counter -> (error label split, its parameter) | None
        self.moved: dict = {}  # served series name -> parameters that move it
        # labels that pass every KPI's `filter`, on every series of the group
        self.filter_labels: dict = {}
        for kpi in group.kpis:
            if kpi.filter:
                self.filter_labels.update(label_values(kpi.filter)[0])
        if group.kind == SERVICES:
            self.base[LOAD] = LOAD_PER_TARGET
        for kind in K.kinds_of(group.kind):
            mine = [k for k in group.kpis if k.kind == kind.kind]
            for kpi in mine:
                kind.demo_setup(self, kpi)
            if not mine and kind.serves_always:
                kind.demo_setup(self, None)
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
            for key in p.wobble_keys:
                self.amplitude[key] = min(self.amplitude.get(key, WOBBLE), margin / 4)

    # -- for the kinds ----------------------------------------------------------------------
    def healthy(self, kpi: Kpi, default: float) -> float:
        return healthy_value(kpi, default)

    def serve(self, name: str, moved_by: tuple = ()) -> None:
        """A kind serves the series `name`; the parameters `moved_by` change its value."""
        self.moved.setdefault(name, []).extend(moved_by)

    def serve_requests(self, metric: str, split: tuple | None = None, share: str = "") -> None:
        """Serve the request counter `metric` at the service's load (once, however many KPIs
        read it); `split`: (bad, good) label values, the `share` parameter's part bad."""
        if metric in self.moved:  # a histogram's _count, say: its kind serves it
            return
        if split is not None or metric not in self.requests:
            self.requests[metric] = (split, share) if split is not None else None

    def gpu_labels(self, i: int, g: int) -> dict:
        """The labels of GPU g of target i, as the DCGM exporter sets them."""
        host = self.group.targets[i].rsplit(":", 1)[0]
        uid = zlib.crc32(f"{self.group.name}/{i}/{g}".encode())
        return {"gpu": str(g), "UUID": f"GPU-{uid:08x}-0000-4000-8000-{uid:012x}",
                "device": f"nvidia{g}", "modelName": GPU_MODEL, "Hostname": host}

    def moved_by(self, metric: str) -> list:
        """Parameters that change the value of a served series (for solving custom KPIs)."""
        keys = []
        if metric in self.requests:
            keys += [self.requests[metric][1]] if self.requests[metric] else []
            keys += [LOAD]
        return keys + self.moved.get(metric, [])

    # -- KPI -> parameter -------------------------------------------------------------------
    def kpi_param(self, kpi: Kpi):
        """The kind's `Param` that sets the KPI's value, or None (custom: solved for)."""
        return K.of(kpi).demo_param(self, kpi)

    def healthy_of(self, kpi: Kpi) -> float | None:
        p = self.kpi_param(kpi)
        if p is None:
            return None
        value = self.base[p.key]
        return value * p.divisor if p.divisor != 1 else value

    # -- series -----------------------------------------------------------------------------
    def samples(self, i: int, p, wobble) -> list[Sample]:
        out: list[Sample] = []

        def add(family, ftype, name, labels, kind, value):
            out.append(Sample(family, ftype, name, {**self.filter_labels, **labels}, kind,
                              float(value)))

        if self.group.kind == SERVICES:
            load = p(LOAD) * wobble(LOAD)
            for metric, split in self.requests.items():
                fam, ftype = counter_family(metric)
                if split is not None:
                    (bad, good), share = split
                    e = clamp(p(share))
                    add(fam, ftype, metric, bad, COUNTER, load * e)
                    add(fam, ftype, metric, good, COUNTER, load * (1 - e))
                else:
                    add(fam, ftype, metric, {}, COUNTER, load)
        present = {k.kind for k in self.group.kpis}
        for kind in K.kinds_of(self.group.kind):
            if kind.kind in present or kind.serves_always:
                kind.demo_samples(self, i, p, wobble, add)
        for background in exporters.background(self.group.kind):  # beyond the KPIs
            background(self, i, p, wobble, add)
        scale = p(LOAD) * wobble(LOAD) if self.group.kind == SERVICES else 1.0
        for inp in self.free.values():
            k = max(0.0, p(f"free:{inp.metric}"))
            if inp.kind == COUNTER and inp.metric.endswith("_bucket"):
                # a histogram no KPI serves: its parameter is the typical value (the mean of
                # an exponential distribution over the client libraries' default buckets)
                for labels in inp.label_sets:
                    for le in FREE_BUCKETS:
                        share = 1.0 if le == math.inf else 1 - math.exp(-le / max(k, 1e-9))
                        add(inp.metric, "unknown", inp.metric,
                            {**labels, "le": "+Inf" if le == math.inf else f"{le:g}"},
                            COUNTER, scale * share)
                continue
            if inp.kind == COUNTER:
                fam, ftype = counter_family(inp.metric)
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
            if K.of(kpi).demo_param(sims[g.name], kpi) is not None:
                continue  # a KPI of a built-in kind reads only what its kind serves
            for metric, matchers, in_rate in steady.metric_selectors(kpi.expr):
                job = next((v for n, op, v in matchers if n == "job" and op == "Equal"), None)
                owner = by_job[job] if job in by_job else g
                if metric in served[owner.name]:
                    continue
                # read raw, a series is a gauge whatever its name (postgres_exporter's
                # pg_stat_activity_count); read through rate() & co., a counter
                kind = COUNTER if in_rate else GAUGE
                inp = out[owner.name].setdefault(metric, FreeInput(metric, kind))
                if in_rate:
                    inp.kind = COUNTER
                labels = {n: satisfying(n, op, v) for n, op, v in matchers
                          if n not in own and n != "__name__"}
                if labels not in inp.label_sets:
                    inp.label_sets.append(labels)
    return out
