"""gpus.<group>.kpis.utilization: GPU utilisation per GPU (NVIDIA DCGM exporter)."""

from __future__ import annotations

from stackgen.kpis.base import ABOVE, BELOW, GAUGE, KpiKind, KpiShape, Param, clamp, selector
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import GPUS, Series

METRIC = "DCGM_FI_DEV_GPU_UTIL"  # percent, 0..100


class GpuUtilization(KpiKind):
    kind, key, group, order = "gpu_utilization", "utilization", GPUS, 10
    ratio = True
    default_for = "10m"
    instant = True
    series_labels = {"gpu": "0"}

    def shape(self, m, path, d, job, window):
        return KpiShape(
            title="GPU utilisation",
            record="gpu:dcgm_gpu_utilization:ratio",
            expr=f"{METRIC}{selector(job)} / 100",
            unit="percentunit", panel="timeseries", alert="GpuUtilization", per=("instance", "gpu"),
            inputs=(Series(METRIC, "gauge", (("gpu", "0"),)),),
        )

    def test_inputs(self, kpi, base, levels):
        return [(series_text(METRIC, {**base, "gpu": "0"}),
                 gauge([(v * 100, n) for v, n in levels]))]

    healthy = 0.45
    incidents = {"gpu-busy": ABOVE, "gpu-idle": BELOW}  # idle: `warning_below` (wasted GPUs)
    default_incident = "gpu-busy"
    serves_always = True

    def demo_setup(self, sim, kpi):
        value = sim.healthy(kpi, self.healthy) if kpi else self.healthy
        for g in range(sim.gpus):
            sim.base[f"util:{g}"] = value

    def demo_param(self, sim, kpi):
        return Param("util:0", per_target=True, wobble=tuple(f"util:{g}" for g in range(sim.gpus)))

    def demo_samples(self, sim, i, p, wobble, add):
        for g in range(sim.gpus):
            util = clamp(p(f"util:{g}") * wobble(f"util:{g}"))
            add(METRIC, "gauge", METRIC, sim.gpu_labels(i, g), GAUGE, util * 100)


KIND = GpuUtilization()
