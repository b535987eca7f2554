"""`stack.outputs`: only the named deployments are generated, and `check` checks only them."""

import os
import shutil

import pytest

from conftest import ROOT, need_tool
from stackgen import build, check

MINIMAL = os.path.join(ROOT, "tests", "specs", "good", "minimal.yaml")


def _spec(tmp_path, outputs):
    d = tmp_path / "spec"
    shutil.copytree(os.path.join(ROOT, "tests", "specs", "good", "secrets"), d / "secrets")
    text = open(MINIMAL, encoding="utf-8").read()
    if outputs is not None:
        text = text.replace("  name: minimal\n", f"  name: minimal\n  outputs: {outputs}\n")
    (d / "stack.yaml").write_text(text)
    return str(d / "stack.yaml")


@pytest.mark.parametrize("outputs,compose,helm", [
    (None, True, True), ("[compose, helm]", True, True), ("[compose]", True, False),
    ("[helm]", False, True)])
def test_only_the_named_deployments_are_generated(tmp_path, outputs, compose, helm):
    res = build.build(_spec(tmp_path, outputs), str(tmp_path / "out"), create_secrets=False)
    assert not res.failed, res.problems
    paths = {a.path for a in res.artifacts}
    assert ("compose.yaml" in paths) == compose
    assert any(p.startswith("helm/") for p in paths) == helm
    # the stack's own configuration is there either way (the chart wraps it)
    assert {"prometheus/prometheus.yml", "alertmanager/alertmanager.yml"} <= paths


def test_check_of_a_compose_only_stack_needs_no_helm(tmp_path, monkeypatch):
    need_tool(check.find_promtool, "promtool", check.INSTALL["promtool"])
    need_tool(check.find_compose, "Docker Compose", check.INSTALL["compose"])
    out = tmp_path / "out"
    assert not build.build(_spec(tmp_path, "[compose]"), str(out), create_secrets=False).failed
    monkeypatch.setattr(check, "find_helm", lambda: None)  # as on a machine without Helm
    steps = check.run_all(str(out))
    assert all(s.ok for s in steps), [(s.name, s.output) for s in steps if not s.ok]
    names = [s.name for s in steps]
    assert "compose config" in names and not any("helm" in n for n in names)


def test_check_of_a_helm_only_stack_runs_no_compose(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert not build.build(_spec(tmp_path, "[helm]"), str(out), create_secrets=False).failed
    monkeypatch.setattr(check, "find_compose", lambda: None)  # as without Compose
    assert check.check_compose(str(out)) == []
