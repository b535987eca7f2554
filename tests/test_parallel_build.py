"""`build` of a large stack forks a worker (stackgen/parallel.py): the same bytes as the serial
build, nothing written when the output check fails, and a failing worker is an error."""

import os
import sys

import pytest

from conftest import ROOT, SPEC, copy_spec
from stackgen import build as B
from stackgen import parallel, writer

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench  # noqa: E402  (the benchmark's generated specs)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork: Linux only")


def _tree(folder) -> dict:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(folder))] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def large_spec(tmp_path_factory):
    return bench.make_spec(str(tmp_path_factory.mktemp("large")), parallel.MIN_GROUPS + 2)


@pytest.fixture
def forking(monkeypatch):
    """Fork for any stack (the default spec is below MIN_GROUPS), and count the forks."""
    forks = []
    real = parallel.Worker.__init__

    def counted(self, *args):
        forks.append(args)
        real(self, *args)

    monkeypatch.setenv("STACKGEN_PARALLEL_MIN", "1")
    monkeypatch.delenv("STACKGEN_JOBS", raising=False)
    monkeypatch.setattr(parallel.Worker, "__init__", counted)
    monkeypatch.setattr(parallel, "usable", lambda model: True)
    return forks


@pytest.mark.parametrize("which", ["default", "large", "environment", "environments"])
def test_the_forked_build_writes_the_bytes_of_the_serial_build(
        which, large_spec, tmp_path, monkeypatch, forking):
    env = None
    if which == "default":
        spec = copy_spec(SPEC, tmp_path / "spec")
    elif which == "large":
        spec = large_spec
    else:  # one environment of a spec with several (its folder under --out), or each
        import shutil

        shutil.copytree(os.path.join(ROOT, "tests", "specs", "envs"), tmp_path / "envs")
        spec = tmp_path / "envs" / "webshop.yaml"
        env = "production" if which == "environment" else None
    par = B.build(str(spec), str(tmp_path / "par"), create_secrets=False, env=env)
    assert not par.failed, par.problems
    assert len(forking) == (2 if which == "environments" else 1)
    monkeypatch.setattr(parallel, "usable", lambda model: False)
    ser = B.build(str(spec), str(tmp_path / "ser"), create_secrets=False, env=env)
    assert len(forking) == (2 if which == "environments" else 1)
    assert _tree(tmp_path / "par") == _tree(tmp_path / "ser")
    assert par.written == ser.written and len(par.artifacts) == len(ser.artifacts)


def test_the_default_limit_forks_for_a_large_stack_only(large_spec, spec_copy, monkeypatch):
    from stackgen.spec import load

    monkeypatch.delenv("STACKGEN_JOBS", raising=False)
    monkeypatch.delenv("STACKGEN_PARALLEL_MIN", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    small, _ = load(str(spec_copy), out_dir="generated")
    large, _ = load(large_spec, out_dir="generated")
    assert not parallel.usable(small)
    assert parallel.usable(large)
    monkeypatch.setenv("STACKGEN_JOBS", "1")
    assert not parallel.usable(large)
    monkeypatch.delenv("STACKGEN_JOBS")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert not parallel.usable(large)


def test_a_rebuild_rewrites_stale_files_of_both_processes_and_removes_old_ones(
        spec_copy, tmp_path, forking):
    out = tmp_path / "out"
    assert not B.build(str(spec_copy), str(out), create_secrets=False).failed
    theirs = out / "grafana" / "dashboards" / "ml-platform-overview.json"  # the worker's
    ours = out / "prometheus" / "prometheus.yml"  # this process's
    assert theirs.exists() and ours.exists()
    theirs.write_text("edited\n")
    ours.write_text("edited\n")
    before = _tree(out)
    # a file the last build made and this one does not: the manifest vouches for it
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    (out / "prometheus" / "rules" / "old.yml").write_text("old\n")
    from stackgen.generators.manifest import sha256

    manifest["files"]["prometheus/rules/old.yml"] = sha256(b"old\n")
    (out / "manifest.json").write_text(json.dumps(manifest))
    res = B.build(str(spec_copy), str(out), create_secrets=False)
    assert not res.failed, res.problems
    assert sorted(res.written) == ["grafana/dashboards/ml-platform-overview.json",
                                   "manifest.json", "prometheus/prometheus.yml"]
    assert res.removed == ["prometheus/rules/old.yml"]
    after = _tree(out)
    assert after[str(theirs.relative_to(out))] != before[str(theirs.relative_to(out))]
    assert not (out / "prometheus" / "rules" / "old.yml").exists()
    assert B.lint(str(spec_copy), str(out)).problems == []


def test_nothing_is_written_when_a_path_of_the_worker_is_blocked(spec_copy, tmp_path, forking):
    out = tmp_path / "out"
    (out / "grafana").mkdir(parents=True)
    (out / "grafana" / "dashboards").write_text("a file where a folder goes\n")
    res = B.build(str(spec_copy), str(out), create_secrets=False)
    assert res.failed
    assert any(p.check.startswith("output/") for p in res.problems), res.problems
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == \
        ["grafana", "grafana/dashboards"]
    assert len(forking) == 1


def test_a_write_error_of_the_worker_is_an_error_of_build(spec_copy, tmp_path, monkeypatch,
                                                            forking):
    real = writer.write_files

    def failing(out_dir, artifacts):
        if any(a.path.startswith("grafana/dashboards/") for a in artifacts):  # the worker's
            raise OSError(28, "No space left on device", os.path.join(out_dir, "grafana"))
        return real(out_dir, artifacts)

    monkeypatch.setattr(writer, "write_files", failing)  # the forked worker inherits it
    out = tmp_path / "out"
    res = B.build(str(spec_copy), str(out), create_secrets=False)
    assert res.failed
    [p] = [p for p in res.problems if p.is_error]
    assert p.check == "output/write" and "No space left on device" in p.message
    assert not (out / "manifest.json").exists()  # nothing vouches for a partial build


def test_a_bug_in_the_worker_is_raised_with_its_traceback(spec_copy, tmp_path, monkeypatch,
                                                          forking):
    from stackgen.generators import helm_chart

    def broken(model, boards):
        raise KeyError("a generator bug")

    monkeypatch.setattr(helm_chart, "dashboard_copies", broken)  # the worker calls it
    out = tmp_path / "out"
    with pytest.raises(RuntimeError) as exc:
        B.build(str(spec_copy), str(out), create_secrets=False)
    assert "a generator bug" in str(exc.value) and "Traceback" in str(exc.value)
    assert not out.exists() or not any(out.rglob("*"))


def test_the_rule_files_of_a_model_are_made_once_per_build(spec_copy, tmp_path, monkeypatch):
    """The routing check of the loader and the generators share one computation of the
    rule files (it was made three times: for the loader's model, then again for the
    final model in each process)."""
    from stackgen.generators import prometheus_rules

    calls = []
    real = prometheus_rules._rule_files

    def counted(model):
        calls.append(model)
        return real(model)

    monkeypatch.setattr(prometheus_rules, "_rule_files", counted)
    monkeypatch.setattr(parallel, "usable", lambda model: False)
    assert not B.build(str(spec_copy), str(tmp_path / "out"), create_secrets=False).failed
    # rule_tests lets the data go (memory) and asks for the stack's rules only
    assert len(calls) == 1, len(calls)


def test_ctrl_c_during_a_forked_build_writes_nothing_and_leaves_no_process(tmp_path):
    """Ctrl-C while the two processes generate: the worker ignores it (the main process
    handles it) and is ended without writing; the command stops at once with click's
    "Aborted!" (no traceback) and leaves no process behind."""
    import signal
    import subprocess
    import time

    from conftest import stackgen_cmd

    spec = bench.make_spec(str(tmp_path), 300)
    out = tmp_path / "out"
    proc = subprocess.Popen([*stackgen_cmd(), "build", spec, "--out", str(out), "--no-secrets"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "STACKGEN_JOBS": "2"}, start_new_session=True)
    time.sleep(1.0)  # loading or generating: far from the first write
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    start = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - start < 5
    assert proc.returncode != 0 and "Aborted!" in err and "Traceback" not in err, err
    assert not out.exists() or not any(out.rglob("*"))
    left = subprocess.run(["pgrep", "-f", spec], capture_output=True, text=True).stdout
    assert not left.strip(), left


def test_no_environment_is_written_when_a_path_of_another_is_blocked(tmp_path, forking):
    """Each environment has its worker; none writes until every folder's paths passed."""
    import shutil

    shutil.copytree(os.path.join(ROOT, "tests", "specs", "envs"), tmp_path / "envs")
    out = tmp_path / "out"
    (out / "staging" / "grafana").mkdir(parents=True)
    (out / "staging" / "grafana" / "dashboards").write_text("a file where a folder goes\n")
    res = B.build(str(tmp_path / "envs" / "webshop.yaml"), str(out), create_secrets=False)
    assert res.failed and len(forking) == 2
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == \
        ["staging", "staging/grafana", "staging/grafana/dashboards"]
