"""services.<name>.kpis.error_rate: the share of requests that fail (those the `errors`
matchers select); also the SLI of an availability SLO."""

from __future__ import annotations

import functools

from stackgen.kpis.base import (
    ABOVE, SLO_HEADROOM, KpiKind, KpiShape, Param, selector, stem, window_suffix,
)
from stackgen.kpis.synth import REQ_RATE, counter, series_text
from stackgen.model import SERVICES, Series
from stackgen.spec.selectors import check_filter

ERR = "err"  # the demo parameter: the share of failed requests


def errors_matchers(text: str) -> str:
    """`{code=~"5.."}` or `code=~"5.."` as the spec may write it -> `code=~"5.."`."""
    return text.strip().strip("{}").strip()


def availability_error_ratio(job: str, counter: str, errors: str, window: str,
                             flt: str | None = None) -> str:
    """The SLI error ratio of an availability SLO (no failed request: 0, not no data)."""
    extra = list(filter(None, [flt]))
    return (f"(sum(rate({counter}{selector(job, errors, *extra)}[{window}])) or vector(0))"
            f" / sum(rate({counter}{selector(job, *extra)}[{window}]))")


def label_values(errors: str) -> tuple[dict, dict]:
    """Label values that do (bad) and do not (good) match a KPI's `errors` selector."""
    bad, good = _label_values(errors)
    return dict(bad), dict(good)


@functools.lru_cache(maxsize=1024)  # services share their errors selectors
def _label_values(errors: str) -> tuple[tuple, tuple]:
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
        if op in ("Re", "NotRe"):
            pool += [x for x in [regex_example(m.value)] if x is not None]

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
    return tuple(bad.items()), tuple(good.items())


def regex_example(pattern: str) -> str | None:
    """A short string the regular expression matches (its first branches, fewest repeats),
    or None for one this cannot follow (a lookaround, a back reference)."""
    import re

    try:
        from re import _parser as sre  # Python 3.11+
    except ImportError:  # pragma: no cover
        import sre_parse as sre

    def walk(items) -> str:
        out = ""
        for op, arg in items:
            name = str(op)
            if name == "LITERAL":
                out += chr(arg)
            elif name == "ANY":
                out += "x"
            elif name == "IN":
                kinds = {str(o): a for o, a in reversed(arg)}
                if "NEGATE" in kinds:
                    out += "~"
                elif "LITERAL" in kinds or "RANGE" in kinds:
                    lit = kinds.get("LITERAL", kinds.get("RANGE"))
                    out += chr(lit[0] if isinstance(lit, tuple) else lit)
                else:  # a class: \d, \w, \s
                    out += {"CATEGORY_DIGIT": "0", "CATEGORY_SPACE": " "}.get(
                        str(kinds.get("CATEGORY")), "a")
            elif name == "CATEGORY":
                out += "0" if "DIGIT" in str(arg) else "a"
            elif name == "BRANCH":
                out += walk(arg[1][0])
            elif name == "SUBPATTERN":
                out += walk(arg[-1])
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                out += walk(arg[2]) * arg[0]
            elif name == "AT":
                continue
            else:
                raise ValueError(name)
        return out

    try:
        text = walk(sre.parse(pattern))
    except (ValueError, TypeError, IndexError, re.error):
        return None
    return text if re.fullmatch(pattern, text) else None


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
        flt = check_filter(m, path + ("filter",), d["filter"]) if "filter" in d else None
        if "filter" in d and flt is None:
            return None
        metric, extra = d["counter"], list(filter(None, [flt]))
        return KpiShape(
            title="Error ratio",
            record=f"service:{stem(metric, '_total')}:error_ratio_{window_suffix(window)}",
            expr=f"sum(rate({metric}{selector(job, errors, *extra)}[{window}]))"
                 f" / sum(rate({metric}{selector(job, *extra)}[{window}]))",
            unit="percentunit", panel="stat", alert="ErrorRate", aggregated=True,
            inputs=(Series(metric, "counter"),), errors=errors, filter=flt,
        )

    def test_inputs(self, kpi, base, levels):
        return split_inputs(kpi.inputs[0].metric, kpi.errors, base, levels)

    def detail(self, kpi, sel):
        from stackgen.kpis.exporters import RATE, Panel, Query

        metric = kpi.inputs[0].metric
        errors = f"sum by (instance) (rate({metric}{{{sel},{kpi.errors}}}[{RATE}]))"
        total = f"sum by (instance) (rate({metric}{{{sel}}}[{RATE}]))"
        return Panel(0, "Error ratio per instance", f"Share of requests that failed "
                     f"({kpi.errors}) on each target: the errors of RED.", "percentunit",
                     (Query(f"({errors} or {total} * 0) / {total}", "{{instance}}"),),
                     min=0, max=1)

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
