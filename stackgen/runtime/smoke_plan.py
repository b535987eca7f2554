"""`stackgen smoke`'s incidents: one per KPI with thresholds and a target down, the alerts
each must raise, and waves of incidents that can run at the same time."""

from __future__ import annotations

from dataclasses import dataclass, field

from stackgen import kpis as K
from stackgen import layout
from stackgen.generators import prometheus_rules as R
from stackgen.model import Group, Kpi, Model
from stackgen.runtime.demo_exporter import DemoExporter
from stackgen.runtime.incidents import DOWN, Incident, IncidentError


@dataclass
class Expect:
    alertname: str
    severity: str
    subset: dict  # labels that identify the alert in Prometheus and Alertmanager
    runbook: str | None = None
    dashboard: str | None = None


@dataclass
class Planned:
    id: str
    incident: Incident
    group: Group
    kpi: Kpi | None
    main: Expect
    warning: Expect | None = None
    affected: set = field(default_factory=set)
    keys: set = field(default_factory=set)  # Alertmanager aggregation keys it produces

    @property
    def expects(self) -> list:
        return [self.main] + ([self.warning] if self.warning else [])


def notification_group_by(model: Model) -> tuple:
    labels = set(model.alerting.group_by)

    def walk(routes):
        for r in routes:
            labels.update(r.group_by or ())
            walk(r.routes)

    walk(model.alerting.routes)
    return tuple(sorted(labels))


def plan_one(model: Model, exporter: DemoExporter, kpi_id: str) -> Planned:
    inc = exporter.plan(kpi_id)
    g = exporter.sim.group(inc.group)
    if inc.kind == DOWN:
        target = g.targets[inc.targets[0]]
        main = Expect("TargetDown", g.target_down.severity,
                      {"alertname": "TargetDown", "job": g.job, "instance": target},
                      g.runbook_url, layout.group_url(model, g))
        return Planned(inc.kpi_id, inc, g, None, main)
    index = next(i for i, k in enumerate(g.kpis) if k.name == inc.kpi)
    kpi = g.kpis[index]
    base = {"kpi": kpi.name, g.group_label: g.name}
    if "instance" in kpi.per:  # a value per target: the incident's target, and the series
        base["instance"] = g.targets[inc.targets[0]]  # its kind drives (gpu 0, say)
        base.update(K.of(kpi).series_labels)
    t = inc.threshold
    if t is None:  # no incident of its kind drives it to the side of its thresholds
        raise IncidentError(f"no incident of a {kpi.kind} KPI drives {inc.kpi_id} past its "
                            f"thresholds ({', '.join(x.text for x in kpi.thresholds)})")
    name = R.alert_name(kpi, t)
    urls = (kpi.runbook_url or g.runbook_url, layout.kpi_url(model, g, index))
    main = Expect(name, t.severity, {"alertname": name, "severity": t.severity, **base}, *urls)
    warning = None
    if t.severity == "critical":
        w = next((x for x in inc.crossed if x.severity == "warning" and x.below == t.below),
                 None)
        if w is not None:
            warning = Expect(name, "warning", {"alertname": name, "severity": "warning",
                                               **base}, *urls)
    return Planned(inc.kpi_id, inc, g, kpi, main, warning)


def plan(model: Model, exporter: DemoExporter, only=None) -> tuple[list, list]:
    """(waves of Planned incidents, notes). One incident per KPI with thresholds, and a
    target down on the group with the fewest KPIs; incidents share a wave when neither
    moves a KPI the other reads and their alerts fall into different notification groups."""
    notes, planned = [], []
    ids = []
    for g in model.groups:
        for k in g.kpis:
            if not k.thresholds:
                notes.append(f"{g.name}/{k.name}: no thresholds, so no alert to drive")
                continue
            ids.append(f"{g.name}/{k.name}")
    if model.groups:
        fewest = min(model.groups, key=lambda g: sum(1 for k in g.kpis if k.thresholds))
        ids.append(f"{fewest.name}/{DOWN}")
    if only is not None:
        wanted = set(only)
        unknown = wanted - set(ids) - {i.split("/")[0] + "/*" for i in ids}
        notes.extend(f"only {x}: no such incident (choose from {', '.join(ids)})"
                     for x in sorted(unknown))
        ids = [i for i in ids if i in wanted or i.split("/")[0] + "/*" in wanted]
    for kpi_id in ids:
        try:
            planned.append(plan_one(model, exporter, kpi_id))
        except IncidentError as exc:
            notes.append(f"{kpi_id}: not driven: {exc}")
    before = exporter.sim.kpi_values()
    group_by = notification_group_by(model)
    for p in planned:
        p.affected = exporter.sim.affected(p.incident, before) | {p.id}
        labels = {**dict(p.group.target_labels), **p.main.subset}
        if "..." in group_by:
            p.keys = {(p.id,)}
        else:
            p.keys = {(e.alertname,) + tuple(labels.get(x, "") for x in group_by
                                             if x != "alertname") for e in p.expects}
    waves: list = []
    for p in planned:
        for wave in waves:
            if all(not (p.affected & q.affected) and not (p.keys & q.keys) for q in wave):
                wave.append(p)
                break
        else:
            waves.append([p])
    return waves, notes
