"""Demo incidents: which KPI moves, to what value, crossing which thresholds.

An incident moves one KPI just past its most severe threshold (or between warning and
critical) until it ends; its kinds come from the KPI kinds (`incidents` of each module of
stackgen.kpis: cpu-high, latency-spike, ...); `down` makes a target answer 503 or close its
port. `Incidents` is the planning half of the simulation (runtime.sim.Sim).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from stackgen import kpis as K
from stackgen.generators.rule_tests import beyond, crosses
from stackgen.kpis.base import ABOVE, BELOW
from stackgen.model import Group, Kpi, Threshold

DOWN = "down"  # any group: the target answers scrapes with 503 (or closes its port)
RANK = {"warning": 1, "critical": 2}


class IncidentError(ValueError):
    """An incident that cannot be run: unknown KPI or kind, or a KPI that cannot be driven."""


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


def between(a: float, b: float) -> float:
    return math.sqrt(a * b) if a > 0 and b > 0 else (a + b) / 2


def synthetic(kpi: Kpi, healthy: float, direction: str) -> float:
    """A value clearly away from `healthy` for a KPI without thresholds on that side."""
    if direction == ABOVE:
        return healthy + (1 - healthy) * 0.75 if kpi.unit == "percentunit" else healthy * 4
    return healthy / 4


class Incidents:
    """Planning, starting and ending incidents; mixed into runtime.sim.Sim, which provides
    model, groups, active, next_id(), value(), solve() and kpi_values()."""

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

    def is_down(self, group: str, i: int) -> bool:
        return any((group, i) in inc.down for inc in self.active)

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
            return Incident(self.next_id(), g.name, DOWN, targets=(i,), down=((g.name, i),),
                            mode=mode if mode in ("503", "close") else "503")
        k = next((x for x in g.kpis if x.name == kpi), None)
        if k is None:
            raise IncidentError(f"{g.name} has no KPI {kpi!r} (KPIs: "
                                f"{', '.join(x.name for x in g.kpis) or 'none'})")
        kinds = K.incident_kinds()
        kind = kind or self.default_kind(k)
        if kind not in kinds:
            raise IncidentError(f"unknown incident kind {kind!r} (kinds: "
                                f"{', '.join([*kinds, DOWN])})")
        applies, direction = kinds[kind]
        if applies != k.kind:
            fits = [n for n, (a, _) in kinds.items() if a == k.kind]
            raise IncidentError(f"incident {kind!r} does not apply to {g.name}/{k.name} (a "
                                f"{k.kind} KPI; use {', '.join(fits)} or {DOWN})")
        if severity and severity not in RANK:
            raise IncidentError(f"severity must be warning or critical, not {severity!r}")
        sim = self.groups[g.name]
        healthy = sim.healthy_of(k)
        if healthy is None:
            healthy = self.value(g, k)
        value, main = self.aim(k, direction, severity, healthy)
        crossed = tuple(t for t in k.thresholds if crosses(t, value))
        param = sim.kpi_param(k)
        if param is not None:
            if param.per_target:
                targets = (self.target_index(g, target),)
                overrides = {(g.name, targets[0], param.key): value / param.divisor}
            else:
                targets = tuple(range(len(g.targets)))
                overrides = {(g.name, None, param.key): value / param.divisor}
        else:
            targets = tuple(range(len(g.targets)))
            overrides = self.solve(g, k, value) or self.solve(g, k, value, builtin=True)
            if overrides is None:
                raise IncidentError(f"custom KPI {g.name}/{k.name} cannot be driven to "
                                    f"{value:g}: no input of `{k.expr}` moves it there")
        return Incident(self.next_id(), g.name, kind, kpi=k.name, targets=targets,
                        value=value, threshold=main, crossed=crossed, overrides=overrides)

    @staticmethod
    def default_kind(kpi: Kpi) -> str:
        """The KPI's default incident, or where its thresholds are all on the other side
        (GPU utilization with only `warning_below`), its kind's incident for that side."""
        kinds = K.incident_kinds()
        default = K.of(kpi).default_incident
        direction = kinds[default][1]
        if direction is None or any(t.below == (direction == BELOW) for t in kpi.thresholds):
            return default
        return next((n for n, (applies, d) in kinds.items()
                     if applies == kpi.kind and d is not None and d != direction), default)

    def aim(self, kpi: Kpi, direction, severity, healthy):
        """(value, main threshold) of an incident that pushes `kpi` to `direction`."""
        ts = [t for t in kpi.thresholds
              if direction is None or t.below == (direction == BELOW)]
        if severity:
            ts = [t for t in ts if t.severity == severity]
        if not ts:
            if severity:
                raise IncidentError(f"{kpi.name} has no {severity} threshold on that side")
            if direction is None:
                direction = ABOVE
            if healthy is None:
                raise IncidentError(f"{kpi.name} has no threshold and no known value")
            return synthetic(kpi, healthy, direction), None
        main = max(ts, key=lambda t: RANK.get(t.severity, 0))
        worse = [t for t in kpi.thresholds if t.below == main.below
                 and RANK.get(t.severity, 0) > RANK.get(main.severity, 0)]
        if worse:
            nearest = min(worse, key=lambda t: abs(t.value - main.value))
            value = between(main.value, nearest.value)
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
