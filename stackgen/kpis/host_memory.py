"""hosts.<group>.kpis.memory: the share of memory in use, per instance (node_exporter)."""

from __future__ import annotations

from stackgen.kpis.base import ABOVE, GAUGE, KpiKind, KpiShape, Param, clamp, selector
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import HOSTS, Series

AVAILABLE, TOTAL = "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes"
FREE = "node_memory_MemFree_bytes"
TEST_TOTAL = 16 * 2**30  # memory of a host in the generated tests
DEMO_TOTAL = 16 * 2**30  # and of a demo host


class HostMemory(KpiKind):
    kind, key, group, order = "memory", "memory", HOSTS, 20
    ratio = True
    default_for = "5m"
    instant = True

    def shape(self, m, path, d, job, window):
        sel = selector(job)
        return KpiShape(
            title="Memory used",
            record="instance:node_memory_used:ratio",
            expr=f"1 - {AVAILABLE}{sel} / {TOTAL}{sel}",
            unit="percentunit", panel="gauge", alert="HostMemory", per=("instance",),
            inputs=(Series(AVAILABLE, "gauge"), Series(TOTAL, "gauge")),
        )

    def test_inputs(self, kpi, base, levels):
        return [(series_text(TOTAL, base), gauge([(TEST_TOTAL, sum(n for _, n in levels))])),
                (series_text(AVAILABLE, base),
                 gauge([((1 - v) * TEST_TOTAL, n) for v, n in levels]))]

    healthy = 0.55
    incidents = {"memory-full": ABOVE}
    default_incident = "memory-full"
    serves_always = True

    def demo_setup(self, sim, kpi):
        sim.base["mem"] = sim.healthy(kpi, self.healthy) if kpi else self.healthy

    def demo_param(self, sim, kpi):
        return Param("mem", per_target=True)

    def demo_samples(self, sim, i, p, wobble, add):
        used = clamp(p("mem") * wobble("mem", 0.01))
        avail = DEMO_TOTAL * (1 - used)
        add(TOTAL, "gauge", TOTAL, {}, GAUGE, DEMO_TOTAL)
        add(AVAILABLE, "gauge", AVAILABLE, {}, GAUGE, avail)
        add(FREE, "gauge", FREE, {}, GAUGE, avail * 0.4)


KIND = HostMemory()
