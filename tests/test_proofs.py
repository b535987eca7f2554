"""The generated proofs: every alert and route has a case, and the cases can fail."""

import os
import re
import shutil

import pytest
import yaml

from conftest import SPEC, SPEC_FILES, SPEC_NAMES
from stackgen import check
from stackgen.build import compile_spec


def _alert_identities(rule_files: dict) -> list[tuple]:
    out = []
    for data in rule_files.values():
        for group in data["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out.append((rule["alert"], tuple(sorted(rule["labels"].items()))))
    return out


def _coverage(artifacts) -> tuple[dict, dict, set]:
    by_path = {a.path: a for a in artifacts}
    rules = {p: yaml.safe_load(a.content) for p, a in by_path.items()
             if p.startswith("prometheus/rules/")}
    fires, silent = {}, {}
    for p, a in by_path.items():
        if not p.startswith("prometheus/tests/"):
            continue
        data = yaml.safe_load(a.content)
        for rf in data["rule_files"]:
            assert os.path.normpath(os.path.join("prometheus/tests", rf)) in rules, rf
        for case in data["tests"]:
            for check_ in case["alert_rule_test"]:
                name = check_["alertname"]
                expected = {tuple(sorted((k, v) for k, v in e["exp_labels"].items()))
                            for e in check_["exp_alerts"]}
                for ident in _alert_identities(rules):
                    if ident[0] != name:
                        continue
                    hit = any(set(ident[1]) <= set(e) for e in expected)
                    (fires if hit else silent).setdefault(ident, []).append(case["name"])
    return fires, silent, set(_alert_identities(rules))


@pytest.mark.parametrize("spec", SPEC_FILES, ids=SPEC_NAMES)
def test_every_alert_has_a_firing_and_a_silent_case(spec):
    _, artifacts, _ = compile_spec(spec, "generated")
    fires, silent, alerts = _coverage(artifacts)
    assert alerts
    assert not [a for a in alerts if a not in fires], "alerts without a firing case"
    assert not [a for a in alerts if a not in silent], "alerts without a silent case"


@pytest.mark.parametrize("spec", SPEC_FILES, ids=SPEC_NAMES)
def test_every_route_has_a_routing_case(spec):
    model, artifacts, _ = compile_spec(spec, "generated")
    routing = yaml.safe_load(next(a for a in artifacts
                                  if a.path == "alertmanager/tests/routing.test.yml").content)
    names = [c["name"] for c in routing["cases"]]

    def walk(routes):
        for r in routes:
            yield r
            yield from walk(r.routes)

    for r in walk(model.alerting.routes):
        assert any(n.startswith(f"{r.path} (") for n in names), r.path
    assert any("default receiver" in n for n in names)


def test_slo_tiers_have_the_workbook_factors_and_windows():
    from stackgen.generators import slo_rules

    model, artifacts, _ = compile_spec(SPEC, "generated")
    slo = next(s for g in model.groups for s in g.slos)
    assert [(t.severity, t.factor, t.long, t.short) for t in slo_rules.tiers(slo)] == [
        ("page", 14.4, "1h", "5m"), ("page", 6, "6h", "30m"),
        ("ticket", 3, "1d", "2h"), ("ticket", 1, "3d", "6h")]
    tests = next(a for a in artifacts if a.path == "prometheus/tests/slo-granite-llm.test.yml")
    names = [c["name"] for c in yaml.safe_load(tests.content)["tests"]]
    for kind in ("availability", "latency"):
        for i, (f, long, short) in enumerate([(14.4, "1h", "5m"), (6, "6h", "30m"),
                                              (3, "1d", "2h"), (1, "3d", "6h")]):
            f = f"{f:g}"
            assert any(f"{kind} SLO" in n and f"tier {i + 1} ({f}x over {long} and {short})" in n
                       for n in names), (kind, i)
        assert any(f"{kind} SLO" in n and "fires nothing" in n for n in names)


def test_slo_factors_scale_with_the_slo_window_as_sloth_does():
    """Sloth keeps the windows for any SLO period and scales the factors (budget share x
    period / long window): 28d gives the factors of Sloth's out-base-28d golden file."""
    from dataclasses import replace

    from stackgen.generators import slo_rules

    model, _, _ = compile_spec(SPEC, "generated")
    slo = next(s for g in model.groups for s in g.slos)
    windows = [("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")]
    for period, factors in (("28d", [13.44, 5.6, 2.8, 0.9333333333]),
                            ("7d", [3.36, 1.4, 0.7, 0.2333333333])):
        got = slo_rules.tiers(replace(slo, window=period))
        assert [(t.factor, t.long, t.short) for t in got] == \
            [(f, long, short) for f, (long, short) in zip(factors, windows)], period


# -- the proofs can fail ------------------------------------------------------------------
def _mutate(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _rule_steps(out, rules_file):
    """The failing steps of the tests of one (mutated) rule file: promtool runs on its test
    file only."""
    only = [rules_file[:-len(".yml")] + ".test.yml"]
    return [s for s in check.test_rules(str(out), only=only) if not s.ok]


def test_proofs_pass_unmutated(built):
    assert all(s.ok for s in check.test_rules(str(built)) + check.test_routes(str(built)))


@pytest.mark.parametrize("old,new,alert", [
    # threshold halved: the "just inside" value now crosses it
    ('instance:node_memory_used:ratio{host_group="nodes"} > 0.85',
     'instance:node_memory_used:ratio{host_group="nodes"} > 0.425', "HostMemoryHigh"),
    # comparison flipped
    ('service:model_data_drift_score:max{service="sales-forecasting"} > 0.15',
     'service:model_data_drift_score:max{service="sales-forecasting"} < 0.15', "DataDriftHigh"),
    # threshold of a `_below` alert raised past the healthy value
    ('service:model_prediction_accuracy:min{service="sales-forecasting"} < 0.8',
     'service:model_prediction_accuracy:min{service="sales-forecasting"} < 0.95',
     "ModelAccuracyLow"),
])
def test_a_mutated_rule_fails_its_test_naming_the_alert(built, old, new, alert):
    rules = next(p for p in (built / "prometheus/rules").iterdir() if old in p.read_text())
    _mutate(rules, old, new)
    failed = _rule_steps(built, rules.name)
    assert failed
    assert any(f"alert {alert}:" in s.output for s in failed), [s.output for s in failed]


def test_a_dropped_for_fails_the_short_breach_case(built):
    rules = built / "prometheus/rules/hosts-nodes.yml"
    data = yaml.safe_load(rules.read_text())
    for rule in data["groups"][0]["rules"]:
        if rule.get("alert") == "HostMemoryHigh":
            rule["for"] = "0s"
    rules.write_text(yaml.safe_dump(data, sort_keys=False))
    failed = _rule_steps(built, rules.name)
    assert any("alert HostMemoryHigh:" in s.output and "silent before" in s.output
               for s in failed)


@pytest.mark.parametrize("alert,rules_file,new_for", [
    ("HostMemoryHigh", "hosts-nodes.yml", "6m"),      # 5m -> one minute longer
    ("HostMemoryHigh", "hosts-nodes.yml", "4m"),      # 5m -> one minute shorter
    ("HostDiskSpaceLow", "hosts-nodes.yml", "12m"),   # 10m -> longer
    ("DataDriftHigh", "services-sales-forecasting.yml", "16m"),
])
def test_a_gauge_alert_with_another_for_fails_its_test(built, alert, rules_file, new_for):
    """Gauge KPIs cross their threshold the minute the input does: the cases pin `for`."""
    rules = built / "prometheus/rules" / rules_file
    data = yaml.safe_load(rules.read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["for"] = new_for
    rules.write_text(yaml.safe_dump(data, sort_keys=False))
    failed = _rule_steps(built, rules_file)
    assert any(f"alert {alert}:" in s.output for s in failed), [s.output for s in failed]


def test_each_slo_tier_factor_is_pinned_by_its_test(built, tmp_path):
    """Doubling the factor of any burn-rate tier fails the SLO tests (hourly evaluations keep
    them exact). The four mutants are checked in one promtool run."""
    rules_file = next(p.name for p in (built / "prometheus/rules").iterdir()
                      if p.name.startswith("slo-"))
    test_file = rules_file[:-len(".yml")] + ".test.yml"
    text = (built / "prometheus/rules" / rules_file).read_text()
    budget = re.search(r"\(14\.4 \* ([0-9.]+)\)", text).group(1)
    mutants = []
    for factor, double in (("14.4", "28.8"), ("6", "12"), ("3", "6"), ("1", "2")):
        old = f"({factor} * {budget})"
        assert old in text, old
        d = tmp_path / f"tier-{factor}"
        (d / "rules").mkdir(parents=True)
        (d / "tests").mkdir()
        (d / "rules" / rules_file).write_text(text.replace(old, f"({double} * {budget})"))
        shutil.copy(built / "prometheus/tests" / test_file, d / "tests" / test_file)
        mutants.append(str(d / "tests" / test_file))
    from stackgen import promtool_tests

    results = promtool_tests.run(check.find_promtool(), mutants, n_jobs=2)
    survived = [m for m, (ok, _) in results.items() if ok]
    assert not survived, survived
    for mutant, (_, out) in results.items():
        assert "alert ErrorBudgetBurn:" in "\n".join(check.failed_promtool_cases(out)), \
            (mutant, out[:2000])


def test_the_slo_window_of_tier_2_is_pinned_by_its_test(built, tmp_path):
    """The scenarios end as early as they can, but tier 2's (6h) long window stays pinned: a
    rule file whose 6h windows read 12h fails the SLO tests. Its scenario starts clean, so
    a twice as long window sees half the burn (tier 3's and 4's long windows cannot be
    pinned as cheaply: their scenarios would last days)."""
    rules_file = next(p.name for p in (built / "prometheus/rules").iterdir()
                      if p.name.startswith("slo-"))
    test_file = rules_file[:-len(".yml")] + ".test.yml"
    text = (built / "prometheus/rules" / rules_file).read_text()
    assert "[6h]" in text
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / rules_file).write_text(text.replace("[6h]", "[12h]"))
    shutil.copy(built / "prometheus/tests" / test_file, tmp_path / "tests" / test_file)
    from stackgen import promtool_tests

    mutant = str(tmp_path / "tests" / test_file)
    ok, out = promtool_tests.run(check.find_promtool(), [mutant])[mutant]
    assert not ok, out[:2000]
    assert "tier 2" in "\n".join(check.failed_promtool_cases(out)), out[:2000]


def test_a_mutated_route_fails_its_routing_case(built):
    am = built / "alertmanager/alertmanager.yml"
    _mutate(am, "  - receiver: ml-team", "  - receiver: ai-operations")
    steps = check.test_routes(str(built))
    assert not steps[0].ok
    assert "routes[1] (component=\"ml_model\") -> ml-team" in steps[0].output


def test_swapped_route_order_fails(built):
    am = built / "alertmanager/alertmanager.yml"
    data = yaml.safe_load(am.read_text())
    data["route"]["routes"].reverse()
    am.write_text(yaml.safe_dump(data, sort_keys=False))
    steps = check.test_routes(str(built))
    assert not steps[0].ok


def test_check_fails_when_a_proof_file_is_missing(built):
    (built / "prometheus/tests/hosts-nodes.test.yml").unlink()
    (built / "alertmanager/tests/routing.test.yml").unlink()
    failed = {s.name: s.output for s in check.test_rules(str(built), only=["hosts-nodes.test.yml"]) + check.test_routes(str(built))
              if not s.ok}
    assert "promtool test rules hosts-nodes.test.yml" in failed
    assert "tests for prometheus/rules/hosts-nodes.yml" in \
        failed["promtool test rules hosts-nodes.test.yml"]
    assert any(name.startswith("amtool config routes test") for name in failed)
    assert "stackgen build" in "".join(failed.values())
