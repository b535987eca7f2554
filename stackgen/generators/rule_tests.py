"""prometheus/tests/*.test.yml: promtool unit tests that prove every generated alert.

Input series are synthesised from the model, so a change of threshold changes the test.
For every threshold alert:

- "breach": the KPI sits at a baseline that no threshold of the alert crosses until `tb`,
  then crosses the threshold. One `for` minus a minute after `tb` nothing fires yet (a breach
  shorter than `for` stays silent); exactly `for` after `tb` (gauge KPIs) or once the rate
  window has filled and `for` has passed (rate-based KPIs), exactly the expected alerts
  fire, with their labels and annotations.
- "inside": the KPI moves from the baseline to just inside the threshold; that alert stays
  silent (alerts of the same name whose thresholds the value does cross are expected).

Target-down alerts, the stack's own alerts and every SLO burn-rate tier get cases too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import promql_parser

from stackgen.artifact import Artifact, to_yaml
from stackgen.generators import prometheus_rules as R
from stackgen.generators import slo_rules as S
from stackgen.generators.prometheus_config import STACK_TARGETS
from stackgen.humanize import expand
from stackgen.model import Group, Kpi, Model, Slo, Threshold
from stackgen.spec.units import duration_seconds, fmt_number

TESTS_DIR = "prometheus/tests"
STEP = 60  # seconds between input samples and between rule evaluations
REQ_RATE = 10.0  # synthetic requests per second
COUNTER_START = 1000.0  # counters start here, not at 0: rate() extrapolates them evenly


def minutes(duration: str) -> int:
    return int(-(-duration_seconds(duration) // 60))  # ceiling


def _fmt(x: float) -> str:
    return fmt_number(float("%.10g" % x))


def label_value(value: str) -> str:
    """A label value as a quoted PromQL string (backslashes, quotes, newlines escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def series_text(metric: str, labels: dict) -> str:
    inner = ",".join(f"{k}={label_value(v)}" for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def gauge(levels: list[tuple[float, int]]) -> str:
    """Values of a gauge that holds each (value, steps) level in turn."""
    return " ".join(f"{_fmt(v)}x{n - 1}" if n > 1 else _fmt(v) for v, n in levels if n > 0)


def counter(levels: list[tuple[float, int]]) -> str:
    """Values of a counter growing at each (rate per second, steps) in turn."""
    out, total, first = [], COUNTER_START, True
    for rate, n in levels:
        if n <= 0:
            continue
        inc = rate * STEP
        start = total if first else total + inc
        out.append(f"{_fmt(start)}+{_fmt(inc)}x{n - 1}")
        total = start + inc * (n - 1)
        first = False
    return " ".join(out)


@dataclass
class Case:
    name: str
    series: list = field(default_factory=list)  # (series text, values text)
    checks: list = field(default_factory=list)  # (eval minutes, alertname, [expected alerts])

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "interval": f"{STEP}s" if STEP % 60 else f"{STEP // 60}m",
            "input_series": [{"series": s, "values": v} for s, v in self.series],
            "alert_rule_test": [{"eval_time": f"{t}m", "alertname": a, "exp_alerts": exp}
                                for t, a, exp in self.checks],
        }


# -- label and annotation expectations ----------------------------------------------------
def scrape_labels(group: Group) -> dict:
    instance = group.targets[0] if group.targets else "10.0.0.1:9100"  # a Service's endpoint
    return {"job": group.job, "instance": instance, **dict(group.target_labels)}


def expected_alert(rule: dict, labels: dict, value: float) -> dict:
    labels = {**labels, **rule["labels"]}
    ann = {k: expand(v, labels, value) for k, v in rule.get("annotations", {}).items()}
    return {"exp_labels": labels, "exp_annotations": ann}


def kpi_labels(group: Group, kpi: Kpi) -> dict:
    """Labels of the KPI's recorded value: the recording's own, or the target's (per-target
    values keep the input labels named in `kpi.per`)."""
    if kpi.record_labels:
        return dict(kpi.record_labels)
    extra = {"mountpoint": "/"} if "mountpoint" in kpi.per else {}
    if "gpu" in kpi.per:
        extra["gpu"] = "0"
    return {**scrape_labels(group), **extra}


# -- input synthesis per KPI kind ---------------------------------------------------------
def _error_label_values(errors: str) -> tuple[dict, dict]:
    """Label values that do (bad) and do not (good) match a KPI's `errors` selector."""
    import re

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


def kpi_inputs(group: Group, kpi: Kpi, levels: list[tuple[float, int]]) -> list[tuple[str, str]]:
    """Input series that make `kpi` take each (value, steps) level in turn."""
    base = scrape_labels(group)
    k = kpi.kind
    if k == "cpu":
        return [(series_text("node_cpu_seconds_total", {**base, "cpu": "0", "mode": "idle"}),
                 counter([(1 - v, n) for v, n in levels]))]
    if k == "memory":
        total = 16 * 2**30
        return [(series_text("node_memory_MemTotal_bytes", base),
                 gauge([(total, sum(n for _, n in levels))])),
                (series_text("node_memory_MemAvailable_bytes", base),
                 gauge([((1 - v) * total, n) for v, n in levels]))]
    if k == "disk":
        labels = {**base, "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
        return [(series_text("node_filesystem_avail_bytes", labels), gauge(levels))]
    if k == "gpu_utilization":
        return [(series_text("DCGM_FI_DEV_GPU_UTIL", {**base, "gpu": "0"}),
                 gauge([(v * 100, n) for v, n in levels]))]
    if k == "gpu_memory":
        return [(series_text("DCGM_FI_DEV_FB_USED", {**base, "gpu": "0"}),
                 gauge([(v * 1000, n) for v, n in levels])),
                (series_text("DCGM_FI_DEV_FB_FREE", {**base, "gpu": "0"}),
                 gauge([((1 - v) * 1000, n) for v, n in levels]))]
    if k == "response_time":
        return histogram_inputs(kpi, base, levels)
    if k == "throughput":
        return [(series_text(kpi.inputs[0].metric, base), counter(levels))]
    if k == "error_rate":
        bad, good = _error_label_values(kpi.errors)
        metric = kpi.inputs[0].metric
        return [(series_text(metric, {**base, **bad}),
                 counter([(v * REQ_RATE, n) for v, n in levels])),
                (series_text(metric, {**base, **good}),
                 counter([((1 - v) * REQ_RATE, n) for v, n in levels]))]
    if k in ("drift", "accuracy"):
        return [(series_text(kpi.inputs[0].metric, base), gauge(levels))]
    # custom: fed through its own recorded series (its expression is the user's own)
    return [(series_text(kpi.record, dict(kpi.record_labels)), gauge(levels))]


def bucket_for(kpi: Kpi, value: float) -> str:
    """The `le` of a single bucket that puts the KPI's quantile at (about) `value`."""
    return "%.6g" % (value / kpi.quantile)


def histogram_inputs(kpi: Kpi, base: dict, levels) -> list[tuple[str, str]]:
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


def actual_value(kpi: Kpi, v: float, levels: list) -> float:
    """The value the KPI really takes at a synthesised level. For a quantile: all requests
    sit in the level's bucket, so histogram_quantile interpolates from the next lower `le`
    of the case's buckets (or 0) to that bucket's `le`."""
    if kpi.kind != "response_time":
        return v
    le = float(bucket_for(kpi, v))
    lower = max((x for x in (float(bucket_for(kpi, w)) for w, _ in levels) if x < le),
                default=0.0)
    return lower + (le - lower) * kpi.quantile


# -- choosing levels ----------------------------------------------------------------------
def _bounded(kpi: Kpi) -> bool:
    return kpi.unit == "percentunit"


def _nice(v: float, keep) -> float:
    for digits in (2, 3, 4, 6):
        n = float(f"%.{digits}g" % v)
        if keep(n):
            return n
    return v


def beyond(kpi: Kpi, t: Threshold) -> float:
    """A value clearly past the threshold."""
    if not t.below:
        v = t.value + (1 - t.value) / 2 if _bounded(kpi) else (t.value * 1.5 if t.value > 0
                                                               else t.value + 1)
        return _nice(v, lambda n: n > t.value)
    v = t.value / 2 if t.value > 0 else t.value - 1
    return _nice(v, lambda n: n < t.value)


def inside(kpi: Kpi, t: Threshold) -> float:
    """A value just inside the threshold (10% away)."""
    if not t.below:
        v = t.value * 0.9 if t.value > 0 else t.value - 1
        return _nice(v, lambda n: n <= t.value * 0.95 if t.value > 0 else n < t.value)
    v = t.value + (1 - t.value) / 2 if _bounded(kpi) and t.value < 1 else (
        t.value * 1.1 if t.value > 0 else t.value + 1)
    return _nice(v, lambda n: n > t.value)


def baseline(kpi: Kpi, below: bool) -> float:
    """A value that crosses no threshold of this direction."""
    ts = [t.value for t in kpi.thresholds if t.below == below]
    if not below:
        low = min(ts)
        return _nice(low / 2 if low > 0 else low - 1, lambda n: n < low)
    high = max(ts)
    if _bounded(kpi) and high < 1:
        return _nice(high + (1 - high) / 2, lambda n: n > high)
    return _nice(high * 2 if high > 0 else high + 1, lambda n: n > high)


def crosses(t: Threshold, v: float) -> bool:
    return v < t.value if t.below else v > t.value


# KPI kinds whose value follows its input gauges at once (no rate window)
INSTANT_KINDS = ("memory", "disk", "gpu_utilization", "gpu_memory", "drift", "accuracy")


# -- cases --------------------------------------------------------------------------------
def kpi_cases(model: Model, group: Group, index: int, kpi: Kpi) -> list[Case]:
    window = minutes(model.stack.rate_window)
    for_m = minutes(kpi.for_)
    tb = window + 3  # the baseline fills a whole rate window before anything changes
    # A gauge KPI crosses the minute its input does, so the alert must fire exactly `for`
    # later (a longer `for` fails the case); a rate()-based one crosses while the rate window
    # fills, so it is checked once the window is full.
    fire_at = tb + for_m if kpi.kind in INSTANT_KINDS else tb + window + for_m + 1
    total = fire_at + 1
    labels = kpi_labels(group, kpi)
    cases = []
    for t in kpi.thresholds:
        rule_of = {(x.severity, x.below): R.alert_rule(model, group, index, kpi, x)
                   for x in kpi.thresholds}
        name = R.alert_name(kpi, t)
        base = baseline(kpi, t.below)
        same = [x for x in kpi.thresholds if x.below == t.below]

        def expect(v, levels):
            real = actual_value(kpi, v, levels)
            return [expected_alert(rule_of[(x.severity, x.below)], labels, real)
                    for x in same if crosses(x, real)]

        fire = beyond(kpi, t)
        case = Case(f"{name} {t.severity} ({group.name}): fires after {kpi.for_} past "
                    f"{t.text}, silent before")
        levels = [(base, tb), (fire, total - tb)]
        case.series = kpi_inputs(group, kpi, levels)
        if for_m >= 1:
            case.checks.append((tb + for_m - 1, name, []))
        case.checks.append((fire_at, name, expect(fire, levels)))
        cases.append(case)
        quiet = inside(kpi, t)
        case = Case(f"{name} {t.severity} ({group.name}): silent just inside {t.text}")
        levels = [(base, tb), (quiet, total - tb)]
        case.series = kpi_inputs(group, kpi, levels)
        case.checks.append((fire_at, name, expect(quiet, levels)))
        cases.append(case)
    return cases


def target_down_cases(model: Model, rule: dict, job: str, labels: dict) -> list[Case]:
    for_m = minutes(rule["for"])
    tb, total = 3, 3 + for_m + 3
    series = series_text("up", labels)
    down = Case(f"TargetDown ({job}): fires after {rule['for']} down, silent before",
                [(series, gauge([(1, tb), (0, total - tb)]))])
    down.checks.append((tb + for_m - 1, "TargetDown", []))
    down.checks.append((tb + for_m + 1, "TargetDown", [expected_alert(rule, labels, 0)]))
    up = Case(f"TargetDown ({job}): silent while up", [(series, gauge([(1, total)]))])
    up.checks.append((tb + for_m + 1, "TargetDown", []))
    return [down, up]


# How to make each alert on the stack itself fire: (metric, kind, extra labels, value).
STACK_INPUTS = {
    "PrometheusRuleEvaluationFailures": ("prometheus_rule_evaluation_failures_total", "counter",
                                         {"rule_group": "rules/x.yml;x"}, 1 / 60, 5),
    "PrometheusConfigReloadFailed": ("prometheus_config_last_reload_successful", "flag", {}, 0, 0),
    "PrometheusNotConnectedToAlertmanagers": ("prometheus_notifications_alertmanagers_discovered",
                                              "flag", {}, 0, 0),
    "PrometheusNotificationsFailing": ("prometheus_notifications_errors_total", "counter",
                                       {"alertmanager": "http://alertmanager:9093/api/v2/alerts"},
                                       1 / 60, 1 / 60),
    "AlertmanagerNotificationsFailing": ("alertmanager_notifications_failed_total", "counter",
                                         {"integration": "slack"}, 1 / 60, 1 / 60),
    "AlertmanagerConfigReloadFailed": ("alertmanager_config_last_reload_successful", "flag",
                                       {}, 0, 0),
}


def stack_alert_cases(rule: dict) -> list[Case]:
    name = rule["alert"]
    job = rule["labels"]["service"]
    metric, kind, extra, rate, value = STACK_INPUTS[name]
    labels = {"job": job, "instance": STACK_TARGETS[job], "service": job, **extra}
    for_m = minutes(rule["for"]) if rule["for"] != "0s" else 0
    tb = 10
    fire_at = tb + 5 + for_m + 1
    total = fire_at + 1
    series = series_text(metric, labels)
    if kind == "counter":
        bad, good = counter([(0, tb), (rate, total - tb)]), counter([(0, total)])
    else:
        bad, good = gauge([(1, tb), (0, total - tb)]), gauge([(1, total)])
    fire = Case(f"{name}: fires", [(series, bad)])
    if for_m >= 1:
        fire.checks.append((tb + for_m - 1, name, []))
    fire.checks.append((fire_at, name, [expected_alert(rule, labels, value)]))
    quiet = Case(f"{name}: silent when healthy", [(series, good)])
    quiet.checks.append((fire_at, name, []))
    return [fire, quiet]


# -- SLO burn-rate tiers ------------------------------------------------------------------
def _ratio_over(window_m: int, t_end: int, burn_start: int, r: float) -> float:
    """Error ratio over the window ending at t_end, burning at r from burn_start (from 0)."""
    start = max(0, t_end - window_m)
    span = t_end - start
    burned = max(0, t_end - max(start, burn_start))
    return r * burned / span if span else 0.0


def tier_outcome(slo: Slo, t_end: int, burn_start: int, r: float) -> dict:
    """{tier index: short-window ratio} of the tiers that fire at t_end; ValueError when a
    window's ratio is within 10% of its limit (the scenario would prove nothing)."""
    budget = 1 - slo.objective
    fired = {}
    for i, tier in enumerate(S.tiers(slo)):
        limit = tier.factor * budget
        short = _ratio_over(minutes(tier.short), t_end, burn_start, r)
        long = _ratio_over(minutes(tier.long), t_end, burn_start, r)
        for x in (short, long):
            if abs(x - limit) < 0.1 * limit:
                raise ValueError("ambiguous")
        if short > limit and long > limit:
            fired[i] = short
    return fired


def tier_scenario(slo: Slo, i: int, r: float) -> tuple[int, int, dict]:
    """(minutes of clean traffic before the burn, burn minutes, outcome) for tier i: the
    cheapest scenario in which tier i fires and no other tier of its severity does; where
    that cannot be (a ticket tier 3 burn always spends tier 4's budget too), the cheapest in
    which tier i fires."""
    tiers = S.tiers(slo)
    me = tiers[i]
    options = [(0, minutes(me.short) + 10)]
    options += [(minutes(b), minutes(me.long) + 10) for b in ("3h", "8h", "1d", "3d")]
    fallback = None
    for before, burn in options:
        burn += -(before + burn) % 5  # evaluations run every 5m: end on one
        try:
            # the counter's first burn increment lands on the minute before the burn level
            outcome = tier_outcome(slo, before + burn, max(0, before - 1), r)
        except ValueError:
            continue
        if i not in outcome:
            continue
        alone = all(tiers[j].severity != me.severity for j in outcome if j != i)
        if alone:
            return before, burn, outcome
        fallback = fallback or (before, burn, outcome)
    if fallback is None:
        raise ValueError(f"no scenario makes tier {i + 1} of the {slo.kind} SLO fire")
    return fallback


def slo_inputs(group: Group, slo: Slo, levels: list[tuple[float, int]]) -> list[tuple[str, str]]:
    base = scrape_labels(group)
    metric = slo.inputs[0].metric
    if slo.kind == "availability":
        kpi = next(k for k in group.kpis if k.kind == "error_rate")
        bad, good = _error_label_values(kpi.errors)
        return [(series_text(metric, {**base, **bad}),
                 counter([(r * REQ_RATE, n) for r, n in levels])),
                (series_text(metric, {**base, **good}),
                 counter([((1 - r) * REQ_RATE, n) for r, n in levels]))]
    le = "%.6g" % slo.threshold
    return [(series_text(f"{metric}_bucket", {**base, "le": le}),
             counter([((1 - r) * REQ_RATE, n) for r, n in levels])),
            (series_text(f"{metric}_bucket", {**base, "le": "+Inf"}),
             counter([(REQ_RATE, n) for _, n in levels])),
            (series_text(f"{metric}_count", base), counter([(REQ_RATE, n) for _, n in levels]))]


def slo_cases(model: Model, group: Group, index: int, slo: Slo) -> list[Case]:
    rules = {r["labels"]["sloth_severity"]: r for r in S.alerts(model, group, index, slo)}
    budget = 1 - slo.objective
    tiers = S.tiers(slo)
    cases = []
    for i, tier in enumerate(tiers):
        r = tier.factor * 1.25 * budget
        if r >= 1:
            continue  # this tier can never fire: its burn would need more than 100% errors
        before, burn, outcome = tier_scenario(slo, i, r)
        t_end = before + burn
        case = Case(f"{S.ALERT} {slo.kind} SLO of {group.name}: tier {i + 1} "
                    f"({fmt_number(tier.factor)}x over {tier.long} and {tier.short}) fires "
                    f"{tier.severity}")
        case.series = slo_inputs(group, slo, [(0, before), (r, burn + 1)])
        labels = S.slo_labels(group, slo)
        exp = []
        for sev in ("page", "ticket"):
            first = [j for j in sorted(outcome) if tiers[j].severity == sev]
            if first:  # `or` keeps the first firing tier's short-window ratio as $value
                exp.append(expected_alert(rules[sev], labels, outcome[first[0]]))
        case.checks.append((t_end, S.ALERT, exp))
        cases.append(case)
    lowest = min(t.factor for t in tiers)
    r = lowest * 0.8 * budget
    t_end = minutes(max((t.short for t in tiers), key=duration_seconds)) + 10
    t_end += -t_end % 5
    case = Case(f"{S.ALERT} {slo.kind} SLO of {group.name}: a burn at 0.8x the lowest factor "
                f"fires nothing")
    case.series = slo_inputs(group, slo, [(r, t_end + 1)])
    case.checks.append((t_end, S.ALERT, []))
    cases.append(case)
    return cases


# -- files --------------------------------------------------------------------------------
def test_file(rule_file: str, cases: list[Case], eval_interval: str = "1m") -> dict:
    return {
        "rule_files": [f"../rules/{rule_file}"],
        "evaluation_interval": eval_interval,
        "tests": [c.to_dict() for c in cases],
    }


def test_files(model: Model) -> list[tuple[str, dict]]:
    out = []
    for group in model.groups:
        cases = []
        for i, kpi in enumerate(group.kpis):
            cases.extend(kpi_cases(model, group, i, kpi))
        if cases:
            out.append((f"{group.kind}-{group.name}.test.yml",
                        test_file(f"{group.kind}-{group.name}.yml", cases)))
        slo = []
        for i, s in enumerate(group.slos):
            slo.extend(slo_cases(model, group, i, s))
        if slo:
            out.append((f"slo-{group.name}.test.yml",
                        test_file(f"slo-{group.name}.yml", slo, "5m")))
    stack = R.stack_rules(model)
    cases = []
    by_job = {g.job: g for g in model.groups}
    for rule in stack[0]["rules"]:
        job = rule["expr"].split('"')[1]
        if job in by_job:
            labels = scrape_labels(by_job[job])
        else:
            labels = {"job": job, "instance": STACK_TARGETS[job], "service": job}
        cases.extend(target_down_cases(model, rule, job, labels))
    for rule in stack[1]["rules"]:
        cases.extend(stack_alert_cases(rule))
    out.append(("stack.test.yml", test_file("stack.yml", cases)))
    return out


def generate(model: Model) -> list[Artifact]:
    return [Artifact(f"{TESTS_DIR}/{name}", to_yaml(data, model.spec_name))
            for name, data in test_files(model)]
