"""services.<name>.kpis.error_rate: the share of requests that fail (those the `errors`
matchers select); also the SLI of an availability SLO."""

from __future__ import annotations

from stackgen.kpis.base import (
    ABOVE, SLO_HEADROOM, KpiKind, KpiShape, Param, selector, stem, window_suffix,
)
from stackgen.kpis.synth import REQ_RATE, counter, series_text
from stackgen.model import SERVICES, Series

ERR = "err"  # the demo parameter: the share of failed requests


def errors_matchers(text: str) -> str:
    """`{code=~"5.."}` or `code=~"5.."` as the spec may write it -> `code=~"5.."`."""
    return text.strip().strip("{}").strip()


def availability_error_ratio(job: str, counter: str, errors: str, window: str) -> str:
    """The SLI error ratio of an availability SLO (no failed request: 0, not no data)."""
    return (f"(sum(rate({counter}{selector(job, errors)}[{window}])) or vector(0))"
            f" / sum(rate({counter}{selector(job)}[{window}]))")


def label_values(errors: str) -> tuple[dict, dict]:
    """Label values that do (bad) and do not (good) match a KPI's `errors` selector."""
    import re

    import promql_parser

    sel = promql_parser.parse(f"x{{{errors}}}")
    bad, good = {}, {}
    candidates = ["500", "503", "404", "error", "5xx", "failed", "true", "timeout", "1", "200",
                  "ok", "success", "2xx", "false", "0", "none"]
    for i, m in enumerate(sel.matchers.matchers):
        op = str(m.op).rsplit(".", 1)[-1]
        alts = [a for a in re.split(r"[|()^$]", m.value) if a and re.fullmatch(r"[\w.-]+", a)]
        pool = ([m.value] if op in ("Equal", "NotEqual") else []) + candidates + alts

        def ok(v, negate=False):
            hit = {"Equal": v == m.value, "NotEqual": v != m.value,
                   "Re": re.fullmatch(m.value, v) is not None,
                   "NotRe": re.fullmatch(m.value, v) is None}[op]
            return hit != negate

        bad[m.name] = next((v for v in pool if ok(v)), m.value)
        if i == 0:
            good[m.name] = next((v for v in pool + ["x-good"] if ok(v, negate=True)), "x-good")
        else:
            good[m.name] = bad[m.name]
    return bad, good


def split_inputs(metric: str, errors: str, base: dict, levels: list) -> list[tuple[str, str]]:
    """Failed and good requests of `metric` at each (error ratio, steps) level."""
    bad, good = label_values(errors)
    return [(series_text(metric, {**base, **bad}),
             counter([(v * REQ_RATE, n) for v, n in levels])),
            (series_text(metric, {**base, **good}),
             counter([((1 - v) * REQ_RATE, n) for v, n in levels]))]


class ErrorRate(KpiKind):
    kind, key, group, order = "error_rate", "error_rate", SERVICES, 30
    ratio = True
    default_for = "5m"

    def shape(self, m, path, d, job, window):
        errors = errors_matchers(d["errors"])
        if not m.promql(path + ("errors",), f"x{{{errors}}}", f"errors selector {d['errors']!r}"):
            return None
        metric = d["counter"]
        return KpiShape(
            title="Error ratio",
            record=f"service:{stem(metric, '_total')}:error_ratio_{window_suffix(window)}",
            expr=f"sum(rate({metric}{selector(job, errors)}[{window}]))"
                 f" / sum(rate({metric}{selector(job)}[{window}]))",
            unit="percentunit", panel="stat", alert="ErrorRate", aggregated=True,
            inputs=(Series(metric, "counter"),), errors=errors,
        )

    def test_inputs(self, kpi, base, levels):
        return split_inputs(kpi.inputs[0].metric, kpi.errors, base, levels)

    healthy = 0.002
    incidents = {"error-burst": ABOVE}
    default_incident = "error-burst"

    def demo_setup(self, sim, kpi):
        sim.serve_requests(kpi.inputs[0].metric, split=label_values(kpi.errors), share=ERR)
        value = sim.healthy(kpi, self.healthy)
        slo = next((s for s in sim.group.slos if s.kind == "availability"), None)
        if slo is not None:
            value = min(value, SLO_HEADROOM * (1 - slo.objective))
        sim.base[ERR] = value

    def demo_param(self, sim, kpi):
        return Param(ERR, per_target=False)


KIND = ErrorRate()
