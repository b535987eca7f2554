"""Alerts that are right on real machines (issue 9): heartbeat, target_down, routing checked
against the generated alerts. Real promtool and amtool judge the generated proofs."""

from __future__ import annotations

import os

import pytest
import yaml

from conftest import need_tool
from stackgen import build, check
from stackgen.build import compile_spec

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPEC = os.path.join(ROOT, "specs", "stack.yaml")

HEARTBEAT_SPEC = """\
version: 1
stack: {name: hb}
services:
  api:
    targets: [api:8080]
    target_down: {severity: warning, for: 5m}
    kpis:
      throughput: {counter: http_requests_total, warning_below: 1/s}
alerting:
  heartbeat: {receiver: deadmans-switch, repeat_interval: 1m}
  default_receiver: ops
  receivers:
    ops: {webhook: {url_file: secrets/hook}}
    deadmans-switch: {webhook: {url_file: secrets/hook}}
  routes:
    - matchers: ['severity="warning"']
      receiver: ops
"""


def _rules(artifacts, name):
    art = next(a for a in artifacts if a.path == f"prometheus/rules/{name}")
    return [r for g in yaml.safe_load(art.content)["groups"] for r in g["rules"]]


def test_stack_components_down_is_a_warning_and_groups_stay_critical():
    _, artifacts, _ = compile_spec(SPEC, "generated")
    down = {r["expr"]: r for r in _rules(artifacts, "stack.yml") if r["alert"] == "TargetDown"}
    for job in ("grafana", "cadvisor", "prometheus", "alertmanager"):
        assert down[f'up{{job="{job}"}} == 0']["labels"]["severity"] == "warning", job
    for job in ("nodes", "dcgm", "granite-llm", "sales-forecasting"):
        rule = down[f'up{{job="{job}"}} == 0']
        assert (rule["labels"]["severity"], rule["for"]) == ("critical", "2m"), job


@pytest.fixture
def heartbeat_stack(tmp_path):
    d = tmp_path / "spec"
    (d / "secrets").mkdir(parents=True)
    (d / "secrets" / "hook").write_text("https://hooks.example.com/x\n")
    (d / "stack.yaml").write_text(HEARTBEAT_SPEC)
    out = tmp_path / "out"
    res = build.build(str(d / "stack.yaml"), str(out))
    assert not res.failed, res.problems
    return out


def test_heartbeat_and_target_down_pass_promtool_and_amtool(heartbeat_stack):
    need_tool(check.find_promtool, "promtool", check.INSTALL["promtool"])
    need_tool(check.find_amtool, "amtool", check.INSTALL["amtool"])
    out = heartbeat_stack
    rules = yaml.safe_load((out / "prometheus/rules/stack.yml").read_text())
    hb = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "Heartbeat"]
    assert len(hb) == 1 and hb[0]["expr"] == "vector(1)"
    api = next(r for g in rules["groups"] for r in g["rules"]
               if r.get("expr") == 'up{job="api"} == 0')
    assert (api["labels"]["severity"], api["for"]) == ("warning", "5m")
    am = yaml.safe_load((out / "alertmanager/alertmanager.yml").read_text())
    first = am["route"]["routes"][0]
    assert first["receiver"] == "deadmans-switch"
    assert first["matchers"] == ['alertname="Heartbeat"']
    assert first["repeat_interval"] == "1m" and "continue" not in first
    routing = yaml.safe_load((out / "alertmanager/tests/routing.test.yml").read_text())
    hb_cases = [c for c in routing["cases"] if c["labels"].get("alertname") == "Heartbeat"]
    assert hb_cases and all(c["receivers"] == ["deadmans-switch"] for c in hb_cases)
    steps = check.test_rules(str(out)) + check.test_routes(str(out))
    failed = [s for s in steps if not s.ok]
    assert not failed, "\n".join(f"{s.name}: {s.output}" for s in failed)
