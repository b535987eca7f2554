"""`environments:`: overlays deep-merged onto the base, positions kept through the merge, one
output folder per environment, and the real tools' verdict on every environment's output."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, need_tool, stackgen_cmd
from stackgen import check as C
from stackgen.build import build, lint
from stackgen.problems import SpecError
from stackgen.spec import environments as E
from stackgen.spec import load, load_all, source

SHOP = os.path.join(ROOT, "tests", "specs", "envs", "webshop.yaml")

BASE = """\
version: 1
stack: {name: envs, scrape_interval: 15s}
services:
  api:
    targets: [api:8080, api2:8080]
    labels: {team: web}
    kpis:
      error_rate: {counter: http_requests_total, errors: 'status=~"5.."', critical: 5%}
alerting:
  default_receiver: ops
  receivers:
    ops: {webhook: {url_file: secrets/hook}}
environments:
  staging:
    stack: {scrape_interval: 30s}
    services:
      api:
        targets: [api.staging:8080]
        labels: ~
  production: ~
"""


def _write(tmp_path, text, name="stack.yaml"):
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / "hook").write_text("x\n")
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_overlay_merges_mappings_replaces_lists_and_null_removes():
    src, problems = source.load_text(BASE, "envs.yaml")
    assert problems == []
    staging = E.merged(src, "staging")
    api = staging.data["services"]["api"]
    assert api["targets"] == ["api.staging:8080"]  # a list replaces
    assert "labels" not in api  # null removes
    assert api["kpis"]["error_rate"]["critical"] == "5%"  # mappings merge: the base's stays
    assert staging.data["stack"] == {"name": "envs", "scrape_interval": "30s",
                                     "environment": "staging"}
    assert "environments" not in staging.data
    # positions: overlay values at the overlay's lines, base values at the base's
    assert staging.pos(("services", "api", "targets", 0)).line == 18
    assert staging.pos(("stack", "scrape_interval")).line == 15
    assert staging.pos(("services", "api", "kpis", "error_rate", "critical")).line == 8
    assert staging.pos(("stack", "name")).line == 2
    production = E.merged(src, "production")  # `production: ~` is an empty overlay
    assert production.data["services"]["api"]["targets"] == ["api:8080", "api2:8080"]
    assert production.data["stack"]["environment"] == "production"


def test_each_environment_its_label_uids_and_folder(tmp_path):
    spec = _write(tmp_path, BASE)
    found = {name: model for name, model, _ in load_all(spec, str(tmp_path / "out"))}
    assert list(found) == ["staging", "production"]
    assert found["staging"].stack.environment == "staging"
    assert found["staging"].stack.scrape_interval == "30s"
    assert found["production"].stack.scrape_interval == "15s"
    res = build(spec, str(tmp_path / "out"), create_secrets=False)
    assert not res.failed, res.problems
    for env in ("staging", "production"):
        prom = yaml.safe_load((tmp_path / "out" / env / "prometheus" / "prometheus.yml")
                              .read_text())
        assert prom["global"]["external_labels"]["env"] == env
        boards = sorted(os.listdir(tmp_path / "out" / env / "grafana" / "dashboards"))
        assert boards == [f"envs-{env}-{name}.json"
                          for name in ("containers", "overview", "services-api", "stack")]
        board = json.loads((tmp_path / "out" / env / "grafana" / "dashboards" /
                            f"envs-{env}-overview.json").read_text())
        assert board["title"] == f"envs ({env}) / Overview"
        compose = yaml.safe_load((tmp_path / "out" / env / "compose.yaml").read_text())
        assert compose["name"] == f"envs-{env}"
    assert not lint(spec, str(tmp_path / "out")).failed
    # --env narrows: one folder, and only its files are compared
    assert [n for n, _, _ in load_all(spec, str(tmp_path / "out"), env="staging")] == \
        ["staging"]
    (tmp_path / "out" / "leftover.yml").write_text("x\n")
    problems = lint(spec, str(tmp_path / "out")).problems
    assert [(p.check, p.file) for p in problems] == \
        [("lint/extra", f"{tmp_path / 'out'}/leftover.yml")]


def test_a_base_mistake_is_reported_once_at_the_base_line(tmp_path):
    spec = _write(tmp_path, BASE.replace("critical: 5%", "critical: 150%"))
    with pytest.raises(SpecError) as info:
        load_all(spec, str(tmp_path / "out"))
    errors = [p for p in info.value.problems if p.is_error]
    assert [(p.pos.line, p.check) for p in errors] == [(8, "values/ratio")]


def test_a_problem_of_some_environments_names_them(tmp_path):
    """A base line can mean different things per environment: a warning that only one
    environment has says which; one that all have says nothing more (and comes once)."""
    text = BASE.replace("    ops: {webhook: {url_file: secrets/hook}}\n",
                        "    ops: {webhook: {url_file: secrets/hook}}\n"
                        "    pager: {webhook: {url_file: secrets/hook}}\n"
                        "    spare: {webhook: {url_file: secrets/hook}}\n"
                        "  routes: [{matchers: ['team=\"web\"'], receiver: pager}]\n") \
        .replace("        labels: ~\n", "        labels: ~\n    alerting: {routes: []}\n")
    spec = _write(tmp_path, text)
    got = set()
    for _, _, warnings in load_all(spec, str(tmp_path / "out")):
        got.update({(p.check, p.message) for p in warnings if p.check == "receivers/unused"})
    assert sorted(got) == [
        ("receivers/unused", "receiver 'pager' is not used by any route (in environment staging)"),
        ("receivers/unused", "receiver 'spare' is not used by any route"),
    ]


def test_environments_need_their_own_env_label(tmp_path):
    spec = _write(tmp_path, BASE.replace("  production: ~", "  production:\n    stack: "
                                         "{environment: staging}"))
    with pytest.raises(SpecError) as info:
        load_all(spec, str(tmp_path / "out"))
    (p,) = info.value.problems
    assert p.check == "environments/label" and p.pos.line == 21
    assert "'staging' is also environment 'staging'" in p.message


def test_unknown_env_is_an_error_with_did_you_mean(tmp_path):
    spec = _write(tmp_path, BASE)
    proc = subprocess.run([*stackgen_cmd(), "build", spec, "--out", str(tmp_path / "out"),
                           "--env", "prod"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "--env prod: no such environment; did you mean 'production'?" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
    with pytest.raises(SpecError) as info:
        load(spec, str(tmp_path / "out"))  # up, demo: one stack, so one environment
    assert "choose one with --env NAME" in info.value.problems[0].message
    model, _ = load(spec, str(tmp_path / "out" / "staging"), env="staging")
    assert model.env == "staging" and model.spec_dir == "../.."  # secrets: from out/staging


def test_stack_folders_for_check(tmp_path):
    for env in ("production", "staging"):
        d = tmp_path / env / "prometheus"
        d.mkdir(parents=True)
        (d / "prometheus.yml").write_text("x\n")
    out = str(tmp_path)
    assert E.stack_folders(out) == ([f"{out}/production", f"{out}/staging"], None)
    assert E.stack_folders(out, "staging") == ([f"{out}/staging"], None)
    folders, why = E.stack_folders(out, "stagin")
    assert folders == [] and "did you mean 'staging'?" in why


def test_webshop_both_environments_pass_promtool_and_amtool(tmp_path):
    """The web shop of issue 12, with every addition of this branch (environments, time
    intervals): both environments build, and the real tools accept both (one batched run
    per tool over both environments' files)."""
    promtool = need_tool(C.find_promtool, "promtool", C.INSTALL["promtool"])
    amtool = need_tool(C.find_amtool, "amtool", C.INSTALL["amtool"])
    spec_dir = tmp_path / "spec"
    shutil.copytree(os.path.dirname(SHOP), spec_dir)
    out = tmp_path / "out"
    res = build(str(spec_dir / "webshop.yaml"), str(out), create_secrets=False)
    assert not res.problems, res.problems
    envs = sorted(os.listdir(out))
    assert envs == ["production", "staging"]

    def files(pattern):
        found = sorted(glob.glob(str(out / "*" / pattern)))
        assert {os.path.relpath(f, out).split(os.sep)[0] for f in found} == set(envs), pattern
        return found

    def ok(cmd):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    ok([promtool, "check", "config", *files("prometheus/prometheus.yml")])
    ok([promtool, "check", "rules", "--lint=all", "--lint-fatal",
        *files("prometheus/rules/*.yml")])
    ok([promtool, "test", "rules", *files("prometheus/tests/*.test.yml")])
    ok([amtool, "check-config", *files("alertmanager/alertmanager.yml")])
    for env in envs:  # every route, per environment: staging's routes are its own
        steps = C.test_routes(str(out / env))
        assert all(s.ok for s in steps), [s.output for s in steps]
    am = {env: yaml.safe_load((out / env / "alertmanager" / "alertmanager.yml").read_text())
          for env in envs}
    assert [t["name"] for t in am["production"]["time_intervals"]] == \
        ["offhours", "release-freeze"]
    assert am["staging"]["route"]["routes"][0]["mute_time_intervals"] == \
        ["offhours", "release-freeze"]
    assert am["production"]["route"]["routes"][1]["mute_time_intervals"] == ["offhours"]


def test_materialize_writes_one_environment_as_a_spec(tmp_path):
    """`smoke --env` rewrites a spec's data, so it gets the environment as a spec of its own."""
    spec = _write(tmp_path, BASE)
    folder = tmp_path / "m"
    folder.mkdir()
    path, problems = E.materialize(spec, "staging", str(folder))
    assert problems == [] and path == str(folder / "stack.yaml")
    data = yaml.safe_load(open(path))
    assert "environments" not in data
    assert data["services"]["api"]["targets"] == ["api.staging:8080"]
    assert data["stack"]["environment"] == "staging"
    _, problems = E.materialize(spec, "prod", str(folder))
    assert "did you mean 'production'?" in problems[0].message
