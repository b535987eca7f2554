"""Spec checks on values that build fine and then never work (check ids below).

- `kpis/dead-threshold`: a threshold the KPI's value can never cross: `warning_below: 0%`
  on a value that is never negative, `warning: 100%` on a ratio that never exceeds 1, a
  response time above the histogram's highest finite bucket (histogram_quantile never
  returns more than that bound: an observation in the +Inf bucket reads as the highest
  finite bound). With no `buckets:` listed, `kpis/bucket-unknown` warns instead.
- `values/rate-window`: a rate window shorter than 4x the scrape interval (Grafana's
  `$__rate_interval` and Prometheus' own guidance use the same rule: rate() needs at least
  two samples in its window, and 4x leaves room for a missed scrape). This covers
  `stack.rate_window` (every KPI's rate) and each SLO's shortest window (5m).
- `slos/name`: two SLOs of one service with the same `name` (their sloth_id would clash).
"""

from __future__ import annotations

from stackgen.model import Model
from stackgen.spec import units as U
from stackgen.spec.schema import _path_text

# KPIs whose value is never negative, and those that are ratios never above 1.
NON_NEGATIVE = {"cpu", "memory", "disk", "gpu_utilization", "gpu_memory", "response_time",
                "throughput", "error_rate", "accuracy"}
AT_MOST_ONE = {"cpu", "memory", "gpu_utilization", "gpu_memory", "error_rate", "accuracy"}
RATE_WINDOW_FACTOR = 4


def _kpi_path(group, kpi) -> tuple:
    return (group.kind, group.name, "kpis", kpi.name)


def _threshold_key(t) -> str:
    return t.severity + ("_below" if t.below else "")


def dead_thresholds(mapper, model: Model, d: dict) -> None:
    for group in model.groups:
        for kpi in group.kpis:
            if kpi.kind == "custom":
                continue
            path = _kpi_path(group, kpi)
            for t in kpi.thresholds:
                where = path + (_threshold_key(t),)
                text = _path_text(where)
                if t.below and t.value <= 0 and kpi.kind in NON_NEGATIVE:
                    mapper.error(where, "kpis/dead-threshold",
                                 f"{text}: {t.text} can never fire: {kpi.title.lower()} is "
                                 "never below 0; expected a threshold above 0")
                elif not t.below and t.value >= 1 and kpi.kind in AT_MOST_ONE:
                    mapper.error(where, "kpis/dead-threshold",
                                 f"{text}: {t.text} can never fire: {kpi.title.lower()} is a "
                                 "ratio that never exceeds 100%; expected a threshold below "
                                 "100%")
            if kpi.kind == "response_time":
                _response_time(mapper, d, group, kpi, path)


def _response_time(mapper, d: dict, group, kpi, path) -> None:
    above = [t for t in kpi.thresholds if not t.below]
    if not above:
        return
    raw = d.get(group.kind, {}).get(group.name, {}).get("kpis", {}).get("response_time", {})
    if "histogram" not in raw:
        return  # a summary's quantile is the client's own: no bucket bounds it
    buckets = [b for b in (U.parse_seconds(x) for x in raw.get("buckets", [])) if b is not None]
    top = max(above, key=lambda t: t.value)
    if not buckets:
        mapper.warn(path + (_threshold_key(top),), "kpis/bucket-unknown",
                    f"{_path_text(path + (_threshold_key(top),))}: {top.text} fires only if "
                    f"{raw.get('histogram')} has a finite bucket above it (histogram_quantile "
                    "never returns more than the highest finite `le`); list the histogram's "
                    "`buckets:` so that stackgen can check it")
        return
    highest = max(buckets)
    for t in above:
        if t.value >= highest:
            where = path + (_threshold_key(t),)
            mapper.error(where, "kpis/dead-threshold",
                         f"{_path_text(where)}: {t.text} can never fire: the highest finite "
                         f"bucket of {raw.get('histogram')} is {U.fmt_number(highest)}s, and "
                         "histogram_quantile never returns more than that; expected a "
                         f"threshold below {U.fmt_number(highest)}s, or a larger bucket")


def rate_windows(mapper, model: Model, d: dict) -> None:
    s = d.get("stack", {})
    scrape = model.stack.scrape_interval
    if not (U.is_duration(scrape) and U.is_duration(model.stack.rate_window)):
        return
    least = U.duration_seconds(scrape) * RATE_WINDOW_FACTOR
    need = U.format_duration(least)
    uses_rate = any(k.kind in ("cpu", "response_time", "throughput", "error_rate")
                    for g in model.groups for k in g.kpis)
    if uses_rate and U.duration_seconds(model.stack.rate_window) < least:
        given = "rate_window" in s
        mapper.error(("stack", "rate_window" if given else "scrape_interval"), "values/rate-window",
                     f"stack.rate_window {model.stack.rate_window}"
                     f"{'' if given else ' (the default)'} is shorter than 4x scrape_interval "
                     f"{scrape}: rate() over it is often empty; expected a rate_window of at "
                     f"least {need}")
    from stackgen.generators.slo_rules import windows

    for group in model.groups:
        for slo in group.slos:
            shortest = windows(slo)[0]
            if U.duration_seconds(shortest) < least:
                mapper.error((group.kind, group.name, "slos", slo.kind), "values/rate-window",
                             f"{group.kind}.{group.name}.slos.{slo.kind}: its shortest burn-rate "
                             f"window {shortest} is shorter than 4x scrape_interval {scrape}, so "
                             "its rate is often empty and the burn-rate alerts never fire; "
                             f"expected a scrape_interval of at most "
                             f"{U.format_duration(U.duration_seconds(shortest) / 4)}",
                             at_key=True)


def slo_names(mapper, model: Model) -> None:
    for group in model.groups:
        seen = {}
        for slo in group.slos:
            if slo.slo_name in seen:
                mapper.error((group.kind, group.name, "slos", slo.kind, "name"), "slos/name",
                             f"{group.kind}.{group.name}.slos.{slo.kind}: name {slo.slo_name!r} "
                             f"is also the name of the {seen[slo.slo_name]} SLO; each SLO of a "
                             "service needs its own name (it makes Sloth's sloth_id)")
            seen[slo.slo_name] = slo.kind


def check(mapper, model: Model, d: dict) -> None:
    dead_thresholds(mapper, model, d)
    rate_windows(mapper, model, d)
    slo_names(mapper, model)
