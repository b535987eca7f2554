"""NVIDIA's DCGM exporter beyond the GPU KPIs: a GPU group's panels (utilisation,
framebuffer memory, temperature, power, SM clock, XID errors) and the demo series behind them.

Metric names, types and units: dcgm-exporter's etc/default-counters.csv (gauges: GPU_UTIL in
%, FB_FREE/FB_USED/FB_RESERVED in MiB, GPU_TEMP in C, POWER_USAGE in W, SM_CLOCK in MHz,
XID_ERRORS the value of the last XID error, 0 while there has been none), as NVIDIA's DCGM
exporter dashboard shows them.
"""

from __future__ import annotations

from stackgen.kpis import gpu_memory, gpu_temperature, gpu_utilization, gpu_xid_errors
from stackgen.kpis.base import GAUGE, clamp
from stackgen.kpis.exporters import Panel, Query, row

TEMP, XID = gpu_temperature.METRIC, gpu_xid_errors.METRIC  # their kinds serve them
POWER = "DCGM_FI_DEV_POWER_USAGE"
SM_CLOCK = "DCGM_FI_DEV_SM_CLOCK"
RESERVED = gpu_memory.RESERVED
MIB = 2**20
GPU = "{{instance}} GPU {{gpu}}"


def panels(sel: str) -> tuple:
    used, free = gpu_memory.USED, gpu_memory.FREE
    return (
        row(0, "GPUs"),
        Panel(1, "GPU utilisation per GPU", "Share of time one or more kernels ran on the GPU.",
              "percent", (Query(f"{gpu_utilization.METRIC}{{{sel}}}", GPU),), width=12, min=0,
              max=100, unless=gpu_utilization.KIND.kind),
        Panel(2, "Framebuffer memory", "GPU memory used, reserved by the driver, and free.",
              "bytes", tuple(Query(f"{m}{{{sel}}} * {MIB}", f"{GPU} {what}")
                             for m, what in ((used, "used"), (RESERVED, "reserved"),
                                             (free, "free"))), width=12, min=0),
        Panel(3, "GPU temperature", "Core temperature; data-centre GPUs slow down (thermal "
              "throttling) in the high 80s C.", "celsius", (Query(f"{TEMP}{{{sel}}}", GPU),),
              min=0, thresholds=((85, "orange"), (90, "red")), unless=gpu_temperature.KIND.kind),
        Panel(4, "Power draw", "Power each GPU draws.", "watt",
              (Query(f"{POWER}{{{sel}}}", GPU),), min=0),
        Panel(5, "SM clock", "Streaming multiprocessor clock; a clock well below the GPU's "
              "usual one under load means throttling (power or heat).", "hertz",
              (Query(f"{SM_CLOCK}{{{sel}}} * 1000000", GPU),), min=0),
        Panel(6, "Last XID error", "The code of the last XID error each GPU reported (0: "
              "none); codes such as 48 (double-bit ECC), 79 (fallen off the bus) need the "
              "GPU reset or replaced.", "none",
              (Query(f"max without (err_code, err_msg) ({XID}{{{sel}}})", GPU),), type="stat",
              width=24, thresholds=((1, "red"),)),
    )


# -- demo series ------------------------------------------------------------------------------
def demo_samples(sim, i, p, wobble, add) -> None:
    """A GPU target's background series; power and clock follow its utilisation (the
    temperature and XID kinds serve those series)."""
    for g in range(sim.gpus):
        labels = sim.gpu_labels(i, g)
        util = clamp(p(f"util:{g}") * wobble(f"util:{g}"))
        add(POWER, "gauge", POWER, labels, GAUGE, 60 + 300 * util)
        add(SM_CLOCK, "gauge", SM_CLOCK, labels, GAUGE, 1410 if util > 0.05 else 210)
        # RESERVED: served by gpu_memory (its KPI reads it)
