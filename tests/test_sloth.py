"""Sloth's own example SLO, written as a stackgen spec, gives what Sloth gives.

tests/sloth/sloth-30d.yml and sloth-28d.yml are the rules Sloth generates for its example SLO
`slo1` of service `svc01` (copied from Sloth's golden files; the source is named in each).
The same SLO as a stackgen spec must give the same recording-rule names with the same
`sloth_*` labels, the same burn-rate windows and factors, the same values and the same
firing times. promtool is the judge: one run evaluates both rule files (labels other than
`sloth_*`, and annotations, left out) against the same series and the same expectations.
"""

from __future__ import annotations

import os
import re
import subprocess

import yaml

from conftest import need_tool
from stackgen import check
from stackgen.build import compile_spec

HERE = os.path.dirname(os.path.abspath(__file__))
SLOTH = os.path.join(HERE, "sloth")

SPEC = """\
version: 1
stack: {{name: sloth-compat}}
services:
  svc01:
    targets: [svc01:8080]
    kpis:
      error_rate: {{counter: http_request_duration_seconds_count, errors: 'code=~"(5..|429)"'}}
    slos:
      availability: {{objective: 99.9%, window: {period}, name: slo1, alert: myServiceAlert}}
alerting:
  default_receiver: ops
  receivers:
    ops: {{webhook: {{url_file: secrets/hook}}}}
"""
SEL = 'sloth_id="svc01-slo1", sloth_service="svc01", sloth_slo="slo1"'
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
BURN_AT = 120  # minutes of clean traffic, then errors at RATIO
RATIO = 0.014  # 14x the budget of 99.9%: between the 28d (13.44) and 30d (14.4) tier-1 factors
END = 240
PER_MIN = 600.0  # requests per minute


def _stackgen_rules(tmp_path, period: str) -> dict:
    d = tmp_path / period
    d.mkdir()
    (d / "stack.yaml").write_text(SPEC.format(period=period))
    _, artifacts, _ = compile_spec(str(d / "stack.yaml"), str(d / "out"))
    art = next(a for a in artifacts if a.path == "prometheus/rules/slo-svc01.yml")
    return yaml.safe_load(art.content)


def _sloth_only(rules: dict) -> dict:
    """The rules with only their sloth_* labels and no annotations."""
    out = []
    for g in rules["groups"]:
        kept = []
        for r in g["rules"]:
            r = {k: v for k, v in r.items() if k != "annotations"}
            r["labels"] = {k: v for k, v in r.get("labels", {}).items()
                           if k.startswith("sloth_") and k not in ("sloth_mode", "sloth_spec",
                                                                   "sloth_version")}
            kept.append(r)
        out.append({"name": g["name"], "rules": kept})
    return {"groups": out}


def _records(rules: dict) -> set:
    return {(r["record"], tuple(sorted(r["labels"].items())))
            for g in rules["groups"] for r in g["rules"] if "record" in r}


_TIER = re.compile(r"ratio_rate(\w+)\{[^}]*\} > \(([0-9.e-]+) \* ([0-9.e-]+)\)")


def _tiers(rules: dict) -> dict:
    """{sloth_severity: [(window, factor), ...]} from the alerts' expressions."""
    out = {}
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" in r:
                out[r["labels"]["sloth_severity"]] = [
                    (w, round(float(f), 9)) for w, f, _ in _TIER.findall(r["expr"])]
    return out


# -- the scenario: a model of the SLI ratios over the test's series -----------------------
def _errors(m: int) -> float:
    return RATIO * PER_MIN * max(0, m - BURN_AT)


def _ratio(window_m: int, t: int) -> float:
    """The error ratio over [t - window, t] (both counters start at 0, so rate() does not
    extrapolate before the first sample)."""
    s = max(0, t - window_m)
    return (_errors(t) - _errors(s)) / (PER_MIN * (t - s))


def _minutes(w: str) -> int:
    return {"m": 1, "h": 60, "d": 1440}[w[-1]] * int(w[:-1])


def _firing(tiers: dict, t: int, budget: float = 0.001):
    """{severity: fires?} at t, or None when a ratio is within 1% of its limit."""
    out = {}
    for sev, pairs in tiers.items():
        fires = False
        for (short, f), (long, _) in zip(pairs[0::2], pairs[1::2]):
            limit = f * budget
            ratios = [_ratio(_minutes(short), t), _ratio(_minutes(long), t)]
            if any(abs(x - limit) < 0.01 * limit for x in ratios):
                return None
            fires = fires or all(x > limit for x in ratios)
        out[sev] = fires
    return out


def _series() -> list:
    out = []
    for job in ("myservice", "svc01"):  # Sloth's example selects job="myservice"
        errors = " ".join(f"{_errors(m):g}" for m in range(END + 1))
        good = " ".join(f"{PER_MIN * m - _errors(m):g}" for m in range(END + 1))
        out.append({"series": f'http_request_duration_seconds_count{{job="{job}",code="500"}}',
                    "values": errors})
        out.append({"series": f'http_request_duration_seconds_count{{job="{job}",code="200"}}',
                    "values": good})
    return out


def _labels(labels: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _close(expr: str, value: float) -> str:
    return f"abs({expr} - {value!r}) < bool 1e-9"


def _test_file(rule_file: str, period: str, days: int, tiers: dict) -> dict:
    labels = {"sloth_id": "svc01-slo1", "sloth_service": "svc01", "sloth_slo": "slo1"}
    steady = BURN_AT + 60  # 1h into the burn
    values = []
    for w in WINDOWS:
        values.append({"expr": _close(f'slo:sli_error:ratio_rate{w}{{{SEL}}}',
                                      _ratio(_minutes(w), steady)),
                       "eval_time": f"{steady}m",
                       "exp_samples": [{"labels": _labels({**labels, "sloth_window": w}),
                                        "value": 1}]})
    # the period ratio averages the 5m ratio of every evaluation: all clean before the burn
    values.append({"expr": f"slo:sli_error:ratio_rate{period}{{{SEL}}}",
                   "eval_time": f"{BURN_AT - 10}m",
                   "exp_samples": [{"labels": f"slo:sli_error:ratio_rate{period}" + _labels(
                       {**labels, "sloth_window": period}), "value": 0}]})
    # (record, value, when, the sloth_window its left-hand side keeps)
    for record, value, at, window in (
            ("slo:objective:ratio", 0.999, 10, None),
            ("slo:error_budget:ratio", 0.001, 10, None),
            ("slo:time_period:days", days, 10, None),
            ("slo:current_burn_rate:ratio", _ratio(5, steady) / 0.001, steady, "5m"),
            ("slo:period_burn_rate:ratio", 0, BURN_AT - 10, period),
            ("slo:period_error_budget_remaining:ratio", 1, BURN_AT - 10, period)):
        want = {**labels, **({"sloth_window": window} if window else {})}
        values.append({"expr": _close(f"{record}{{{SEL}}}", value), "eval_time": f"{at}m",
                       "exp_samples": [{"labels": _labels(want), "value": 1}]})
    values.append({"expr": f"count(sloth_slo_info{{{SEL}}})", "eval_time": "10m",
                   "exp_samples": [{"labels": "{}", "value": 1}]})
    alerts = []
    for t in range(BURN_AT - 5, END + 1, 5):
        state = _firing(tiers, t)
        if state is None:
            continue
        exp = [{"exp_labels": {"alertname": "myServiceAlert", **labels, "sloth_severity": sev}}
               for sev in ("page", "ticket") if state.get(sev)]
        alerts.append({"eval_time": f"{t}m", "alertname": "myServiceAlert", "exp_alerts": exp})
    return {"rule_files": [rule_file], "evaluation_interval": "1m",
            "tests": [{"name": f"Sloth's slo1 over {period}", "interval": "1m",
                       "input_series": _series(), "promql_expr_test": values,
                       "alert_rule_test": alerts}]}


def test_sloth_examples_30d_and_28d_give_the_same_rules_values_and_firing_times(tmp_path):
    promtool = need_tool(check.find_promtool, "promtool", check.INSTALL["promtool"])
    files, seen = [], {}
    for period, name, days in (("30d", "30d", 30), ("28d", "4w", 28)):
        with open(os.path.join(SLOTH, f"sloth-{period}.yml"), encoding="utf-8") as fh:
            sloth = _sloth_only(yaml.safe_load(fh))
        ours = _sloth_only(_stackgen_rules(tmp_path, period))
        # same recording rules with the same sloth_* labels, same windows and factors
        assert _records(ours) == _records(sloth), period
        assert _tiers(ours) == _tiers(sloth), period
        assert {r["alert"] for g in ours["groups"] for r in g["rules"] if "alert" in r} == \
            {"myServiceAlert"}
        tiers = _tiers(sloth)
        test = None
        for who, rules in (("sloth", sloth), ("stackgen", ours)):
            rule_file = tmp_path / f"{who}-{period}.yml"
            rule_file.write_text(yaml.safe_dump(rules, sort_keys=False))
            test = _test_file(rule_file.name, name, days, tiers)
            # Sloth's three groups (SLI recordings, meta recordings, alerts) in this order: a
            # real Prometheus runs them independently, so its alerts may read recordings one
            # evaluation old; stackgen's one group per SLO never does (docs/spec.md).
            test["group_eval_order"] = [g["name"] for g in rules["groups"]]
            path = tmp_path / f"{who}-{period}.test.yml"
            path.write_text(yaml.safe_dump(test, sort_keys=False))
            files.append(str(path))
        seen[period] = [a for a in test["tests"][0]["alert_rule_test"]]
    # the scenario tells 28d from 30d: the same burn pages earlier over 28d (smaller factors)
    def first_page(period):
        return min(int(a["eval_time"][:-1]) for a in seen[period]
                   if any(e["exp_labels"]["sloth_severity"] == "page" for e in a["exp_alerts"]))
    assert first_page("28d") < first_page("30d")
    res = subprocess.run([promtool, "test", "rules", *files], capture_output=True, text=True,
                         cwd=str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
