"""services.<name>.kpis.response_time: a quantile of a latency histogram, with a heatmap of
its buckets beside it, also the SLI of a latency SLO; or (`summary:`) the quantile a client-side
summary computes itself, the worst across the service's series (summary quantiles cannot be
averaged or summed), with no SLO (a summary cannot give a share of good requests)."""

from __future__ import annotations

import math

from stackgen.kpis.base import (
    ABOVE, COUNTER, GAUGE, LOAD, SLO_HEADROOM, Companion, KpiKind, KpiShape, Param, quantile_name,
    selector, stem, window_suffix,
)
from stackgen.kpis.synth import REQ_RATE, counter, gauge, series_text
from stackgen.model import SERVICES, Series
from stackgen.spec import units as U
from stackgen.spec.selectors import check_filter

DEFAULT_QUANTILE = 0.95
# Demo exporter: bucket bounds (plus every threshold), and a log-normal latency of this spread.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                   10.0)
SIGMA = 0.5


def buckets_rate(job: str, histogram: str, window: str, flt: str | None = None) -> str:
    sel = selector(job, *filter(None, [flt]))
    return f"sum by (le) (rate({stem(histogram, '_bucket')}_bucket{sel}[{window}]))"


def float_matcher(label: str, value: float) -> str:
    """A matcher for the label (`le`, `quantile`) equal to `value`, whichever way the client
    wrote it (0.5 / 0.50; 2 / 2.0): Prometheus 3 normalises to one form, older servers keep
    both."""
    text = repr(float(value))
    escaped_dot = "\\\\."  # a regex `\.` inside a PromQL double-quoted string
    if text.endswith(".0"):
        return f'{label}=~"' + text[:-2] + "(" + escaped_dot + '0+)?"'
    return f'{label}=~"' + text.replace(".", escaped_dot) + '0*"'


def le_matcher(seconds: float) -> str:
    return float_matcher("le", seconds)


def latency_error_ratio(job: str, histogram: str, seconds: float, window: str,
                        flt: str | None = None) -> str:
    """The SLI error ratio of a latency SLO: the share of requests slower than `seconds`."""
    base, extra = stem(histogram, "_bucket"), list(filter(None, [flt]))
    return (f"1 - (sum(rate({base}_bucket{selector(job, le_matcher(seconds), *extra)}"
            f"[{window}])) / sum(rate({base}_count{selector(job, *extra)}[{window}])))")


def summary_expr(job: str, summary: str, q: float, flt: str | None = None) -> str:
    """The worst q-quantile across the summary's series: each client computes its own over
    its own requests, and quantiles of different series cannot be averaged or summed."""
    return f"max({summary}{selector(job, float_matcher('quantile', q), *filter(None, [flt]))})"


def quantile_text(q: float) -> str:
    """The `quantile` label value a client writes for q (0.99, 0.5)."""
    return repr(float(q))


def bucket_for(kpi, value: float) -> str:
    """The `le` of a single bucket that puts the KPI's quantile at (about) `value`."""
    return "%.6g" % (value / kpi.quantile)


def is_summary(kpi) -> bool:
    return bool(kpi.inputs) and kpi.inputs[0].kind == "summary"


def lognormal(quantile_value: float, q: float):
    """(median, cdf) of request latencies whose q-quantile is `quantile_value`."""
    from statistics import NormalDist

    normal = NormalDist()
    median = quantile_value / math.exp(SIGMA * normal.inv_cdf(q))

    def cdf(x: float) -> float:
        if x <= 0:
            return 0.0
        return normal.cdf((math.log(x) - math.log(median)) / SIGMA)

    return median, cdf


class ResponseTime(KpiKind):
    kind, key, group, order = "response_time", "response_time", SERVICES, 10
    parse = staticmethod(U.parse_seconds)
    default_for = "5m"

    def shape(self, m, path, d, job, window):
        if ("histogram" in d) == ("summary" in d):
            both = "histogram" in d
            m.error(path + (("summary",) if both else ()), "kpis/response-time-source",
                    "response_time reads either a histogram or a summary; "
                    + ("`histogram` and `summary` are mutually exclusive: keep one" if both else
                       "expected `histogram: <name>` or `summary: <name>`"), at_key=True)
            return None
        flt = None
        if "filter" in d:
            flt = check_filter(m, path + ("filter",), d["filter"])
            if flt is None:
                return None
        if "summary" in d:
            return self.summary_shape(m, path, d, job, flt)
        base, _, suffix = d["histogram"].rpartition("_")
        if suffix in ("bucket", "count", "sum") and base:
            m.error(path + ("histogram",), "kpis/histogram",
                    f"histogram {d['histogram']!r} names one series of a histogram; expected "
                    f"the histogram's name without _{suffix}; did you mean {base!r}?")
            return None
        quantile = d.get("quantile", DEFAULT_QUANTILE)
        metric = stem(d["histogram"], "_bucket")
        buckets = buckets_rate(job, metric, window, flt)
        return KpiShape(
            title=f"{quantile_name(quantile)} response time",
            record=f"service:{metric}:{quantile_name(quantile)}_{window_suffix(window)}",
            expr=f"histogram_quantile({quantile}, {buckets})",
            unit="s", panel="heatmap", alert="ResponseTime", heatmap_expr=buckets,
            aggregated=True, inputs=(Series(metric, "histogram"),), quantile=quantile,
            filter=flt,
        )

    def summary_shape(self, m, path, d, job, flt):
        name = d["summary"]
        base, _, suffix = name.rpartition("_")
        if suffix in ("count", "sum") and base:
            m.error(path + ("summary",), "kpis/summary",
                    f"summary {name!r} names one series of a summary; expected the summary's "
                    f"name without _{suffix}; did you mean {base!r}?")
            return None
        if "buckets" in d:
            m.error(path + ("buckets",), "kpis/summary", "response_time.buckets: a summary has "
                    "no buckets (its client computes the quantiles); remove `buckets`",
                    at_key=True)
            return None
        if "quantile" not in d:
            m.error(path + ("summary",), "kpis/summary-quantile",
                    f"a summary exposes only the quantiles its client computes; name the one "
                    f"to read, one that {name} exposes (its `quantile` label), e.g. "
                    "`quantile: 0.99`", at_key=True)
            return None
        q = d["quantile"]
        return KpiShape(
            title=f"{quantile_name(q)} response time",
            record=f"service:{name}:{quantile_name(q)}",
            expr=summary_expr(job, name, q, flt),
            unit="s", panel="timeseries", alert="ResponseTime", aggregated=True,
            inputs=(Series(name, "summary"),), quantile=q, filter=flt,
        )

    def instant_for(self, kpi):
        """A summary's quantile is a gauge: it follows its input at once."""
        return is_summary(kpi)

    def test_inputs(self, kpi, base, levels):
        """All requests of a level fall in one bucket; that level's quantile is q * le. A
        summary: its quantile series at each level."""
        metric = kpi.inputs[0].metric
        if is_summary(kpi):
            labels = {**base, "quantile": quantile_text(kpi.quantile)}
            return [(series_text(metric, labels), gauge(levels))]
        les = sorted({float(bucket_for(kpi, v)) for v, _ in levels})
        out = []
        for le in les:
            rates = [(REQ_RATE if float(bucket_for(kpi, v)) <= le else 0.0, n) for v, n in levels]
            out.append((series_text(f"{metric}_bucket", {**base, "le": "%.6g" % le}),
                        counter(rates)))
        out.append((series_text(f"{metric}_bucket", {**base, "le": "+Inf"}),
                    counter([(REQ_RATE, n) for _, n in levels])))
        return out

    def actual_value(self, kpi, v, levels):
        """All requests sit in the level's bucket, so histogram_quantile interpolates from the
        next lower `le` of the case's buckets (or 0) to that bucket's `le`."""
        if is_summary(kpi):
            return v
        le = float(bucket_for(kpi, v))
        lower = max((x for x in (float(bucket_for(kpi, w)) for w, _ in levels) if x < le),
                    default=0.0)
        return lower + (le - lower) * kpi.quantile

    def detail(self, kpi, sel):
        from stackgen.kpis.exporters import RATE, Panel, Query

        metric, q = kpi.inputs[0].metric, kpi.quantile or DEFAULT_QUANTILE
        expr = (f"max by (instance) ({metric}{{{sel},{float_matcher('quantile', q)}}})"
                if is_summary(kpi) else f"histogram_quantile({q}, sum by (instance, le) "
                                        f"(rate({metric}_bucket{{{sel}}}[{RATE}])))")
        return Panel(0, f"{quantile_name(q)} response time per instance",
                     f"The {quantile_name(q)} of `{metric}` on each target: the duration of "
                     "RED.", "s", (Query(expr, "{{instance}}"),), min=0)

    def companions(self, kpi):
        if is_summary(kpi):
            return ()  # a summary has no buckets to draw
        histogram = kpi.inputs[0].metric if kpi.inputs else "the histogram"
        return (Companion(
            type="heatmap", title="Response time distribution",
            description=f"Requests per second in each `{histogram}` bucket; the y axis is the "
                        "bucket's upper bound (le).",
            expr=kpi.heatmap_expr, legend="{{le}}", unit="reqps", axis_unit=kpi.unit),)

    healthy = 0.12
    incidents = {"latency-spike": ABOVE}
    default_incident = "latency-spike"

    def demo_setup(self, sim, kpi):
        from statistics import NormalDist

        metric, q = kpi.inputs[0].metric, kpi.quantile or DEFAULT_QUANTILE
        ts = [t.value for t in kpi.thresholds]
        extra = ts + [s.threshold for s in sim.group.slos if s.threshold]
        top = max(extra, default=1.0)
        summary = is_summary(kpi)
        sim.state.setdefault(self.kind, []).append(
            (metric, q, None if summary else sorted({*DEFAULT_BUCKETS, *extra, top * 2,
                                                      top * 5})))
        if summary:  # its _count is the request counter (Micrometer's, split by status)
            sim.serve(metric, moved_by=(f"lat:{metric}",))
            sim.serve_requests(f"{metric}_count")
        for suffix in ("_sum",) if summary else ("_bucket", "_count", "_sum"):
            sim.serve(metric + suffix, moved_by=(f"lat:{metric}", LOAD))
        value = sim.healthy(kpi, self.healthy)
        slo = next((s for s in sim.group.slos if s.kind == "latency" and s.threshold), None)
        if slo is not None:
            allowed = SLO_HEADROOM * (1 - slo.objective)
            z = NormalDist().inv_cdf(q) - NormalDist().inv_cdf(1 - allowed)
            value = min(value, slo.threshold * math.exp(SIGMA * z) * 0.9)
        sim.base[f"lat:{metric}"] = value

    def demo_param(self, sim, kpi):
        return Param(f"lat:{kpi.inputs[0].metric}", per_target=False)

    def demo_samples(self, sim, i, p, wobble, add):
        from prometheus_client.utils import floatToGoString

        load = p(LOAD) * wobble(LOAD)
        for metric, q, buckets in sim.state[self.kind]:
            lat = p(f"lat:{metric}") * wobble(f"lat:{metric}", 0.02)
            median, cdf = lognormal(lat, q)
            mean = median * math.exp(SIGMA**2 / 2)
            if buckets is None:  # a summary: the client's quantiles and sum (the request
                #                  counters serve its _count)
                for x in sorted({0.5, q}):
                    add(metric, "summary", metric, {"quantile": quantile_text(x)}, GAUGE,
                        lat if x == q else median)
                add(metric, "summary", f"{metric}_sum", {}, COUNTER, load * mean)
                continue
            for le in buckets:
                add(metric, "histogram", f"{metric}_bucket", {"le": floatToGoString(le)},
                    COUNTER, load * cdf(le))
            add(metric, "histogram", f"{metric}_bucket", {"le": "+Inf"}, COUNTER, load)
            add(metric, "histogram", f"{metric}_count", {}, COUNTER, load)
            add(metric, "histogram", f"{metric}_sum", {}, COUNTER, load * mean)


KIND = ResponseTime()
