"""What every KPI kind declares, and the PromQL helpers the kinds share.

A kind is one module of this package with a `KIND` object: a `KpiKind` that says, in one
place, how the spec writes it (key, group kind, threshold parser, default `for`), what it
means in PromQL (recording rule, alert name, unit), how its dashboard shows it, which input
series the generated promtool tests feed it, and what the demo exporter serves for it.
Generic code (the mapping, the generators, the runtime) asks the registry
(`stackgen.kpis`) for the kind of a KPI and never names a kind itself.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from stackgen.model import SERVICES, Series
from stackgen.spec import units as U

# Grafana unit ids that stackgen passes through as they are; anything else becomes a suffix.
GRAFANA_UNITS = {
    "percent", "percentunit", "s", "ms", "us", "ns", "bytes", "decbytes", "bits", "Bps", "bps",
    "reqps", "rps", "ops", "wps", "short", "none", "hertz", "celsius", "watt", "m", "h", "d",
}

HUMANIZE_BY_UNIT = {
    "percentunit": "humanizePercentage", "s": "humanizeDuration", "bytes": "humanize1024",
}

ABOVE, BELOW = "above", "below"  # the side of a threshold an incident pushes a KPI to
COUNTER, GAUGE = "counter", "gauge"  # a demo series: by its rate per second, or its value
LOAD = "load"  # the demo parameter of a service's requests per second and target
SLO_HEADROOM = 0.25  # healthy demo SLIs spend at most this share of the error budget's rate


@dataclass(frozen=True)
class KpiShape:
    """The kind-dependent fields of a `model.Kpi` (same names); the mapping adds the rest."""

    title: str
    record: str
    expr: str
    unit: str
    panel: str
    alert: str
    per: tuple = ()
    inputs: tuple = ()
    heatmap_expr: str | None = None
    user_expr: str | None = None
    errors: str | None = None
    quantile: float | None = None
    filter: str | None = None
    alert_exact: str | None = None
    summary: str | None = None
    runbook_url: str | None = None
    aggregated: bool = False  # True: the value has no per-target labels (add group labels)

    def kpi_fields(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "aggregated"}


@dataclass(frozen=True)
class Companion:
    """A panel beside the KPI's own panel in its group dashboard, e.g. the response-time
    heatmap. Rendered by generators/grafana_dashboards.py (the only module that knows
    Grafana's JSON); `type` is one of the panel types it renders ("heatmap"). At most one
    per KPI so far: stackgen.layout gives KPI i's companion the panel id 100 + i."""

    type: str
    title: str
    description: str
    expr: str
    legend: str
    unit: str  # of the values (heatmap cells)
    axis_unit: str  # of the y axis


@dataclass(frozen=True)
class Param:
    """The demo exporter's parameter that sets a KPI's value.

    key: parameter name in the simulation; per_target: an incident moves one target (else
    the whole group); divisor: parameter = KPI value / divisor; wobble: the parameter keys
    that wobble with it (default: `key` alone)."""

    key: str
    per_target: bool
    divisor: float = 1
    wobble: tuple = ()

    @property
    def wobble_keys(self) -> tuple:
        return self.wobble or (self.key,)


class KpiKind:
    """One KPI kind. Subclasses set the attributes and override the methods they need."""

    # -- the spec ---------------------------------------------------------------------------
    kind: str = ""  # `Kpi.kind`, unique: cpu, gpu_memory, response_time, ...
    key: str = ""  # the key under the group's `kpis:` in the spec
    group: str = ""  # the group kind it belongs to: model.HOSTS | GPUS | SERVICES
    order: int = 0  # position among its group kind's KPIs (the order of rules and panels)
    parse = staticmethod(U.parse_ratio)  # threshold text -> value in base units (None: bad)
    ratio: bool = False  # a ratio: a threshold above 1 (100%) is an error
    inclusive: bool = False  # alerts compare with >= / <= (a value that sits at its limit)
    default_for: str = "5m"

    def shape(self, m, path: tuple, d: dict, job: str, window: str) -> KpiShape | None:
        """The PromQL and looks of the KPI written `d` at `path`; None after reporting an
        error with m.error(...) (m: the mapper; see spec/mapping.py)."""
        raise NotImplementedError

    def kpis(self, m, path: tuple, kd: dict, job: str, window: str, group_labels) -> list:
        """The group's `model.Kpi`s of this kind from its `kpis:` mapping `kd`."""
        if self.key not in kd:
            return []
        d = kd[self.key]
        shape = self.shape(m, path + (self.key,), d, job, window)
        if shape is None:
            return []
        return [m.kpi(path + (self.key,), self.kind, self.key, d, shape, group_labels)]

    # -- alert rules ------------------------------------------------------------------------
    alert_subject: str = ""  # appended to the group's subject in summaries, e.g. the mountpoint

    def alert_expr(self, group, kpi, t) -> str | None:
        """The threshold alert's PromQL; None: `<record>{group} <op> <value>`."""
        return None

    def extra_alerts(self, model, group, index: int, kpi) -> list:
        """Alert rules of the KPI beyond one per threshold (the disk's filling and inodes)."""
        return []

    # -- generated promtool tests -------------------------------------------------------------
    instant: bool = False  # the value follows its input gauges at once (no rate window)
    series_labels: dict = {}  # labels (beyond job, instance) of the series tests and demo drive

    def instant_for(self, kpi) -> bool:
        """`instant`, for one KPI of the kind (a response time read from a summary is)."""
        return self.instant

    def test_inputs(self, kpi, base: dict, levels: list) -> list[tuple[str, str]]:
        """(series, values) promtool input that makes `kpi` take each (value, steps) level
        in turn; `base`: the scrape labels (job, instance, group labels)."""
        raise NotImplementedError

    def test_kpi(self, kpi):
        """The KPI as the tests choose levels for it (the disk: shares as bytes)."""
        return kpi

    def extra_test_cases(self, model, group, index: int, kpi) -> list:
        """promtool cases (rule_tests.Case) of `extra_alerts`."""
        return []

    def actual_value(self, kpi, v: float, levels: list) -> float:
        """The value the KPI really takes when the inputs aim at `v` (quantiles interpolate)."""
        return v

    # -- dashboards ---------------------------------------------------------------------------
    draw: str = "line"  # a time-series panel draws "line" or "bars"

    def companions(self, kpi) -> tuple:
        """Companion panels (of `Companion`) shown beside the KPI's panel."""
        return ()

    def detail(self, kpi, sel: str):
        """The KPI per instance (a `kpis.exporters.Panel`, its slot unused) for the group
        dashboard's instance variable to filter, or None; `sel`: job and instance matchers
        (and the KPI's `filter:`)."""
        return None

    # -- demo exporter ------------------------------------------------------------------------
    healthy: float | None = None  # a realistic healthy value, where the thresholds allow it
    incidents: dict = {}  # incident kind -> ABOVE | BELOW | None (its worst threshold's side)
    default_incident: str = ""
    serves_always: bool = False  # served even when the spec does not name the KPI (an
    #                              exporter such as node_exporter serves it anyway)
    steady: bool = True  # runtime.steady can tell its value; False: the value is an event's
    #                      (changes()), which a steady state never shows: smoke's alerts prove it

    def demo_kpi(self, kpi):
        """The KPI as the demo sets its values (the disk: shares as bytes of its filesystem)."""
        return kpi

    def demo_setup(self, sim, kpi) -> None:
        """Set the healthy parameters of the KPI (None: not in the spec, serves_always) in
        sim.base; sim is a runtime.simulation.GroupSim."""

    def demo_param(self, sim, kpi) -> Param | None:
        """The parameter that sets the KPI's value; None: solve for its inputs (custom)."""
        return None

    def demo_samples(self, sim, i: int, p, wobble, add) -> None:
        """Add the series of target i: add(family, type, name, labels, kind, value) with
        p(key) the parameter's value and wobble(key[, amplitude]) a factor near 1."""

    def __repr__(self) -> str:
        return f"<KPI kind {self.kind} ({self.group}.kpis.{self.key})>"


THRESHOLD_KEYS = ("warning", "critical", "warning_below", "critical_below")


class DefaultKind(KpiKind):
    """A kind on by default: a group whose `kpis:` do not name it still gets it, with the
    thresholds in `defaults` (spec text, e.g. {"warning": "1%"}). In the spec, its key
    switched off with `false` or `null`; a mapping with threshold keys replaces the defaults'
    thresholds (a mapping with only `for` or `description` keeps them); `true` is the
    default."""

    defaults: dict = {}

    def kpis(self, m, path, kd, job, window, group_labels):
        d = kd.get(self.key, True)
        if d is None or d is False:
            return []
        d = {} if d is True else d
        if not any(k in d for k in THRESHOLD_KEYS):
            d = {**self.defaults, **d}
        shape = self.shape(m, path + (self.key,), d, job, window)
        if shape is None:
            return []
        return [m.kpi(path + (self.key,), self.kind, self.key, d, shape, group_labels)]


class GaugeKind(KpiKind):
    """A service KPI read from one gauge the spec names (`gauge:`), aggregated over targets."""

    group = SERVICES
    instant = True
    title = record_suffix = aggregation = unit = panel = alert = ""

    def shape(self, m, path, d, job, window):
        metric = d["gauge"]
        return KpiShape(
            title=self.title, record=f"service:{metric}:{self.record_suffix}",
            expr=f"{self.aggregation}({metric}{selector(job)})",
            unit=self.unit, panel=self.panel, alert=self.alert, aggregated=True,
            inputs=(Series(metric, "gauge"),),
        )

    def test_inputs(self, kpi, base, levels):
        from stackgen.kpis.synth import gauge, series_text

        return [(series_text(kpi.inputs[0].metric, base), gauge(levels))]

    def demo_setup(self, sim, kpi):
        metric = kpi.inputs[0].metric
        sim.serve(metric, moved_by=(f"gauge:{metric}",))
        sim.state.setdefault(self.kind, []).append(metric)
        sim.base[f"gauge:{metric}"] = sim.healthy(kpi, self.healthy)

    def demo_param(self, sim, kpi):
        return Param(f"gauge:{kpi.inputs[0].metric}", per_target=False)

    def demo_samples(self, sim, i, p, wobble, add):
        for metric in sim.state[self.kind]:
            add(metric, "gauge", metric, {}, GAUGE,
                p(f"gauge:{metric}") * wobble(f"gauge:{metric}", 0.02))


# -- PromQL helpers ---------------------------------------------------------------------------
def selector(job: str, *extra: str) -> str:
    return "{" + ",".join([f'job="{job}"', *extra]) + "}"


def capped(window: str, limit: str) -> str:
    """The shorter of two ranges: an upstream rule's fixed range (`limit`, e.g. node-mixin's
    2m) unless the stack's rate window is shorter (as in `stackgen smoke`)."""
    return window if U.duration_seconds(window) < U.duration_seconds(limit) else limit


def window_suffix(window: str) -> str:
    return f"rate{window}"


def stem(metric: str, suffix: str) -> str:
    return metric[: -len(suffix)] if metric.endswith(suffix) else metric


def quantile_name(q: float) -> str:
    """0.95 -> 'p95', 0.999 -> 'p99_9', 0.5 -> 'p50'."""
    text = f"{q * 100:.6f}".rstrip("0").rstrip(".")
    return "p" + text.replace(".", "_")


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:]
                   for part in name.replace("-", "_").split("_") if part)


def grafana_unit(unit: str) -> str:
    """A Grafana unit id: known ids pass, anything else is shown as a suffix."""
    return unit if unit in GRAFANA_UNITS or unit.startswith("suffix:") else f"suffix: {unit}"


def humanizer(unit: str) -> str:
    return HUMANIZE_BY_UNIT.get(unit, "humanize")


def clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return min(max(x, lo), hi)
