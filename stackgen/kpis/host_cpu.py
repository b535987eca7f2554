"""hosts.<group>.kpis.cpu: the share of time the CPUs are busy, per instance (node_exporter):
idle, iowait and steal are not busy, as in node-mixin."""

from __future__ import annotations

from stackgen.kpis.base import (
    ABOVE, COUNTER, KpiKind, KpiShape, Param, clamp, selector, window_suffix,
)
from stackgen.kpis.synth import counter, series_text
from stackgen.model import HOSTS, Series

METRIC = "node_cpu_seconds_total"
CPUS = 2  # CPUs of a demo host
NOT_BUSY_MODES = "idle|iowait|steal"


class HostCpu(KpiKind):
    kind, key, group, order = "cpu", "cpu", HOSTS, 10
    ratio = True
    default_for = "5m"

    def shape(self, m, path, d, job, window):
        # node-mixin's CPU utilisation (node_exporter docs/node-mixin/rules): per CPU, the
        # share of time not idle, not waiting for I/O and not stolen by the hypervisor
        not_busy = selector(job, f'mode=~"{NOT_BUSY_MODES}"')
        return KpiShape(
            title="CPU busy",
            record=f"instance:node_cpu_busy:ratio_{window_suffix(window)}",
            expr=f"1 - avg without (cpu) (sum without (mode) "
                 f"(rate({METRIC}{not_busy}[{window}])))",
            unit="percentunit", panel="timeseries", alert="HostCpu", per=("instance",),
            inputs=(Series(METRIC, "counter", (("cpu", "0"), ("mode", "idle"))),),
        )

    def test_inputs(self, kpi, base, levels):
        return [(series_text(METRIC, {**base, "cpu": "0", "mode": "idle"}),
                 counter([(1 - v, n) for v, n in levels]))]

    healthy = 0.35
    incidents = {"cpu-high": ABOVE}
    default_incident = "cpu-high"
    serves_always = True

    def demo_setup(self, sim, kpi):
        sim.base["cpu"] = sim.healthy(kpi, self.healthy) if kpi else self.healthy

    def demo_param(self, sim, kpi):
        return Param("cpu", per_target=True)

    def demo_samples(self, sim, i, p, wobble, add):
        busy = clamp(p("cpu") * wobble("cpu"))
        # busy = user + system; idle, iowait and steal are not busy (node-mixin)
        shares = {"idle": (1 - busy) * 0.95, "iowait": (1 - busy) * 0.04,
                  "steal": (1 - busy) * 0.01, "user": busy * 0.7, "system": busy * 0.3}
        for cpu in range(CPUS):
            for mode, rate in shares.items():
                add(METRIC[:-len("_total")], "counter", METRIC, {"cpu": str(cpu), "mode": mode},
                    COUNTER, rate)


KIND = HostCpu()
