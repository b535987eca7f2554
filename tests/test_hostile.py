"""Hostile and careless input (issue 10): bounded YAML, real line numbers, warnings at the
line, secrets that stay apart, and a build that writes everything or nothing and never
touches anything outside --out. The bad-spec fixtures (tests/specs/bad/) pin the errors;
this file covers what a fixture cannot: warnings, file names, the output folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import SPEC, stackgen_cmd
from stackgen import build
from stackgen.problems import SpecError, render_text
from stackgen.spec import load, source

MIN = """\
version: 1
stack:
  name: hostile
alerting:
  default_receiver: ops
  receivers:
    ops:
      webhook: {url_file: secrets/webhook_url}
"""


def _problems(text):
    src, problems = source.load_text(text, "t.yaml")
    return src, problems


# -- the loader ------------------------------------------------------------------------------
def test_alias_bomb_is_refused_quickly():
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 15)]
    start = time.monotonic()
    _, problems = _problems("\n".join(lines) + "\n")
    assert time.monotonic() - start < 2
    assert [(p.check, p.pos.line) for p in problems] == [("yaml/too-big", 5)]


def test_wide_alias_use_is_counted_too():
    """Many aliases of one big anchor, none nested: the expansion is still counted."""
    text = "a: &a [" + ", ".join(["x"] * 1000) + "]\nb: [" + ", ".join(["*a"] * 200) + "]\n"
    _, problems = _problems(text)
    assert [p.check for p in problems] == ["yaml/too-big"]


def test_aliases_within_the_limit_load_with_positions_at_the_alias():
    text = "a: &a {x: 1, y: [2, 3]}\nb: *a\n"
    src, problems = _problems(text)
    assert not problems
    assert src.data == {"a": {"x": 1, "y": [2, 3]}, "b": {"x": 1, "y": [2, 3]}}
    assert (src.pos(("b", "y", 1)).line, src.pos(("a", "y", 1)).line) == (2, 1)


def test_merge_keeps_explicit_keys_and_places_merged_values():
    text = "base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  x: 3\n"
    src, problems = _problems(text)
    assert not problems
    assert src.data["thing"] == {"x": 3, "y": 2}
    assert src.pos(("thing", "y")).line == 3  # at the alias that merged it
    assert src.pos(("thing", "x")).line == 4


@pytest.mark.parametrize("text,check", [
    ("a: &a [*a]\n", "yaml/alias"),
    ("[" * 600 + "]" * 600 + "\n", "yaml/too-deep"),
    ("{a: " * 600 + "1" + "}" * 600 + "\n", "yaml/too-deep"),
    ("a: &s x\nb: {<<: *s}\n", "yaml/merge"),
    ("a: &s x\nb: {<<: [*s]}\n", "yaml/merge"),
    ("a: !!set {x}\n", "yaml/tag"),
    ("a: !!python/object:os.system x\n", "yaml/tag"),
    ("a: !!float abc\n", "yaml/value"),
    ("a: 2024-13-45\n", "yaml/value"),
    ("a: 1\n---\nb: 2\n", "yaml/documents"),
    ("? [a]\n: 1\n", "yaml/key"),
])
def test_hostile_yaml_is_one_clean_error(text, check):
    _, problems = _problems(text)
    assert check in [p.check for p in problems], render_text(problems, show_source=False)
    lines = text.split("\n")
    for p in problems:
        assert 1 <= p.pos.line <= len(lines)


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85"])
def test_unicode_line_separators_do_not_shift_later_lines(sep):
    text = f'a: "x{sep}y"\nb: 1\nb: 2\n'
    _, problems = _problems(text)
    assert [(p.check, p.pos.line, p.pos.col) for p in problems] == [("yaml/duplicate-key", 3, 1)]


def test_control_characters_at_their_position():
    _, problems = _problems('a: 1\nb: "x\x00y"\nc:\x1b 2\n')
    assert [(p.pos.line, p.pos.col) for p in problems] == [(2, 6), (3, 3)]


def test_an_error_at_the_end_names_a_line_that_exists():
    for text in ("a: [1, 2\n", "a: [1, 2", "a: {b: 1\n\n\n", "a: 'x\n"):
        _, problems = _problems(text)
        lines = len(text.split("\n")) - text.endswith("\n")  # as an editor counts them
        assert problems and all(p.pos.line <= lines for p in problems), (text, problems)


def test_not_utf8_at_line_and_column(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"version: 1\nstack:\n  name: ab\xffc\n")
    _, problems = source.load_file(str(path))
    assert [(p.check, p.pos.line, p.pos.col) for p in problems] == [("spec/encoding", 3, 11)]


def test_a_spec_name_with_a_line_break_is_refused(tmp_path):
    path = tmp_path / "bad\nname.yaml"
    path.write_text(MIN)
    with pytest.raises(SpecError) as info:
        load(str(path), str(tmp_path / "out"))
    assert [p.check for p in info.value.problems] == ["spec/name"]
    assert "\n" not in info.value.problems[0].file


# -- warnings at the line --------------------------------------------------------------------
def _write_spec(tmp_path, text, secrets=("webhook_url",)):
    (tmp_path / "secrets").mkdir(exist_ok=True)
    for name in secrets:
        (tmp_path / "secrets" / name).write_text("x\n")
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return str(path)


def _warnings(tmp_path, text, **kw):
    _, warnings = load(_write_spec(tmp_path, text, **kw), str(tmp_path / "out"))
    return [(w.check, w.pos.line, w.pos.col) for w in warnings]


def test_warns_a_first_route_that_shadows_the_rest(tmp_path):
    text = MIN + """\
  routes:
    - {matchers: ['alertname=~".*"'], receiver: ops}
    - {matchers: ['severity="critical"'], receiver: ops}
"""
    assert _warnings(tmp_path, text) == [("routes/shadowing", 10, 7)]
    assert _warnings(tmp_path, text.replace("receiver: ops}", "receiver: ops, continue: true}",
                                            1)) == []


def test_warns_duplicate_targets(tmp_path):
    text = MIN + "hosts:\n  nodes:\n    targets: [a:9100, b:9100, a:9100]\n"
    assert _warnings(tmp_path, text) == [("targets/duplicate", 11, 31)]


def test_warns_a_group_label_hiding_a_label_the_errors_selector_needs(tmp_path):
    text = MIN + """\
services:
  api:
    targets: [api:8080]
    labels: {status: prod}
    kpis:
      error_rate: {counter: req_total, errors: 'status=~"5.."', warning: 1%}
"""
    assert _warnings(tmp_path, text) == [("labels/hides-scraped", 12, 14)]


def test_warns_a_secret_linked_outside_the_spec_folder(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "url").write_text("x\n")
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "secrets").mkdir()
    os.symlink(outside / "url", spec / "secrets" / "webhook_url")
    assert _warnings(spec, MIN, secrets=()) == [("secrets/outside", 8, 27)]


# -- secrets ---------------------------------------------------------------------------------
def test_secrets_whose_names_collide_stay_apart(tmp_path):
    text = MIN.replace("    ops:\n", "    ops:\n      slack: {channel: x, api_url_file: a/token}\n"
                       "      pagerduty: {routing_key_file: b/token}\n"
                       "      email: {to: a@example.com}\n") + \
        "  smtp: {smarthost: 'mail:25', from: a@example.com, auth_password_file: b_token}\n"
    path = _write_spec(tmp_path, text)
    for name in ("a/token", "b/token", "b_token"):
        os.makedirs(os.path.dirname(tmp_path / name), exist_ok=True)
        (tmp_path / name).write_text("x\n")
    model, _ = load(path, str(tmp_path / "out"))
    names = {s.source: s.name for s in model.secrets}
    assert len(set(names.values())) == len(names) == 4, names
    out = tmp_path / "out"
    assert not build.build(path, str(out)).failed
    compose = (out / "compose.yaml").read_text()
    for sec in model.secrets:
        assert f"{sec.name}:\n    file: ../{sec.source}" in compose


# -- the output folder -----------------------------------------------------------------------
@pytest.fixture
def spec(spec_copy):
    return spec_copy


def _snapshot(root):
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def _build(spec, out, *extra, cwd=None):
    return subprocess.run([*stackgen_cmd(), "build", str(spec), "--out", str(out), *extra],
                          capture_output=True, text=True, cwd=cwd)


def _errors(res):
    return sorted({p.check for p in res.problems if p.is_error})


def test_manifest_cannot_delete_outside_out(tmp_path, spec):
    out = tmp_path / "out"
    assert not build.build(str(spec), str(out)).failed
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    sha = hashlib.sha256(victim.read_bytes()).hexdigest()
    os.symlink(tmp_path, out / "link")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"].update({str(victim): sha, "../victim.txt": sha, "link/victim.txt": sha,
                              "./../victim.txt": sha, "": sha})
    (out / "manifest.json").write_text(json.dumps(manifest))
    res = build.build(str(spec), str(out))
    assert not res.failed and res.removed == []
    assert victim.read_text() == "keep me\n"


def test_a_corrupt_manifest_is_ignored(tmp_path, spec):
    out = tmp_path / "out"
    out.mkdir()
    for manifest in ('{"files": 5}', "[1, 2]", '{"files": [null, 3]}', "not json",
                     '{"files": {"a": 5}}', "[" * 100000, '{"files": {"\\u0000": "x"}}'):
        (out / "manifest.json").write_text(manifest)
        res = build.build(str(spec), str(out))
        assert not res.failed, (manifest[:20], res.problems)


def test_only_unchanged_generated_files_are_removed(tmp_path, spec):
    out = tmp_path / "out"
    assert not build.build(str(spec), str(out)).failed
    mine = out / "prometheus" / "rules" / "gpus-dcgm.yml"
    mine.write_text(mine.read_text() + "# my note\n")  # edited by hand since: keep it
    text = spec.read_text()
    start, end = text.index("# GPU-level KPIs"), text.index("# Application KPIs")
    spec.write_text(text[:start] + text[end:])
    res = build.build(str(spec), str(out))
    assert not res.failed and mine.exists()
    assert "prometheus/rules/gpus-dcgm.yml" not in res.removed
    assert "grafana/dashboards/ml-platform-gpus-dcgm.json" in res.removed  # untouched: removed


def test_out_empty_string_cli(tmp_path, spec):
    before = _snapshot(tmp_path)
    proc = _build(spec, "", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "nothing was written" in proc.stderr
    assert "[output/folder]" in proc.stderr
    assert _snapshot(tmp_path) == before


def _refused(spec, out, root, check):
    before = _snapshot(root)
    res = build.build(str(spec), str(out))
    assert check in _errors(res), res.problems
    assert _snapshot(root) == before
    return res


def test_out_is_a_link_to_a_missing_folder(tmp_path, spec):
    os.symlink(tmp_path / "missing", tmp_path / "out")
    _refused(spec, tmp_path / "out", tmp_path, "output/folder")
    assert not (tmp_path / "missing").exists()


def test_out_is_a_file(tmp_path, spec):
    (tmp_path / "out").write_text("x")
    _refused(spec, tmp_path / "out", tmp_path, "output/folder")


def test_a_file_in_the_way_of_a_folder_and_a_link_out(tmp_path, spec):
    out = tmp_path / "out"
    out.mkdir()
    (out / "prometheus").write_text("in the way\n")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out / "grafana")
    res = _refused(spec, out, tmp_path, "output/conflict")
    assert "output/outside" in _errors(res)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_name_too_long_for_the_file_system(tmp_path, spec):
    spec.write_text(spec.read_text().replace("  sales-forecasting:", "  s" + "x" * 300 + ":"))
    _refused(spec, tmp_path / "out", tmp_path, "output/name-too-long")
    assert not (tmp_path / "out").exists()


def test_a_secret_file_name_too_long_for_the_file_system(tmp_path, spec):
    """build creates missing secret placeholders: a name the file system refuses is found
    before the first write (it failed half way: the output was written, then the
    placeholder could not be; found by fuzzing the receivers spec)."""
    spec.write_text(spec.read_text().replace(
        "admin_password_file: secrets/grafana_admin_password",
        "admin_password_file: secrets/" + "a" * 300))
    res = _refused(spec, tmp_path / "out", tmp_path, "output/name-too-long")
    assert not (tmp_path / "out").exists()
    [p] = [p for p in res.problems if p.check == "output/name-too-long"]
    assert "secret" in p.message and "--no-secrets" in p.message, p.message


def test_a_spec_from_a_pipe_cannot_get_secret_placeholders(tmp_path):
    before = _snapshot(tmp_path)
    proc = subprocess.run(["bash", "-c", f'{" ".join(stackgen_cmd())} build <(cat {SPEC}) '
                           f'--out {tmp_path / "out"}'], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "nothing was written" in proc.stderr
    assert "[output/secret]" in proc.stderr
    assert _snapshot(tmp_path) == before and not (tmp_path / "out").exists()


def test_a_dollar_in_the_spec_folder_reaches_compose_literally(tmp_path):
    """Compose reads `$x` in a secret's file as a variable; the folder name must survive."""
    from stackgen import check

    compose = check.find_compose()
    assert compose, check.INSTALL["compose"]
    d = tmp_path / "a$HOME" / "spec"
    (d / "secrets").mkdir(parents=True)
    shutil.copy(SPEC, d / "stack.yaml")
    for name in ("grafana_admin_password", "smtp_password", "slack_webhook_url"):
        (d / "secrets" / name).write_text("placeholder\n")
    out = tmp_path / "out"
    assert not build.build(str(d / "stack.yaml"), str(out)).failed
    proc = subprocess.run([compose, "-f", str(out / "compose.yaml"), "config", "--format",
                           "json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    files = [s["file"].replace("$$", "$")  # the output is a Compose file again
             for s in json.loads(proc.stdout)["secrets"].values()]
    assert files and all(f.startswith(str(d / "secrets")) for f in files), files
