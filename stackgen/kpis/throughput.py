"""services.<name>.kpis.throughput: requests per second, summed over the service's targets."""

from __future__ import annotations

from stackgen.kpis.base import (
    ABOVE, BELOW, LOAD, KpiKind, KpiShape, Param, selector, stem, window_suffix,
)
from stackgen.kpis.synth import counter, series_text
from stackgen.model import SERVICES, Series
from stackgen.spec.selectors import check_filter
from stackgen.spec import units as U


class Throughput(KpiKind):
    kind, key, group, order = "throughput", "throughput", SERVICES, 20
    parse = staticmethod(U.parse_rate)
    default_for = "10m"
    draw = "bars"

    def shape(self, m, path, d, job, window):
        flt = check_filter(m, path + ("filter",), d["filter"]) if "filter" in d else None
        if "filter" in d and flt is None:
            return None
        metric = d["counter"]
        return KpiShape(
            title="Throughput",
            record=f"service:{stem(metric, '_total')}:{window_suffix(window)}",
            expr=f"sum(rate({metric}{selector(job, *filter(None, [flt]))}[{window}]))",
            unit="reqps", panel="timeseries", alert="Throughput", aggregated=True,
            inputs=(Series(metric, "counter"),), filter=flt,
        )

    def test_inputs(self, kpi, base, levels):
        return [(series_text(kpi.inputs[0].metric, base), counter(levels))]

    def detail(self, kpi, sel):
        from stackgen.kpis.exporters import RATE, Panel, Query

        metric = kpi.inputs[0].metric
        return Panel(0, "Requests per instance", f"Requests per second (`{metric}`) of each "
                     "target: the rate of RED.", "reqps", (Query(
                         f"sum by (instance) (rate({metric}{{{sel}}}[{RATE}]))",
                         "{{instance}}"),), min=0)

    incidents = {"throughput-drop": BELOW, "throughput-spike": ABOVE}
    default_incident = "throughput-drop"

    def demo_setup(self, sim, kpi):
        sim.serve_requests(kpi.inputs[0].metric)
        n = max(sim.n, 1)  # a group scraped only in Kubernetes has no target here
        sim.base[LOAD] = sim.healthy(kpi, sim.base[LOAD] * n) / n

    def demo_param(self, sim, kpi):
        return Param(LOAD, per_target=False, divisor=max(sim.n, 1))


KIND = Throughput()
