"""hosts.<group>.kpis.clock_skew: how far the clock is off while the offset is not shrinking,
per instance (node_exporter's timex collector). On by default: node-mixin's
NodeClockSkewDetected (offset beyond +-0.05 s while it still grows away from zero, for 10m).

The value is |node_timex_offset_seconds| while the offset moves away from zero (or holds),
and 0 while NTP is pulling it back: offset * deriv(offset) >= 0 is node-mixin's two cases
(above +0.05 and growing, below -0.05 and falling) in one comparison."""

from __future__ import annotations

from stackgen.kpis.base import ABOVE, GAUGE, DefaultKind, KpiShape, Param, capped, selector
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import HOSTS, Series
from stackgen.spec import units as U

OFFSET = "node_timex_offset_seconds"
RANGE = "5m"  # node-mixin's deriv() range


class HostClockSkew(DefaultKind):
    kind, key, group, order = "clock_skew", "clock_skew", HOSTS, 60
    parse = staticmethod(U.parse_seconds)
    default_for = "10m"
    defaults = {"warning": "50ms"}

    def shape(self, m, path, d, job, window):
        x = f"{OFFSET}{selector(job)}"
        return KpiShape(
            title="Clock offset (not converging)",
            record="instance:node_timex_offset_diverging:abs_seconds",
            expr=f"abs({x}) * ({x} * deriv({x}[{capped(window, RANGE)}]) >= bool 0)",
            unit="s", panel="timeseries", alert="HostClockSkew", per=("instance",),
            inputs=(Series(OFFSET, "gauge"),),
        )

    instant = True  # an offset that steps away from zero grows: counted at once

    def test_inputs(self, kpi, base, levels):
        return [(series_text(OFFSET, base), gauge(levels))]

    healthy = 0.002  # NTP keeps a healthy clock within a few milliseconds
    incidents = {"clock-skew": ABOVE}
    default_incident = "clock-skew"
    serves_always = True

    def demo_setup(self, sim, kpi):
        sim.base["clock_offset"] = sim.healthy(kpi, self.healthy) if kpi else self.healthy

    def demo_param(self, sim, kpi):
        return Param("clock_offset", per_target=True)

    def demo_samples(self, sim, i, p, wobble, add):
        add(OFFSET, "gauge", OFFSET, {}, GAUGE, p("clock_offset") * wobble("clock_offset", 0.2))


KIND = HostClockSkew()
