"""The demo exporter's world: every group's simulation, the incidents in force, and what
each KPI's value settles at (stackgen.runtime.steady evaluates the KPI expressions over the
series). Custom KPIs are driven by solving for their inputs, which keeps ratios such as
cache hits / requests within 0..1.
"""

from __future__ import annotations

import itertools
import math
import time
import zlib

from stackgen import kpis as K
from stackgen.kpis.base import clamp
from stackgen.model import Group, Kpi, Model
from stackgen.runtime import steady
from stackgen.runtime.incidents import Incidents
from stackgen.runtime.simulation import WOBBLE, WOBBLE_PERIOD, GroupSim, Sample, free_inputs, \
    healthy_value


class Sim(Incidents):
    """Parameters of every group and target, the incidents in force, and the series."""

    def __init__(self, model: Model):
        from dataclasses import replace

        # each kind's demo view of its KPIs (the disk: shares as bytes of its filesystem)
        model = replace(model, groups=tuple(
            replace(g, kpis=tuple(K.of(k).demo_kpi(k) for k in g.kpis)) for g in model.groups))
        self.model = model
        free = free_inputs(model)
        self.groups = {g.name: GroupSim(model, g, free[g.name]) for g in model.groups}
        self.active: list = []
        self._ids = itertools.count(1)
        self.notes: list = []
        for g in model.groups:
            for kpi in g.kpis:  # KPIs without a parameter of their own (custom): solve
                if kpi.thresholds and K.of(kpi).demo_param(self.groups[g.name], kpi) is None:
                    self.calibrate_healthy(g, kpi)

    def next_id(self) -> int:
        return next(self._ids)

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
                    {steady.label_key(lb): v for lb, v in res}
        return out

    def value(self, group: Group, kpi: Kpi, overrides=None) -> float | None:
        try:
            vals = steady.values(kpi.expr, self.world(overrides))
        except (steady.Unsupported, ZeroDivisionError, ValueError):
            return None
        vals = [v for v in vals if not math.isnan(v)]
        return sum(vals) / len(vals) if vals else None

    # -- custom KPIs --------------------------------------------------------------------
    def custom_keys(self, group: Group, kpi: Kpi, builtin=False) -> list:
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
                    for c in sim.moved_by(metric):
                        if (name, c) not in keys:
                            keys.append((name, c))
        return keys

    def solve(self, group: Group, kpi: Kpi, target: float, builtin=False,
              overrides=None) -> dict | None:
        """Overrides that put the custom KPI at `target`: scale one input (or all of them)."""
        overrides = dict(overrides or {})
        keys = self.custom_keys(group, kpi, builtin)
        options = [[k] for k in keys] + ([keys] if len(keys) > 1 else [])
        for chosen in options:
            start = {k: self.param(k[0], None, k[1], overrides, active=False) or 1.0
                     for k in chosen}
            # start where a proportional input would give the target (a heap in bytes is
            # ~1e9 times the demo's 1.0: beyond the grid below); the grid then searches
            ov0 = dict(overrides)
            ov0.update({(g, None, key): v for (g, key), v in start.items()})
            v0 = self.value(group, kpi, ov0)
            if v0 is not None and v0 > 0 and target > 0 and math.isfinite(v0) and \
                    not 1e-3 <= target / v0 <= 1e3:
                start = {k: v * target / v0 for k, v in start.items()}

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

    def calibrate_healthy(self, group: Group, kpi: Kpi):
        # Always aim at the computed healthy value: free inputs start at 1 per request, which
        # would make e.g. cache hits / requests a perfect (and unrealistic) 100%.
        target = healthy_value(kpi, math.nan)
        if kpi.unit == "percentunit":
            target = clamp(target, 0.0, 1.0)
        ov = self.solve(group, kpi, target)
        if ov is None:
            self.notes.append(f"custom KPI {group.name}/{kpi.name}: cannot choose healthy "
                              f"inputs for `{kpi.expr}`")
            return
        for (gname, _, key), v in ov.items():
            self.groups[gname].base[key] = v
