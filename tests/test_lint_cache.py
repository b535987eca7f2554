"""`stackgen lint` from remembered file hashes answers as a full lint does."""

import os

from stackgen import build, lint_cache


def test_a_cached_lint_finds_what_a_full_lint_finds(tmp_path, spec_copy, monkeypatch):
    out = tmp_path / "out"
    assert not build.build(str(spec_copy), str(out)).failed
    first = build.lint(str(spec_copy), str(out))  # generates, and remembers the hashes
    assert first.artifacts and not first.failed
    cached = os.listdir(os.path.join(os.environ["XDG_CACHE_HOME"], "stackgen", "lint"))
    assert cached
    again = build.lint(str(spec_copy), str(out))
    assert again.artifacts == [] and not again.failed  # answered from the cache
    (out / "compose.yaml").write_text((out / "compose.yaml").read_text() + "# edit\n")
    (out / "grafana" / "extra.json").write_text("{}\n")
    (out / "prometheus" / "rules" / "stack.yml").unlink()
    found = {(p.check, p.file) for p in build.lint(str(spec_copy), str(out)).problems
             if p.is_error}
    monkeypatch.setenv("STACKGEN_NO_CACHE", "1")
    assert lint_cache.lookup(None) == ("", None)
    full = {(p.check, p.file) for p in build.lint(str(spec_copy), str(out)).problems
            if p.is_error}
    assert found == full == {("lint/stale", f"{out}/compose.yaml"),
                             ("lint/extra", f"{out}/grafana/extra.json"),
                             ("lint/missing", f"{out}/prometheus/rules/stack.yml")}


def test_the_cache_key_changes_with_the_model(spec_copy, tmp_path):
    from stackgen.spec import load

    a, _ = load(str(spec_copy), out_dir=str(tmp_path / "a"))
    b, _ = load(str(spec_copy), out_dir=str(tmp_path / "a"))
    spec_copy.write_text(spec_copy.read_text().replace("warning: 80%", "warning: 81%", 1))
    c, _ = load(str(spec_copy), out_dir=str(tmp_path / "a"))
    assert lint_cache.key(a) == lint_cache.key(b) != lint_cache.key(c)
