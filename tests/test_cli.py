"""The command line as a user meets it: exit codes, messages, init, schema."""

import json
import os
import subprocess

from conftest import ROOT, stackgen_cmd


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
    folder = os.path.join(ROOT, "tests", "specs", "bad")
    names = sorted(f for f in os.listdir(folder) if f.endswith(".yaml"))
    assert len(names) >= 12
    for name in names:
        out = tmp_path / name
        proc = run("build", os.path.join(folder, name), "--out", str(out))
        assert proc.returncode == 2, (name, proc.stderr)
        assert "Traceback" not in proc.stderr, name
        assert f"{name}:" in proc.stderr and ": error: " in proc.stderr, (name, proc.stderr)
        assert not out.exists(), name


def test_good_specs_build(tmp_path):
    folder = os.path.join(ROOT, "tests", "specs", "good")
    for name in sorted(f for f in os.listdir(folder) if f.endswith(".yaml")):
        proc = run("build", os.path.join(folder, name), "--out", str(tmp_path / name),
                   "--no-secrets")
        assert proc.returncode == 0, (name, proc.stderr)


def test_missing_spec_file(tmp_path):
    proc = run("build", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "nope.yaml: error: cannot read spec" in proc.stderr


def test_init_writes_a_valid_spec_and_never_overwrites(tmp_path):
    spec = tmp_path / "specs" / "stack.yaml"
    proc = run("init", str(spec), "--name", "shop")
    assert proc.returncode == 0, proc.stderr
    assert "name: shop" in spec.read_text()
    secret = tmp_path / "specs" / "secrets" / "grafana_admin_password"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "specs" / "secrets" / ".gitignore").exists()
    spec.write_text(spec.read_text() + "# mine\n")
    proc = run("init", str(spec))
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert spec.read_text().endswith("# mine\n")
    assert run("init", str(spec), "--force").returncode == 0
    assert not spec.read_text().endswith("# mine\n")
    assert run("build", str(spec), "--out", str(tmp_path / "out")).returncode == 0


def test_version_and_help():
    assert run("--version").stdout.startswith("stackgen, version ")
    assert "build" in run("--help").stdout
