"""services.<name>.kpis.response_time: a quantile of a latency histogram, with a heatmap of
its buckets beside it; also the SLI of a latency SLO."""

from __future__ import annotations

import math

from stackgen.kpis.base import (
    ABOVE, COUNTER, LOAD, SLO_HEADROOM, Companion, KpiKind, KpiShape, Param, quantile_name,
    selector, stem, window_suffix,
)
from stackgen.kpis.synth import REQ_RATE, counter, series_text
from stackgen.model import SERVICES, Series
from stackgen.spec import units as U

DEFAULT_QUANTILE = 0.95
# Demo exporter: bucket bounds (plus every threshold), and a log-normal latency of this spread.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                   10.0)
SIGMA = 0.5


def buckets_rate(job: str, histogram: str, window: str) -> str:
    return f"sum by (le) (rate({stem(histogram, '_bucket')}_bucket{selector(job)}[{window}]))"


def le_matcher(seconds: float) -> str:
    """A matcher for the bucket `le` equal to `seconds`, whichever way the client wrote it
    (0.5 / 0.50; 2 / 2.0): Prometheus 3 normalises to one form, older servers keep both."""
    text = repr(float(seconds))
    escaped_dot = "\\\\."  # a regex `\.` inside a PromQL double-quoted string
    if text.endswith(".0"):
        return 'le=~"' + text[:-2] + "(" + escaped_dot + '0+)?"'
    return 'le=~"' + text.replace(".", escaped_dot) + '0*"'


def latency_error_ratio(job: str, histogram: str, seconds: float, window: str) -> str:
    """The SLI error ratio of a latency SLO: the share of requests slower than `seconds`."""
    base = stem(histogram, "_bucket")
    return (f"1 - (sum(rate({base}_bucket{selector(job, le_matcher(seconds))}[{window}]))"
            f" / sum(rate({base}_count{selector(job)}[{window}])))")


def bucket_for(kpi, value: float) -> str:
    """The `le` of a single bucket that puts the KPI's quantile at (about) `value`."""
    return "%.6g" % (value / kpi.quantile)


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
        base, _, suffix = d["histogram"].rpartition("_")
        if suffix in ("bucket", "count", "sum") and base:
            m.error(path + ("histogram",), "kpis/histogram",
                    f"histogram {d['histogram']!r} names one series of a histogram; expected "
                    f"the histogram's name without _{suffix}; did you mean {base!r}?")
            return None
        quantile = d.get("quantile", DEFAULT_QUANTILE)
        metric = stem(d["histogram"], "_bucket")
        buckets = buckets_rate(job, metric, window)
        return KpiShape(
            title=f"{quantile_name(quantile)} response time",
            record=f"service:{metric}:{quantile_name(quantile)}_{window_suffix(window)}",
            expr=f"histogram_quantile({quantile}, {buckets})",
            unit="s", panel="heatmap", alert="ResponseTime", heatmap_expr=buckets,
            aggregated=True, inputs=(Series(metric, "histogram"),), quantile=quantile,
        )

    def test_inputs(self, kpi, base, levels):
        """All requests of a level fall in one bucket; that level's quantile is q * le."""
        metric = kpi.inputs[0].metric
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
        le = float(bucket_for(kpi, v))
        lower = max((x for x in (float(bucket_for(kpi, w)) for w, _ in levels) if x < le),
                    default=0.0)
        return lower + (le - lower) * kpi.quantile

    def companions(self, kpi):
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
        sim.state.setdefault(self.kind, []).append(
            (metric, q, sorted({*DEFAULT_BUCKETS, *extra, top * 2, top * 5})))
        for suffix in ("_bucket", "_count", "_sum"):
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
            for le in buckets:
                add(metric, "histogram", f"{metric}_bucket", {"le": floatToGoString(le)},
                    COUNTER, load * cdf(le))
            add(metric, "histogram", f"{metric}_bucket", {"le": "+Inf"}, COUNTER, load)
            add(metric, "histogram", f"{metric}_count", {}, COUNTER, load)
            add(metric, "histogram", f"{metric}_sum", {}, COUNTER,
                load * median * math.exp(SIGMA**2 / 2))


KIND = ResponseTime()
