"""gpus.<group>.kpis.xid_errors: a new XID error, per GPU (NVIDIA DCGM exporter). On by
default: warning on any new XID.

DCGM_FI_DEV_XID_ERRORS is a gauge holding the code of the last XID error the GPU reported
(0: none since the exporter started); it stays at that code until the next XID, and recent
exporters add the code as `err_code` and `err_msg` labels (a new code is a new series). So
"an XID happened" is "the per-GPU code, labels aside, is non-zero and changed within the
last 10m": the value is that code, 0 otherwise, and the alert fires at once and resolves
10m after the last change. A repeat of the same code is invisible in this gauge."""

from __future__ import annotations

from stackgen.kpis.base import ABOVE, GAUGE, DefaultKind, KpiShape, Param, selector
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import GPUS, Series
from stackgen.spec import units as U

METRIC = "DCGM_FI_DEV_XID_ERRORS"  # the code of the last XID error, a gauge
RECENT = "10m"  # how long a new XID keeps the value (and the alert) up


class GpuXidErrors(DefaultKind):
    kind, key, group, order = "gpu_xid_errors", "xid_errors", GPUS, 40
    parse = staticmethod(U.number)
    default_for = "0s"
    defaults = {"warning": 0}
    instant = True
    series_labels = {"gpu": "0"}

    def shape(self, m, path, d, job, window):
        code = f"max without (err_code, err_msg) ({METRIC}{selector(job)})"
        return KpiShape(
            title="New XID error", record="gpu:dcgm_xid_errors:new_code",
            expr=f"{code} * (changes({code}[{RECENT}:]) > bool 0)",
            unit="short", panel="timeseries", alert="GpuXidError", per=("instance", "gpu"),
            inputs=(Series(METRIC, "gauge", (("gpu", "0"),)),),
        )

    def test_inputs(self, kpi, base, levels):
        return [(series_text(METRIC, {**base, "gpu": "0"}),
                 gauge([(max(round(v), 0), n) for v, n in levels]))]

    def actual_value(self, kpi, v, levels):
        return float(max(round(v), 0))  # a code: whole, never negative

    healthy = 0.0
    steady = False  # changes() is 0 in any steady state: smoke's alert run proves the incident
    incidents = {"gpu-xid": ABOVE}
    default_incident = "gpu-xid"
    serves_always = True

    def demo_setup(self, sim, kpi):
        for g in range(sim.gpus):
            sim.base[f"xid:{g}"] = 0.0

    def demo_param(self, sim, kpi):
        return Param("xid:0", per_target=True)

    def demo_samples(self, sim, i, p, wobble, add):
        for g in range(sim.gpus):
            code = max(round(p(f"xid:{g}")), 0)
            labels = {**sim.gpu_labels(i, g), "err_code": str(code),
                      "err_msg": "No Error" if code == 0 else "Unknown Error"}
            add(METRIC, "gauge", METRIC, labels, GAUGE, code)


KIND = GpuXidErrors()
