"""Alerts that are right on real machines (issue 9): heartbeat, target_down, routing checked
against the generated alerts. Real promtool and amtool judge the generated proofs."""

from __future__ import annotations

import os

import pytest
import yaml

from conftest import need_tool, read_until
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


def _render(template_text: str, data: dict, what: str, tmp_path) -> str:
    import json
    import subprocess

    amtool = need_tool(check.find_amtool, "amtool", check.INSTALL["amtool"])
    (tmp_path / "stackgen.tmpl").write_text(template_text)
    (tmp_path / "data.json").write_text(json.dumps(data))
    res = subprocess.run([amtool, "template", "render",
                          f"--template.glob={tmp_path / 'stackgen.tmpl'}",
                          f"--template.data={tmp_path / 'data.json'}",
                          f'--template.text={{{{ template "{what}" . }}}}'],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def _alert(name, instance, service="storefront"):
    return {"status": "firing", "labels": {"alertname": name, "instance": instance,
                                           "service": service, "severity": "warning"},
            "annotations": {"summary": f"{name} on {instance}", "description": "d"},
            "startsAt": "2026-11-29T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": instance}


def test_notification_titles_name_the_alerts_when_group_by_has_no_alertname(tmp_path):
    """group_by: [service] groups different alerts: the title named none of them
    (`[FIRING:3] | storefront`); amtool renders the generated template."""
    _, artifacts, _ = compile_spec(SPEC, "generated")
    tmpl = next(a for a in artifacts if a.path == "alertmanager/templates/stackgen.tmpl")
    alerts = [_alert("HostCpuHigh", "a:9100"), _alert("HostCpuHigh", "b:9100"),
              _alert("HostMemoryHigh", "a:9100")]
    data = {"receiver": "ops", "status": "firing", "alerts": alerts,
            "groupLabels": {"service": "storefront"},
            "commonLabels": {"service": "storefront", "severity": "warning"},
            "commonAnnotations": {}, "externalURL": "http://am:9093"}
    title = _render(tmpl.content, data, "stackgen.title", tmp_path)
    assert title == "[FIRING:3] HostCpuHigh, HostMemoryHigh | storefront"
    data["commonLabels"]["alertname"] = "HostCpuHigh"
    data["alerts"] = alerts[:2]
    assert _render(tmpl.content, data, "stackgen.title", tmp_path) == \
        "[FIRING:2] HostCpuHigh | storefront"
    text = _render(tmpl.content, data, "stackgen.text", tmp_path)
    assert "*WARNING* HostCpuHigh: HostCpuHigh on a:9100" in text


DEMO_SPEC = """\
version: 1
stack: {name: demo, scrape_interval: 1s, evaluation_interval: 1s, rate_window: 5s}
services:
  api:
    targets: [api:8080]
    kpis:
      throughput: {counter: http_requests_total, warning_below: 1/s}
alerting:
  heartbeat: {receiver: deadmans-switch, repeat_interval: 1m}
  group_wait: 1s
  default_receiver: oncall
  smtp: {smarthost: smtp.example.com:587, from: am@example.com}
  receivers:
    oncall:
      slack: {channel: "#oncall", api_url_file: secrets/slack_url}
      email: {to: oncall@example.com}
      pagerduty: {routing_key_file: secrets/pd_key}
    deadmans-switch:
      webhook: {url_file: secrets/hook_url}
"""


def test_up_demo_sends_only_to_local_sinks_and_says_where(tmp_path):
    """The demo's alerts must never reach the spec's real receivers: every receiver of the
    runtime config that Alertmanager loads points at 127.0.0.1, and the run says so. (Waiting
    for a delivery would take a minute: Prometheus resends an alert that fired before it
    found Alertmanager only after `rules.alert.resend-delay`.)"""
    import signal
    import subprocess

    from conftest import stackgen_cmd
    from stackgen.runtime import procs

    for component in ("prometheus", "alertmanager"):
        try:
            procs.find_binary(component)
        except procs.MissingBinary as exc:
            pytest.fail(f"this test needs {component}: {exc}")
    d = tmp_path / "spec"
    (d / "secrets").mkdir(parents=True)
    (d / "stack.yaml").write_text(DEMO_SPEC)
    for name, value in (("slack_url", "https://hooks.slack.com/services/T/B/real"),
                        ("pd_key", "real-routing-key"),
                        ("hook_url", "https://hc-ping.com/real")):
        (d / "secrets" / name).write_text(value + "\n")
    out, data = tmp_path / "out", tmp_path / "data"
    subprocess.run([*stackgen_cmd(), "build", str(d / "stack.yaml"), "--out", str(out)],
                   check=True, capture_output=True)
    proc = subprocess.Popen([*stackgen_cmd(), "up", str(d / "stack.yaml"), "--out", str(out),
                             "--data-dir", str(data), "--demo", "--prometheus-port", "0",
                             "--alertmanager-port", "0", "--node-exporter-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        text = "".join(read_until(proc, "ready in"))
        assert "notifications -> local sinks only" in text, text
        runtime = (data / "alertmanager" / "alertmanager.yml").read_text()
        cfg = yaml.safe_load(runtime)
        urls = [c.get("api_url") or c.get("url") for r in cfg["receivers"]
                for key in ("slack_configs", "webhook_configs", "pagerduty_configs")
                for c in r.get(key, [])]
        assert len(urls) == 3 and all(u.startswith("http://127.0.0.1:") for u in urls), urls
        emails = [c for r in cfg["receivers"] for c in r.get("email_configs", [])]
        assert emails and all(c["smarthost"].startswith("127.0.0.1:") for c in emails)
        assert "real" not in runtime and "smtp.example.com" not in runtime
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_check_names_the_secret_files_that_still_hold_builds_placeholder(tmp_path):
    from stackgen.secret_check import PLACEHOLDER_PREFIX, placeholder_steps

    d = tmp_path / "spec"
    d.mkdir()
    (d / "stack.yaml").write_text(HEARTBEAT_SPEC)
    out = tmp_path / "out"
    res = build.build(str(d / "stack.yaml"), str(out))
    assert res.secrets_created == [str(d / "secrets" / "hook")]
    assert (d / "secrets" / "hook").read_text().startswith(PLACEHOLDER_PREFIX)
    (step,) = placeholder_steps(str(out))
    assert "1 of 1 still hold the placeholder" in step.name
    assert str(d / "secrets" / "hook") in step.note
    (d / "secrets" / "hook").write_text("https://hc-ping.com/abc\n")
    (step,) = placeholder_steps(str(out))
    assert "hold values, not build's placeholder" in step.name and not step.note
