"""The real tools' verdict: promtool, amtool and a Docker Compose v2 binary. Never skipped."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REFERENCE, ROOT, need_tool, run_in_process, same_bytes, stackgen_cmd
from stackgen import build, check


@pytest.fixture(scope="module")
def tools():
    need_tool(check.find_promtool, "promtool", check.INSTALL["promtool"])
    need_tool(check.find_amtool, "amtool", check.INSTALL["amtool"])
    need_tool(check.find_compose, "Docker Compose", check.INSTALL["compose"])


def _reference_copy(tmp_path):
    """reference.yaml copied anywhere, with its secret files."""
    d = tmp_path / "anywhere" / "deep"
    (d / "secrets").mkdir(parents=True)
    shutil.copy(REFERENCE, d / "platform.yaml")
    for name in ("grafana_admin_password", "smtp_password", "slack_webhook_url"):
        (d / "secrets" / name).write_text("placeholder\n")
    return d / "platform.yaml"


def _check(out):
    return subprocess.run([*stackgen_cmd(), "check", "--out", str(out)], capture_output=True,
                          text=True)


def _tree(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_reference_spec_builds_and_checks(tools, tmp_path):
    """reference.yaml built from anywhere passes `check`; so does the committed generated/
    (`check` without --out, from the repo): when the two trees are byte-identical (the
    reference is a copy of specs/stack.yaml) one check proves both."""
    spec = _reference_copy(tmp_path)
    out = tmp_path / "elsewhere" / "out"
    proc = subprocess.run([*stackgen_cmd(), "build", str(spec), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    generated = Path(ROOT) / "generated"
    same = _tree(out) == _tree(generated)
    proc = subprocess.run([*stackgen_cmd(), "check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout
    if not same:
        proc = _check(out)
        assert proc.returncode == 0, proc.stdout
    assert "0 failed" in proc.stdout
    for name in ("promtool check config", "promtool check rules", "amtool check-config",
                 "compose config"):
        assert f"PASS  {name}" in proc.stdout


GOOD = os.path.join(ROOT, "tests", "specs", "good")
GOOD_SPECS = sorted(f for f in os.listdir(GOOD) if f.endswith(".yaml"))


def test_there_are_good_specs():
    assert len(GOOD_SPECS) >= 5


@pytest.mark.parametrize("name", GOOD_SPECS)  # one test each: pytest-xdist spreads them
def test_good_spec_builds_and_checks(tools, tmp_path, name):
    """Each good spec builds through the CLI and passes every check."""
    out = tmp_path / name
    res = run_in_process("build", os.path.join(GOOD, name), "--out", str(out), "--no-secrets")
    assert res.exit_code == 0, (name, res.stderr)
    if same_bytes(os.path.join(GOOD, name), REFERENCE):
        return  # test_reference_spec_builds_and_checks checks its build
    steps = check.run_all(str(out))
    assert all(s.ok for s in steps), (name, [(s.name, s.output) for s in steps if not s.ok])


def test_check_fails_on_broken_rule_alertmanager_config_and_compose(tools, tmp_path):
    """Each broken file fails its own step, named (one check run over the three breaks)."""
    spec = _reference_copy(tmp_path)
    out = tmp_path / "out"
    assert not build.build(str(spec), str(out)).failed
    rules = out / "prometheus/rules/hosts-nodes.yml"
    rules.write_text(rules.read_text().replace("> 0.8", "> > 0.8", 1))
    am = out / "alertmanager/alertmanager.yml"
    am.write_text(am.read_text().replace("receiver: ml-team", "receiver: nobody"))
    compose = out / "compose.yaml"
    text = compose.read_text()
    assert "depends_on:\n    - prometheus\n" in text
    compose.write_text(text.replace("depends_on:\n    - prometheus\n",
                                    "depends_on:\n    - prometheus-typo\n"))
    proc = _check(out)
    assert proc.returncode == 1
    assert "FAIL  promtool check rules" in proc.stdout
    assert "hosts-nodes.yml" in proc.stdout
    assert "FAIL  amtool check-config" in proc.stdout
    assert "FAIL  compose config" in proc.stdout


def test_check_names_a_missing_tool(tmp_path, monkeypatch):
    monkeypatch.setattr(check, "find_amtool", lambda: None)
    steps = check.check_alertmanager(str(tmp_path))
    assert not steps[0].ok
    assert "apt-get install --no-install-recommends prometheus-alertmanager" in steps[0].output


def test_root_compose_includes_generated_stack(tools):
    compose = check.find_compose()
    proc = subprocess.run([compose, "-f", os.path.join(ROOT, "docker-compose.yml"), "config"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    for svc in ("prometheus:", "alertmanager:", "grafana:", "node-exporter:", "cadvisor:"):
        assert svc in proc.stdout


@pytest.mark.parametrize("what", ["missing", "empty"])
def test_check_of_a_folder_without_a_stack_says_so(tmp_path, what):
    out = tmp_path / "out"
    if what == "empty":
        out.mkdir()
    proc = subprocess.run([*stackgen_cmd(), "check", "--out", str(out)], capture_output=True,
                          text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{out} holds no generated stack" in proc.stderr and "stackgen build" in proc.stderr
