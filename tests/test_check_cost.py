"""`check` costs what it must: routing cases the route tree cannot tell apart run once,
every job's TargetDown cases share one promtool test group, and both still fail when they
should (real amtool and promtool)."""

import pytest
import yaml

from stackgen import check
from stackgen.route_cases import representatives, routed_label_names


def test_route_label_names_are_every_label_a_matcher_reads():
    config = {"route": {"receiver": "a", "routes": [
        {"receiver": "b", "matchers": ['severity="critical"', 'team=~"ml|ai", env!="dev"']},
        {"receiver": "c", "match": {"service": "x"}, "match_re": {"kpi": "gpu_.*"},
         "routes": [{"receiver": "d", "matchers": ["{component='db'}"]}]}]}}
    assert routed_label_names(config) == {"severity", "team", "env", "service", "kpi",
                                          "component"}
    # a matcher it cannot read: no case may stand for another
    assert routed_label_names({"route": {"routes": [{"matchers": ["???"]}]}}) is None
    cases = [{"labels": {"alertname": "A", "severity": "critical"}, "receivers": ["b"]},
             {"labels": {"alertname": "B", "severity": "critical"}, "receivers": ["b"]},
             {"labels": {"alertname": "C", "severity": "warning"}, "receivers": ["a"]},
             {"labels": {"alertname": "D", "severity": "critical"}, "receivers": ["a"]}]
    config = {"route": {"routes": [{"matchers": ['severity="critical"']}]}}
    assert representatives(cases, config) == {0: [0, 1], 2: [2], 3: [3]}
    assert representatives(cases, {"route": {"routes": [{"matchers": ["?"]}]}}) == {
        0: [0], 1: [1], 2: [2], 3: [3]}


def test_routing_cases_run_once_per_path_and_a_mutated_route_still_fails(built, monkeypatch):
    cases = yaml.safe_load((built / "alertmanager/tests/routing.test.yml").read_text())["cases"]
    runs = []
    real = check.run
    monkeypatch.setattr(check, "run", lambda name, cmd, **kw: runs.append(name) or
                        real(name, cmd, **kw))
    steps = check.test_routes(str(built))
    assert steps[0].ok, steps[0].output
    assert f"({len(cases)} cases)" in steps[0].name
    assert 0 < len(runs) < len(cases)  # real amtool, once per path through the tree
    # every case named when the route it shares fails
    am = built / "alertmanager/alertmanager.yml"
    am.write_text(am.read_text().replace("  - receiver: ml-team", "  - receiver: ai-operations",
                                         1))
    steps = check.test_routes(str(built))
    assert not steps[0].ok
    named = [c["name"] for c in cases if "ml-team" in c["receivers"]]
    assert named and all(f"  {n}: expected" in steps[0].output for n in named)


def test_target_down_cases_share_one_group_per_for(built):
    data = yaml.safe_load((built / "prometheus/tests/stack.test.yml").read_text())
    rules = yaml.safe_load((built / "prometheus/rules/stack.yml").read_text())
    jobs = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "TargetDown"]
    groups = [t for t in data["tests"] if t["name"].startswith("TargetDown")]
    assert len(jobs) > 2 and len(groups) == 2 * len({r["for"] for r in jobs})
    fires = [c for g in groups for c in g["alert_rule_test"] if c["exp_alerts"]]
    assert sorted(e["exp_labels"]["job"] for c in fires for e in c["exp_alerts"]) == \
        sorted(r["expr"].split('"')[1] for r in jobs)


@pytest.mark.parametrize("old,new", [
    ('up{job="granite-llm"} == 0\n    for: 2m', 'up{job="granite-llm"} == 0\n    for: 4m'),
    ('up{job="granite-llm"} == 0\n    for: 2m', 'up{job="granite-llm"} == 0\n    for: 1m'),
    ('up{job="granite-llm"} == 0', 'up{job="granite-llm"} == 1'),
    ('up{job="granite-llm"} == 0\n    for: 2m\n    labels:\n      severity: critical',
     'up{job="granite-llm"} == 0\n    for: 2m\n    labels:\n      severity: warning'),
])
def test_one_jobs_mutated_target_down_fails_the_merged_cases(built, old, new):
    rules = built / "prometheus/rules/stack.yml"
    text = rules.read_text()
    assert old in text, text[:2000]
    rules.write_text(text.replace(old, new, 1))
    failed = [s for s in check.test_rules(str(built), only=["stack.test.yml"]) if not s.ok]
    assert any("alert TargetDown:" in s.output for s in failed), [s.output for s in failed]
