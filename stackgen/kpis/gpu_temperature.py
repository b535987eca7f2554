"""gpus.<group>.kpis.temperature: GPU temperature in degrees Celsius, per GPU (NVIDIA DCGM
exporter, DCGM_FI_DEV_GPU_TEMP). On by default: warning above 85, critical above 90, for 5m
(docs/spec.md says where these come from)."""

from __future__ import annotations

from stackgen.kpis.base import ABOVE, GAUGE, DefaultKind, KpiShape, Param, selector
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import GPUS, Series
from stackgen.spec import units as U

METRIC = "DCGM_FI_DEV_GPU_TEMP"  # degrees Celsius


class GpuTemperature(DefaultKind):
    kind, key, group, order = "gpu_temperature", "temperature", GPUS, 30
    parse = staticmethod(U.number)
    default_for = "5m"
    defaults = {"warning": 85, "critical": 90}
    instant = True
    series_labels = {"gpu": "0"}

    def shape(self, m, path, d, job, window):
        return KpiShape(
            title="GPU temperature", record="gpu:dcgm_gpu_temp:celsius",
            expr=f"{METRIC}{selector(job)}",
            unit="celsius", panel="timeseries", alert="GpuTemperature", per=("instance", "gpu"),
            inputs=(Series(METRIC, "gauge", (("gpu", "0"),)),),
        )

    def test_inputs(self, kpi, base, levels):
        return [(series_text(METRIC, {**base, "gpu": "0"}), gauge(levels))]

    healthy = 62.0  # a data-centre GPU under load, well cooled
    incidents = {"gpu-hot": ABOVE}
    default_incident = "gpu-hot"
    serves_always = True

    def demo_setup(self, sim, kpi):
        value = sim.healthy(kpi, self.healthy) if kpi else self.healthy
        for g in range(sim.gpus):
            sim.base[f"temp:{g}"] = value

    def demo_param(self, sim, kpi):
        return Param("temp:0", per_target=True, wobble=tuple(f"temp:{g}" for g in range(sim.gpus)))

    def demo_samples(self, sim, i, p, wobble, add):
        for g in range(sim.gpus):
            add(METRIC, "gauge", METRIC, sim.gpu_labels(i, g), GAUGE,
                p(f"temp:{g}") * wobble(f"temp:{g}"))


KIND = GpuTemperature()
