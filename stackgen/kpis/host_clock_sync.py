"""hosts.<group>.kpis.clock_sync: the clock's maximum error while the kernel reports it
unsynchronised, per instance (node_exporter's timex collector). On by default: node-mixin's
NodeClockNotSynchronising (sync status 0 over 5m and maxerror >= 16 s, for 10m).

The value is node_timex_maxerror_seconds while node_timex_sync_status has been 0 for the
whole range, else 0. The kernel grows maxerror while unsynchronised and caps it at 16 s, so
the threshold compares with >= (`inclusive`): 16 s is the value that says "given up"."""

from __future__ import annotations

from stackgen.kpis.base import ABOVE, GAUGE, DefaultKind, KpiShape, Param, capped, selector
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import HOSTS, Series
from stackgen.spec import units as U

SYNC, MAXERROR = "node_timex_sync_status", "node_timex_maxerror_seconds"
RANGE = "5m"  # node-mixin's min_over_time() range
SYNCED_MAXERROR = 0.02  # seconds: a synchronised clock's maxerror in the demo


class HostClockSync(DefaultKind):
    kind, key, group, order = "clock_sync", "clock_sync", HOSTS, 61
    parse = staticmethod(U.parse_seconds)
    inclusive = True
    default_for = "10m"
    defaults = {"warning": "16s"}

    def shape(self, m, path, d, job, window):
        sel = selector(job)
        return KpiShape(
            title="Clock max error (unsynchronised)",
            record="instance:node_timex_maxerror_unsynchronised:seconds",
            expr=f"{MAXERROR}{sel} * (min_over_time({SYNC}{sel}[{capped(window, RANGE)}]) "
                 f"== bool 0)",
            unit="s", panel="timeseries", alert="HostClockMaxError", per=("instance",),
            inputs=(Series(MAXERROR, "gauge"), Series(SYNC, "gauge")),
        )

    instant = True  # the tests keep the clock unsynchronised throughout; maxerror moves

    def test_inputs(self, kpi, base, levels):
        steps = sum(n for _, n in levels)
        return [(series_text(SYNC, base), gauge([(0, steps)])),
                (series_text(MAXERROR, base), gauge(levels))]

    healthy = 0.0
    incidents = {"clock-unsynchronised": ABOVE}
    default_incident = "clock-unsynchronised"
    serves_always = True

    def demo_setup(self, sim, kpi):
        sim.base["clock_maxerror"] = sim.healthy(kpi, self.healthy) if kpi else self.healthy

    def demo_param(self, sim, kpi):
        return Param("clock_maxerror", per_target=True)

    def demo_samples(self, sim, i, p, wobble, add):
        unsynced = p("clock_maxerror")  # the KPI's value: > 0 only while unsynchronised
        add(SYNC, "gauge", SYNC, {}, GAUGE, 0 if unsynced > 0 else 1)
        add(MAXERROR, "gauge", MAXERROR, {}, GAUGE,
            unsynced if unsynced > 0 else SYNCED_MAXERROR * wobble("clock_maxerror_synced"))


KIND = HostClockSync()
