"""Golden files, determinism, atomic writes, lint: the build as a user sees it."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, SPEC, stackgen_cmd
from stackgen import build, writer
from stackgen.build import compile_spec

GOLDEN = os.path.join(ROOT, "tests", "golden", "stack")


@pytest.mark.parametrize("value", ["9890831690e9", "1e5", "0o17", "0x1F", "12", "1.5", ".5",
                                   "-3", ".inf", "true", "False", "null", "~"])
def test_yaml_quotes_strings_that_go_parsers_read_as_numbers(value):
    from stackgen.artifact import to_yaml

    text = to_yaml({"v": value, "list": [value]})
    assert "'" in text.split("\n")[0] or '"' in text.split("\n")[0], text
    assert yaml.safe_load(text) == {"v": value, "list": [value]}
    assert to_yaml({"v": "9890831690ea"}) == "v: 9890831690ea\n"  # a plain string stays plain


def test_golden_files(tmp_path, update_golden):
    """Every artifact of specs/stack.yaml equals its golden file (update: --update-golden)."""
    _, artifacts, _ = compile_spec(SPEC, "generated")
    if update_golden:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for a in artifacts:
            path = os.path.join(GOLDEN, a.path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(a.data)
    d = writer.diff(GOLDEN, artifacts)
    assert d.clean, f"golden files differ (run pytest --update-golden and review): {d}"


def test_committed_generated_is_current():
    """generated/ in the repo is exactly what `stackgen build` makes from specs/."""
    _, artifacts, _ = compile_spec(SPEC, os.path.join(ROOT, "generated"))
    d = writer.diff(os.path.join(ROOT, "generated"), artifacts)
    assert d.clean, d


@pytest.mark.parametrize("seed", ["0", "1", "12345"])
def test_byte_stable_across_hash_seeds(tmp_path, seed, spec_copy):
    out = tmp_path / f"out-{seed}"
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run([*stackgen_cmd(), "build", str(spec_copy), "--out", str(out)],
                   check=True, env=env, capture_output=True, cwd=tmp_path)
    ref = tmp_path / "ref"
    env["PYTHONHASHSEED"] = "999"
    subprocess.run([*stackgen_cmd(), "build", str(spec_copy), "--out", str(ref)],
                   check=True, env=env, capture_output=True, cwd=tmp_path)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    for f in files:
        assert (out / f).read_bytes() == (ref / f).read_bytes(), f


def test_every_text_artifact_carries_the_mark():
    _, artifacts, _ = compile_spec(SPEC, "generated")
    for a in artifacts:
        if a.path.endswith(".json"):
            continue  # JSON has no comments
        assert "DO NOT EDIT" in a.content.splitlines()[0], a.path


def test_failed_build_changes_nothing(tmp_path, spec_copy):
    out = tmp_path / "out"
    assert not build.build(str(spec_copy), str(out)).failed
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    spec_copy.write_text(spec_copy.read_text().replace("receiver: ml-team", "receiver: ml-tea"))
    res = build.build(str(spec_copy), str(out))
    assert res.failed
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before == after


def test_invalid_spec_writes_nothing(tmp_path, spec_copy):
    spec_copy.write_text(spec_copy.read_text().replace("version: 1", "version: 3"))
    out = tmp_path / "out"
    proc = subprocess.run([*stackgen_cmd(), "build", str(spec_copy), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_build_removes_files_it_no_longer_generates(tmp_path, spec_copy):
    out = tmp_path / "out"
    build.build(str(spec_copy), str(out))
    assert (out / "prometheus/rules/gpus-dcgm.yml").exists()
    (out / "notes.txt").write_text("mine")
    text = spec_copy.read_text()
    start, end = text.index("# GPU-level KPIs"), text.index("# Application KPIs")
    spec_copy.write_text(text[:start] + text[end:])
    res = build.build(str(spec_copy), str(out))
    assert not res.failed
    assert "prometheus/rules/gpus-dcgm.yml" in res.removed
    assert not (out / "prometheus/rules/gpus-dcgm.yml").exists()
    assert (out / "notes.txt").read_text() == "mine"  # not ours: left alone


def test_build_creates_missing_secrets_0600(tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    shutil.copy(SPEC, d / "stack.yaml")
    res = build.build(str(d / "stack.yaml"), str(tmp_path / "out"))
    assert not res.failed
    assert sorted(os.path.basename(p) for p in res.secrets_created) == [
        "grafana_admin_password", "slack_webhook_url", "smtp_password"]
    for p in res.secrets_created:
        assert os.stat(p).st_mode & 0o777 == 0o600
        assert len(open(p).read().strip()) >= 20
    assert "*" in (d / "secrets" / ".gitignore").read_text()
    # a second build leaves them as they are
    content = open(res.secrets_created[0]).read()
    assert build.build(str(d / "stack.yaml"), str(tmp_path / "out")).secrets_created == []
    assert open(res.secrets_created[0]).read() == content


def test_no_secret_value_in_output(tmp_path, spec_copy):
    secret = "s3cr3t-value-that-must-not-leak"
    for f in (spec_copy.parent / "secrets").iterdir():
        f.write_text(secret)
    out = tmp_path / "out"
    assert not build.build(str(spec_copy), str(out)).failed
    for p in out.rglob("*"):
        if p.is_file():
            assert secret not in p.read_text(), p


def _lint(spec, out, *extra):
    return subprocess.run([*stackgen_cmd(), "lint", str(spec), "--out", str(out), *extra],
                          capture_output=True, text=True)


def test_lint_clean_then_names_each_stale_missing_extra_file(tmp_path, spec_copy):
    out = tmp_path / "out"
    build.build(str(spec_copy), str(out))
    assert _lint(spec_copy, out).returncode == 0
    rules = out / "prometheus/rules/hosts-nodes.yml"
    rules.write_text(rules.read_text().replace("> 0.8", "> 0.9"))
    (out / "compose.yaml").unlink()
    (out / "stray.yml").write_text("x: 1\n")
    proc = _lint(spec_copy, out)
    assert proc.returncode == 1
    assert "prometheus/rules/hosts-nodes.yml: error: differs" in proc.stderr
    assert "compose.yaml: error: is generated by the spec but missing" in proc.stderr
    assert "stray.yml: error: is not generated" in proc.stderr


def test_lint_fails_after_a_spec_edit_without_rebuild(tmp_path, spec_copy):
    out = tmp_path / "out"
    build.build(str(spec_copy), str(out))
    spec_copy.write_text(spec_copy.read_text().replace("warning: 80%", "warning: 70%"))
    proc = _lint(spec_copy, out)
    assert proc.returncode == 1
    assert "hosts-nodes.yml" in proc.stderr and "manifest.json" in proc.stderr


def test_lint_formats(tmp_path, spec_copy):
    out = tmp_path / "out"
    build.build(str(spec_copy), str(out))
    (out / "compose.yaml").write_text("changed\n")
    rows = json.loads(_lint(spec_copy, out, "--format", "json").stdout)
    assert [r["check"] for r in rows if r["severity"] == "error"] == ["lint/stale"]
    gh = _lint(spec_copy, out, "--format", "github").stdout
    assert f"::error file={out}/compose.yaml,title=stackgen lint/stale::" in gh


def test_installed_package_ships_templates_and_schema(tmp_path):
    """`pip install .` elsewhere works: templates, schema and every subpackage ship."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), ROOT], check=True,
                   capture_output=True)
    code = ("import stackgen.templating as t, stackgen.spec.schema as s;"
            "print(t.render('init/stack.yaml.j2', name='x')[:9], s.schema()['title'])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    assert "stackgen KPI spec" in proc.stdout
    # Every package of the source tree is installed (an editable install of the checkout
    # would otherwise hide a package that `pip install .` leaves out).
    packages = sorted(os.path.relpath(d, ROOT).replace(os.sep, ".")
                      for d, _, files in os.walk(os.path.join(ROOT, "stackgen"))
                      if "__init__.py" in files)
    code = (f"import importlib, json;print(json.dumps([importlib.import_module(p).__file__ "
            f"for p in {packages!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    files = json.loads(proc.stdout)
    assert len(files) == len(packages) >= 4
    outside = [f for f in files if not f.startswith(str(site))]
    assert not outside, f"not installed by `pip install .`: {outside}"
