"""gpus.<group>.kpis.memory: the share of framebuffer memory in use, per GPU (NVIDIA DCGM
exporter)."""

from __future__ import annotations

from stackgen.kpis.base import ABOVE, GAUGE, KpiKind, KpiShape, Param, clamp, selector
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import GPUS, Series

# MiB; all three are default dcgm-exporter counters (etc/default-counters.csv): the whole
# framebuffer is used + free + reserved
USED, FREE, RESERVED = "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED"
DEMO_RESERVED_MIB = 570
TEST_TOTAL_MIB = 1000  # framebuffer of a GPU in the generated tests
DEMO_TOTAL_MIB = 81920  # and of a demo GPU (an 80 GB A100)


class GpuMemory(KpiKind):
    kind, key, group, order = "gpu_memory", "memory", GPUS, 20
    ratio = True
    default_for = "5m"
    instant = True
    series_labels = {"gpu": "0"}

    def shape(self, m, path, d, job, window):
        sel = selector(job)
        return KpiShape(
            title="GPU memory used",
            record="gpu:dcgm_fb_used:ratio",
            # an exporter without the reserved counter counts it as 0
            expr=f"{USED}{sel} / ({USED}{sel} + {FREE}{sel} + ({RESERVED}{sel} or "
                 f"{FREE}{sel} * 0))",
            unit="percentunit", panel="gauge", alert="GpuMemory", per=("instance", "gpu"),
            inputs=(Series(USED, "gauge", (("gpu", "0"),)), Series(FREE, "gauge", (("gpu", "0"),))),
        )

    def test_inputs(self, kpi, base, levels):
        labels = {**base, "gpu": "0"}
        return [(series_text(USED, labels), gauge([(v * TEST_TOTAL_MIB, n) for v, n in levels])),
                (series_text(FREE, labels),
                 gauge([((1 - v) * TEST_TOTAL_MIB, n) for v, n in levels]))]

    healthy = 0.40
    incidents = {"gpu-memory-full": ABOVE}
    default_incident = "gpu-memory-full"
    serves_always = True

    def demo_setup(self, sim, kpi):
        value = sim.healthy(kpi, self.healthy) if kpi else self.healthy
        for g in range(sim.gpus):
            sim.base[f"fbmem:{g}"] = value

    def demo_param(self, sim, kpi):
        return Param("fbmem:0", per_target=True,
                     wobble=tuple(f"fbmem:{g}" for g in range(sim.gpus)))

    def demo_samples(self, sim, i, p, wobble, add):
        for g in range(sim.gpus):
            used = clamp(p(f"fbmem:{g}") * wobble(f"fbmem:{g}", 0.01))
            labels = sim.gpu_labels(i, g)
            add(USED, "gauge", USED, labels, GAUGE, used * DEMO_TOTAL_MIB)
            add(FREE, "gauge", FREE, labels, GAUGE,
                max(0.0, (1 - used) * DEMO_TOTAL_MIB - DEMO_RESERVED_MIB))
            add(RESERVED, "gauge", RESERVED, labels, GAUGE, DEMO_RESERVED_MIB)


KIND = GpuMemory()
