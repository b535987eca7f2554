"""A spec the schema passed is not validated again (no jsonschema import on a repeated
lint), and a changed spec still gets every schema error at its line."""

import os
import subprocess
import sys

from conftest import SPEC


def _lint(spec, cache, *extra_env):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), **dict(extra_env)}
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "stackgen", "lint",
                           str(spec), "--out", "generated"], capture_output=True, text=True,
                          env=env, cwd=os.path.dirname(os.path.dirname(SPEC)))


def _imports_jsonschema(proc) -> bool:
    return any(line.rstrip().endswith("| jsonschema") for line in proc.stderr.splitlines())


def test_a_repeated_lint_skips_jsonschema_and_a_changed_spec_is_validated(tmp_path):
    cache = tmp_path / "cache"
    first = _lint(SPEC, cache)
    assert first.returncode == 0, first.stderr[-2000:]
    assert _imports_jsonschema(first)
    again = _lint(SPEC, cache)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not _imports_jsonschema(again)
    assert _imports_jsonschema(_lint(SPEC, cache, ("STACKGEN_NO_CACHE", "1")))
    bad = tmp_path / "stack.yaml"
    bad.write_text(open(SPEC).read().replace("version: 1", "version: 3", 1))
    proc = _lint(bad, cache)
    assert proc.returncode == 2
    assert f"{bad}:" in proc.stderr and "version" in proc.stderr
