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

import functools
from dataclasses import dataclass, field

from stackgen import kpis as K
from stackgen.artifact import Artifact, to_yaml
from stackgen.generators import prometheus_rules as R
from stackgen.generators import slo_rules as S
from stackgen.generators.prometheus_config import STACK_TARGETS
from stackgen.humanize import expand
from stackgen.kpis import error_rate
from stackgen.kpis.synth import (  # noqa: F401  (label_value: check.py reads it from here)
    REQ_RATE, STEP, counter, gauge, label_value, series_text,
)
from stackgen.model import Group, Kpi, Model, Slo, Threshold
from stackgen.spec.units import duration_seconds, fmt_number

TESTS_DIR = "prometheus/tests"


def minutes(duration: str) -> int:
    return int(-(-duration_seconds(duration) // 60))  # ceiling


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
    values keep the labels of the series their kind's test inputs drive, e.g. `gpu`)."""
    if kpi.record_labels:
        return dict(kpi.record_labels)
    return {**scrape_labels(group), **K.of(kpi).series_labels}


def kpi_inputs(group: Group, kpi: Kpi, levels: list[tuple[float, int]]) -> list[tuple[str, str]]:
    """Input series that make `kpi` take each (value, steps) level in turn (its kind's).

    A KPI with a `filter` reads series whose labels pass it; beside them run series the
    filter leaves out, at a value past every threshold (`noise`): a rule that ignored the
    filter would read them, and its cases would fail."""
    kind, base = K.of(kpi), scrape_labels(group)
    if not kpi.filter:
        return kind.test_inputs(kpi, base, levels)
    passing, refused = error_rate.label_values(kpi.filter)
    steps = sum(n for _, n in levels)
    return (kind.test_inputs(kpi, {**base, **passing}, levels)
            + kind.test_inputs(kpi, {**base, **refused}, [(noise(kpi), steps)]))


def noise(kpi: Kpi) -> float:
    """A value past every threshold of the KPI: all requests failed, or ten times the top."""
    top = max((t.value for t in kpi.thresholds), default=1.0)
    return 1.0 if _bounded(kpi) else (top * 10 if top > 0 else 10.0)


def actual_value(kpi: Kpi, v: float, levels: list) -> float:
    """The value the KPI really takes at a synthesised level (a quantile interpolates)."""
    return K.of(kpi).actual_value(kpi, v, levels)


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
    if t.inclusive:
        return v <= t.value if t.below else v >= t.value
    return v < t.value if t.below else v > t.value


# -- cases --------------------------------------------------------------------------------
def kpi_cases(model: Model, group: Group, index: int, kpi: Kpi) -> list[Case]:
    window = minutes(model.stack.rate_window)
    for_m = minutes(kpi.for_)
    tb = window + 3  # the baseline fills a whole rate window before anything changes
    # A gauge KPI crosses the minute its input does, so the alert must fire exactly `for`
    # later (a longer `for` fails the case); a rate()-based one crosses while the rate window
    # fills, so it is checked once the window is full.
    fire_at = tb + for_m if K.of(kpi).instant_for(kpi) else tb + window + for_m + 1
    total = fire_at + 1
    labels = kpi_labels(group, kpi)
    cases = []
    src = kpi  # inputs are synthesised from the KPI as the spec says
    kpi = K.of(kpi).test_kpi(kpi)  # levels chosen on its view (the disk: shares as bytes)
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
        case.series = kpi_inputs(group, src, levels)
        if for_m >= 1:
            case.checks.append((tb + for_m - 1, name, []))
        case.checks.append((fire_at, name, expect(fire, levels)))
        cases.append(case)
        quiet = inside(kpi, t)
        case = Case(f"{name} {t.severity} ({group.name}): silent just inside {t.text}")
        levels = [(base, tb), (quiet, total - tb)]
        case.series = kpi_inputs(group, src, levels)
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


def target_down_groups(model: Model, rules: list) -> list[Case]:
    """The TargetDown cases of every job, merged into one pair of cases per `for`: each job
    has its own `up` series and its own rule (`up{job="..."} == 0`), so in one promtool test
    group they cannot touch each other, and each check lists every job's expected alert, so
    a job whose threshold, `for` or labels change still fails. (promtool spends ~50 ms on
    each test group and evaluates every rule of the file in each: one pair per job made
    `check` quadratic in the number of jobs.)"""
    by_for: dict = {}
    for rule, job, labels in rules:
        by_for.setdefault(rule["for"], []).append((rule, job, labels))
    cases = []
    for _, same in by_for.items():
        parts = [target_down_cases(model, rule, job, labels) for rule, job, labels in same]
        if len(parts) == 1:
            cases.extend(parts[0])
            continue
        jobs = [job for _, job, _ in same]
        who = f"{len(jobs)} jobs: {', '.join(jobs[:3])}" + (", ..." if len(jobs) > 3 else "")
        for k, merged in enumerate(parts[0]):
            merged.name = merged.name.replace(f"({jobs[0]})", f"({who})", 1)
            for other in parts[1:]:
                merged.series.extend(other[k].series)
                merged.checks = [(t, a, exp + o_exp) for (t, a, exp), (_, _, o_exp)
                                 in zip(merged.checks, other[k].checks)]
            cases.append(merged)
    return cases


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
# The SLO alerts have no `for` and every case asserts once, at its end, on windows computed
# from the raw 1m input (rate() does not depend on when rules ran before): evaluating every
# 6 hours instead of every 5 minutes keeps each assertion exact and spares promtool most
# evaluations of the ~30 SLO rules, which were most of the cost of `check` (~3.6 s a file,
# then ~0.9 s; ~0.45 s since each scenario ends as early as it can, see `tier_scenario`).
# Each scenario ends on an evaluation; a 12-hour grid would leave a doubled tier-3 factor
# unnoticed (tests/test_proofs.py).
SLO_EVAL_M = 360

def _ratio_over(window_m: int, t_end: int, burn_start: int, r: float) -> float:
    """Error ratio over the window ending at t_end, burning at r from burn_start (from 0)."""
    start = max(0, t_end - window_m)
    span = t_end - start
    burned = max(0, t_end - max(start, burn_start))
    return r * burned / span if span else 0.0


def tier_outcome(slo: Slo, t_end: int, burn_start: int, r: float) -> dict:
    """{tier index: short-window ratio} of the tiers that fire at t_end; ValueError when a
    window's ratio is within 10% of its limit (the scenario would prove nothing)."""
    return _outcome(S.tiers(slo), slo.objective, t_end, burn_start, r)


def _outcome(tiers: tuple, objective: float, t_end: int, burn_start: int, r: float) -> dict:
    budget = 1 - objective
    fired = {}
    for i, tier in enumerate(tiers):
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
    which tier i fires.

    Every scenario ends on an evaluation of the grid, by a longer clean start or a longer
    burn. Its cost is its end (promtool evaluates every rule at each step up to it); a
    scenario that would stay silent if tier i's long window were twice as long (it pins the
    window) is worth one more step, and wins a tie."""
    found = _scenario(S.tiers(slo), slo.objective, i, r)
    if found is None:
        raise ValueError(f"no scenario makes tier {i + 1} of the {slo.kind} SLO fire")
    before, burn, outcome = found
    return before, burn, dict(outcome)


@functools.lru_cache(maxsize=4096)  # the same for every SLO of the same objective and window
def _scenario(tiers: tuple, objective: float, i: int, r: float):
    me = tiers[i]
    limit = me.factor * (1 - objective)
    options = [(0, minutes(me.short) + 10)]
    options += [(minutes(b), minutes(me.long) + 10) for b in ("3h", "8h", "1d", "3d")]
    found = []
    for before, burn in options:
        pad = -(before + burn) % SLO_EVAL_M
        for b, n in {(before + pad, burn), (before, burn + pad)}:
            try:
                # the counter's first burn increment lands on the minute before the burn level
                outcome = _outcome(tiers, objective, b + n, max(0, b - 1), r)
            except ValueError:
                continue
            if i not in outcome:
                continue
            alone = all(tiers[j].severity != me.severity for j in outcome if j != i)
            doubled = _ratio_over(2 * minutes(me.long), b + n, max(0, b - 1), r)
            pinned = doubled < 0.9 * limit
            found.append((not alone, b + n + (0 if pinned else SLO_EVAL_M), not pinned, b, n,
                          tuple(outcome.items())))
    if not found:
        return None
    return min(found, key=lambda f: f[:5])[3:]


def slo_inputs(group: Group, slo: Slo, levels: list[tuple[float, int]]) -> list[tuple[str, str]]:
    """The SLI's series at each (error ratio, steps) level; with its KPI's `filter`, beside
    series the filter leaves out in which half the requests fail (as `kpi_inputs`: a rule
    that drops the filter from its good or its total requests reads a wrong ratio)."""
    base = scrape_labels(group)
    kpi = next(k for k in group.kpis if k.kind == S.KPI_OF[slo.kind])
    if not kpi.filter:
        return _slo_series(group, slo, kpi, base, levels)
    passing, refused = error_rate.label_values(kpi.filter)
    steps = sum(n for _, n in levels)
    return (_slo_series(group, slo, kpi, {**base, **passing}, levels)
            + _slo_series(group, slo, kpi, {**base, **refused}, [(0.5, steps)]))


def _slo_series(group: Group, slo: Slo, kpi: Kpi, base: dict, levels: list) -> list:
    metric = slo.inputs[0].metric
    if slo.kind == "availability":
        return error_rate.split_inputs(metric, kpi.errors, base, levels)
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
        case = Case(f"{slo.alert} {slo.kind} SLO of {group.name}: tier {i + 1} "
                    f"({fmt_number(tier.factor)}x over {tier.long} and {tier.short}) fires "
                    f"{tier.severity}")
        case.series = slo_inputs(group, slo, [(0, before), (r, burn + 1)])
        labels = S.slo_labels(group, slo)
        exp = []
        for sev in ("page", "ticket"):
            first = [j for j in sorted(outcome) if tiers[j].severity == sev]
            if first:  # `or` keeps the first firing tier's short-window ratio as $value
                exp.append(expected_alert(rules[sev], labels, outcome[first[0]]))
        case.checks.append((t_end, slo.alert, exp))
        cases.append(case)
    lowest = min(t.factor for t in tiers)
    r = lowest * 0.8 * budget
    t_end = minutes(max((t.short for t in tiers), key=duration_seconds)) + 10
    t_end += -t_end % SLO_EVAL_M
    case = Case(f"{slo.alert} {slo.kind} SLO of {group.name}: a burn at 0.8x the lowest factor "
                f"fires nothing")
    case.series = slo_inputs(group, slo, [(r, t_end + 1)])
    case.checks.append((t_end, slo.alert, []))
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
    return list(iter_test_files(model))


def iter_test_files(model: Model):
    """(file name, data) of each test file in turn: the caller serialises one before the
    next is built, so memory does not grow with the number of groups."""
    for group in model.groups:
        cases = []
        for i, kpi in enumerate(group.kpis):
            cases.extend(kpi_cases(model, group, i, kpi))
            cases.extend(K.of(kpi).extra_test_cases(model, group, i, kpi))
        if cases:
            yield (f"{group.kind}-{group.name}.test.yml",
                   test_file(f"{group.kind}-{group.name}.yml", cases))
        slo = []
        for i, s in enumerate(group.slos):
            slo.extend(slo_cases(model, group, i, s))
        if slo:
            yield (f"slo-{group.name}.test.yml",
                   test_file(f"slo-{group.name}.yml", slo, f"{SLO_EVAL_M}m"))
    stack = R.stack_rules(model)
    by_job = {g.job: g for g in model.groups}
    down = []
    for rule in stack[0]["rules"]:
        job = rule["expr"].split('"')[1]
        if job in by_job:
            labels = scrape_labels(by_job[job])
        else:
            labels = {"job": job, "instance": STACK_TARGETS[job], "service": job}
        down.append((rule, job, labels))
    cases = target_down_groups(model, down)
    for rule in stack[1]["rules"]:
        cases.extend(stack_alert_cases(rule))
    for group in stack[2:]:  # the heartbeat: fires from the first evaluation, with no input
        for rule in group["rules"]:
            case = Case(f"{rule['alert']}: always firing")
            case.checks.append((0, rule["alert"], [expected_alert(rule, {}, 1)]))
            case.checks.append((60, rule["alert"], [expected_alert(rule, {}, 1)]))
            cases.append(case)
    yield ("stack.test.yml", test_file("stack.yml", cases))


def generate(model: Model) -> list[Artifact]:
    return [Artifact(f"{TESTS_DIR}/{name}", to_yaml(data, model.spec_name))
            for name, data in iter_test_files(model)]
