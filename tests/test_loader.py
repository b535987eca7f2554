"""The spec loader: good specs load, bad specs fail with the right message at the right place.

tests/specs/good/*.yaml must load without an error. Each tests/specs/bad/<name>.yaml has a
sibling <name>.expect with one `LINE:COL: substring of message` line per expected error: each
line must match a reported error, and the number of errors must equal the number of lines.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from stackgen import matchers
from stackgen.problems import ERROR, WARNING, Position, Problem, SpecError, render_text
from stackgen.spec import load, schema, source
from stackgen.spec import units as U

HERE = os.path.dirname(os.path.abspath(__file__))
GOOD = os.path.join(HERE, "specs", "good")
BAD = os.path.join(HERE, "specs", "bad")


def _specs(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".yaml"))


# Warnings a good spec may carry: the reference spec names no histogram buckets, so the
# latency SLO threshold cannot be checked offline.
ALLOWED_WARNINGS = {"reference.yaml": {"slos/bucket-unknown", "kpis/bucket-unknown"}}


# -- (a) good specs ---------------------------------------------------------------------------
def test_enough_good_specs():
    assert len(_specs(GOOD)) >= 4


@pytest.mark.parametrize("name", _specs(GOOD))
def test_good_spec_loads(name, tmp_path):
    path = os.path.join(GOOD, name)
    try:
        model, warnings = load(path, str(tmp_path / "out"))
    except SpecError as exc:  # pragma: no cover - the message is the point
        pytest.fail(f"{name} should load:\n{render_text(exc.problems)}")
    assert model is not None
    assert all(w.severity == WARNING for w in warnings)
    unexpected = [w for w in warnings if w.check not in ALLOWED_WARNINGS.get(name, set())]
    assert not unexpected, render_text(unexpected)


@pytest.mark.parametrize("name", _specs(GOOD))
def test_good_spec_loads_strict(name, tmp_path):
    """Every secret file the good specs name exists, so strict mode passes too."""
    load(os.path.join(GOOD, name), str(tmp_path / "out"), strict=True)


def test_good_minimal_defaults(tmp_path):
    model, _ = load(os.path.join(GOOD, "minimal.yaml"), str(tmp_path))
    assert model.stack.name == "minimal"
    assert model.groups == ()
    assert model.alerting.default_receiver == "ops"
    assert [r.name for r in model.alerting.receivers] == ["ops"]
    assert model.dashboards_overview and model.dashboards_per_group


def test_good_receivers_every_kind(tmp_path):
    model, _ = load(os.path.join(GOOD, "receivers.yaml"), str(tmp_path))
    by = {r.name: r for r in model.alerting.receivers}
    assert len(by["chat"].slack) == 1 and len(by["chat_many"].slack) == 2
    assert len(by["default"].email) == 1 and len(by["mail-many"].email) == 2
    assert len(by["hook"].webhook) == 1 and len(by["hooks"].webhook) == 2
    assert len(by["pager"].pagerduty) == 1 and len(by["pagers"].pagerduty) == 1
    e = by["everything"]
    assert (len(e.slack), len(e.email), len(e.webhook), len(e.pagerduty)) == (1, 1, 1, 1)
    assert model.alerting.smtp is not None and model.alerting.smtp.auth_password is not None
    heartbeat, first = model.alerting.routes[:2]  # the heartbeat's route comes first
    assert heartbeat.receiver == "hooks" and heartbeat.matchers == ('alertname="Heartbeat"',)
    assert first.continue_ is True and first.receiver == "pager"
    assert first.routes[0].receiver == "pagers"
    assert first.routes[0].matchers == ('team=~"ml-.*"', 'env!="dev"')
    assert first.routes[0].routes[0].receiver == "everything"
    assert first.routes[0].routes[0].matchers == ('kpi!~"cpu|memory"',)
    assert model.alerting.routes[3].matchers == ('service="granite"',)
    # the same secret file named by several receivers is one secret
    assert sorted(s.source for s in model.secrets) == sorted({
        "secrets/grafana_admin_password", "secrets/smtp_password",
        "secrets/slack_webhook_url", "secrets/webhook_url", "secrets/pagerduty_routing_key"})


def test_good_services_custom(tmp_path):
    model, _ = load(os.path.join(GOOD, "services_custom.yaml"), str(tmp_path))
    assert [g.name for g in model.groups] == ["api", "worker"]
    api = model.groups[0]
    assert api.scheme == "https" and api.metrics_path == "/internal/metrics"
    kpis = {k.name: k for k in api.kpis}
    assert set(kpis) == {"queue_depth", "cache_hit_ratio", "p99_latency", "heap_bytes",
                         "login_rate"}
    values = {k: {(t.severity, t.below): t.value for t in kpi.thresholds}
              for k, kpi in kpis.items()}
    assert values["cache_hit_ratio"] == {("warning", True): 0.65, ("critical", True): 0.4}
    assert values["p99_latency"] == {("warning", False): 0.75, ("critical", False): 2.0}
    assert values["heap_bytes"] == {("warning", False): 2 * 2**30, ("critical", False): 3.5e9}
    assert values["login_rate"] == {("warning", True): 0.5}
    assert values["queue_depth"] == {("warning", False): 100, ("critical", False): 1000}


def test_good_dashboards_off(tmp_path):
    model, _ = load(os.path.join(GOOD, "dashboards_off.yaml"), str(tmp_path))
    assert model.dashboards_overview is False
    assert model.dashboards_per_group is False
    assert model.stack.images.grafana == "grafana/grafana:12.0.2"


# -- (b) bad specs ----------------------------------------------------------------------------
# LINE:COL: substring of the message [check id] (the check id is optional)
_EXPECT = re.compile(r"^(\d+):(\d+): (.+?)(?: \[([a-z-]+/[a-z-]+)\])?$")


def _expectations(name):
    with open(os.path.join(BAD, name[:-len(".yaml")] + ".expect"), encoding="utf-8") as fh:
        lines = [ln.rstrip("\n") for ln in fh if ln.strip()]
    out = []
    for ln in lines:
        m = _EXPECT.match(ln)
        assert m, f"{name}: malformed .expect line {ln!r}"
        out.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
    return out


def test_enough_bad_specs():
    assert len(_specs(BAD)) >= 14
    for name in _specs(BAD):
        assert os.path.isfile(os.path.join(BAD, name[:-5] + ".expect")), name


@pytest.mark.parametrize("name", _specs(BAD))
def test_bad_spec_fails(name, tmp_path):
    path = os.path.join(BAD, name)
    with pytest.raises(SpecError) as info:
        load(path, str(tmp_path / "out"))
    errors = [p for p in info.value.problems if p.is_error]
    report = render_text(errors)
    expected = _expectations(name)
    assert len(errors) == len(expected), f"{name}: expected {len(expected)} error(s), got:\n{report}"
    for line, col, text, check in expected:
        hits = [p for p in errors if (p.pos.line, p.pos.col) == (line, col) and text in p.message
                and check in (None, p.check)]
        assert hits, (f"{name}: no error at {line}:{col} containing {text!r}"
                      f"{f' [{check}]' if check else ''}; got:\n{report}")
    # every error names this file and reads as one line
    for p in errors:
        assert p.file == path
        assert "\n" not in p.message and "Traceback" not in p.message


def test_several_errors_are_all_reported_with_different_checks(tmp_path):
    for name in ("several_schema_errors.yaml", "several_semantic_errors.yaml"):
        with pytest.raises(SpecError) as info:
            load(os.path.join(BAD, name), str(tmp_path))
        checks = {p.check for p in info.value.problems if p.is_error}
        assert len(checks) >= 3, (name, checks)


def test_unknown_default_receiver_does_not_also_warn_unused(tmp_path):
    """The typo is the error; the receiver it meant must not be called unused as well."""
    with pytest.raises(SpecError) as info:
        load(os.path.join(BAD, "unknown_default_receiver.yaml"), str(tmp_path))
    assert [p.check for p in info.value.problems] == ["routes/receiver"]


# -- (c) inline cases through load_text + schema.validate ------------------------------------
BASE = """\
version: 1
stack:
  name: inline
alerting:
  default_receiver: ops
  receivers:
    ops:
      webhook: {url_file: secrets/webhook_url}
"""


def _schema_problems(text):
    src, problems = source.load_text(text, "inline.yaml")
    assert problems == [], problems
    return schema.validate(src)


def test_inline_valid():
    assert _schema_problems(BASE) == []


def test_inline_positions_and_index():
    src, problems = source.load_text(BASE, "inline.yaml")
    assert problems == []
    assert src.data["stack"] == {"name": "inline"}
    assert src.keys[("stack", "name")] == Position(3, 3)
    assert src.values[("stack", "name")] == Position(3, 9)
    assert src.values[("alerting", "receivers", "ops", "webhook", "url_file")] == Position(8, 27)
    # a path that does not exist falls back to its nearest ancestor
    assert src.pos(("stack", "name", "nope")) == Position(3, 9)
    assert src.key_pos(("alerting",)) == Position(4, 1)


def test_inline_unknown_key_at_key():
    text = BASE + "dashbords:\n  overview: false\n"
    (p,) = _schema_problems(text)
    assert (p.pos.line, p.pos.col) == (9, 1)
    assert p.check == "schema/unknown-key"
    assert p.message == "unknown key 'dashbords'; did you mean 'dashboards'?"


def test_inline_unknown_key_without_close_match_lists_choices():
    (p,) = _schema_problems(BASE + "zzz: 1\n")
    assert (p.pos.line, p.pos.col) == (9, 1)
    assert "expected one of: alerting, dashboards, environments, gpus, hosts, services, stack, version" in \
        p.message


def test_inline_bad_value_at_value():
    text = BASE.replace("  name: inline\n", "  name: inline\n  retention: 2 weeks\n")
    (p,) = _schema_problems(text)
    assert (p.pos.line, p.pos.col) == (4, 14)
    assert p.check == "schema/pattern"
    assert p.message.startswith("stack.retention: '2 weeks' is not valid; expected a duration")


def test_inline_value_in_flow_sequence():
    text = BASE + "hosts:\n  nodes:\n    targets: [a:9100, 'no port']\n"
    (p,) = _schema_problems(text)
    assert (p.pos.line, p.pos.col) == (11, 23)
    assert p.message.startswith("hosts.nodes.targets[1]: 'no port' is not valid; expected host:port")


def test_inline_missing_required_key():
    (p,) = _schema_problems("version: 1\nstack:\n  environment: dev\n")
    assert (p.pos.line, p.pos.col) == (2, 1)  # at the key of the mapping that lacks it
    assert p.check == "schema/required"
    assert p.message == "stack: missing required key 'name'"


def test_inline_type_names_are_yaml_words():
    (p,) = _schema_problems("version: 1\nstack:\n")
    assert (p.pos.line, p.pos.col) == (2, 7)
    assert p.message == "stack: expected a mapping, got null (an empty value)"
    (p,) = _schema_problems(BASE + "hosts:\n  nodes: {targets: a:9100}\n")
    assert p.message == "hosts.nodes.targets: expected a list, got a string"
    (p,) = _schema_problems("- version: 1\n")
    assert p.message == "the spec: expected a mapping, got a list"


def test_inline_empty_list():
    (p,) = _schema_problems(BASE + "hosts:\n  nodes: {targets: []}\n")
    assert (p.pos.line, p.pos.col) == (10, 20)
    assert p.message == "hosts.nodes.targets: expected at least 1 item, got an empty list"


def test_inline_date_value():
    text = BASE.replace("  name: inline\n", "  name: inline\n  retention: 2024-01-01\n")
    (p,) = _schema_problems(text)
    assert p.message.startswith("stack.retention: a date 2024-01-01 is not valid")


def test_inline_receiver_list_form_error_points_inside_list():
    text = BASE.replace("      webhook: {url_file: secrets/webhook_url}\n",
                        "      slack:\n        - {channel: '#a', api_url_file: x}\n"
                        "        - {channel: '#b'}\n")
    (p,) = _schema_problems(text)
    assert (p.pos.line, p.pos.col) == (10, 11)
    assert p.message == "alerting.receivers.ops.slack[1]: missing required key 'api_url_file'"


def test_inline_duplicate_key_in_flow_mapping():
    src, problems = source.load_text("version: 1\nstack: {name: a, name: b}\n", "f.yaml")
    (p,) = problems
    assert (p.pos.line, p.pos.col) == (2, 18)
    assert p.check == "yaml/duplicate-key"
    assert "first defined at line 2, column 9" in p.message
    assert src.data["stack"] == {"name": "a"}  # the first one stays


def test_inline_yaml_syntax_errors():
    _, (p,) = source.load_text("a: 'unterminated\n", "f.yaml")
    assert p.check == "yaml/syntax"
    assert "quoted scalar that starts at line 1, column 4" in p.message
    _, (p,) = source.load_text("a: @x\n", "f.yaml")
    assert (p.pos.line, p.pos.col) == (1, 4)
    assert "'@'" in p.message and "quotes" in p.message
    _, (p,) = source.load_text("a:\n\tb: 1\n", "f.yaml")
    assert (p.pos.line, p.pos.col) == (2, 1)
    assert "tab" in p.message


def test_inline_empty_and_whitespace():
    for text in ("", "\n\n", "# only a comment\n", "---\n", "null\n", "~\n"):
        _, (p,) = source.load_text(text, "f.yaml")
        assert p.check == "yaml/empty", text


def test_inline_merge_keys():
    src, problems = source.load_text("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert problems == []
    assert src.data["m"] == {"x": 1, "y": 3}


def test_unreadable_and_non_utf8(tmp_path):
    with pytest.raises(SpecError) as info:
        load(str(tmp_path / "missing.yaml"), str(tmp_path))
    assert info.value.problems[0].check == "spec/read"
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"version: 1\nstack: {name: caf\xe9}\n")
    with pytest.raises(SpecError) as info:
        load(str(bad), str(tmp_path))
    assert info.value.problems[0].check == "spec/encoding"


# -- (d) secret files: a warning, or an error with strict ------------------------------------
@pytest.fixture
def spec_with_missing_secret(tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    (d / "stack.yaml").write_text(BASE.replace("secrets/webhook_url", "secrets/not_there"))
    return d / "stack.yaml"


def test_missing_secret_is_a_warning(spec_with_missing_secret, tmp_path):
    model, warnings = load(str(spec_with_missing_secret), str(tmp_path / "out"))
    (w,) = warnings
    assert w.severity == WARNING
    assert w.check == "secrets/missing"
    assert (w.pos.line, w.pos.col) == (8, 27)
    assert "'secrets/not_there' does not exist" in w.message
    assert [s.source for s in model.secrets] == ["secrets/not_there"]


def test_missing_secret_is_an_error_when_strict(spec_with_missing_secret, tmp_path):
    with pytest.raises(SpecError) as info:
        load(str(spec_with_missing_secret), str(tmp_path / "out"), strict=True)
    (p,) = info.value.problems
    assert p.severity == ERROR
    assert p.check == "secrets/missing"
    assert (p.pos.line, p.pos.col) == (8, 27)


def test_present_secret_is_quiet(spec_with_missing_secret, tmp_path):
    secrets = spec_with_missing_secret.parent / "secrets"
    secrets.mkdir()
    (secrets / "not_there").write_text("placeholder\n")
    _, warnings = load(str(spec_with_missing_secret), str(tmp_path / "out"), strict=True)
    assert warnings == []


def test_secret_outside_spec_folder_is_one_error(tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    (d / "stack.yaml").write_text(BASE.replace("secrets/webhook_url", "../webhook_url"))
    with pytest.raises(SpecError) as info:
        load(str(d / "stack.yaml"), str(tmp_path / "out"))
    # only the path error: "does not exist" on top of it would say the same thing twice
    assert [p.check for p in info.value.problems] == ["secrets/path"]


def test_reference_spec_without_secrets(tmp_path):
    """The reference as shipped in specs/ loads; strict fails only on missing secret files."""
    d = tmp_path / "spec"
    d.mkdir()
    shutil.copy(os.path.join(GOOD, "reference.yaml"), d / "stack.yaml")
    _, warnings = load(str(d / "stack.yaml"), str(tmp_path / "out"))
    assert {w.check for w in warnings} == {"secrets/missing", "slos/bucket-unknown",
                                           "kpis/bucket-unknown"}
    with pytest.raises(SpecError) as info:
        load(str(d / "stack.yaml"), str(tmp_path / "out"), strict=True)
    errors = [p for p in info.value.problems if p.is_error]
    assert {p.check for p in errors} == {"secrets/missing"}
    assert len(errors) == 3  # grafana, smtp, slack: each file is reported once


# -- (e) render_text ----------------------------------------------------------------------------
def test_render_text_format():
    path = os.path.join(BAD, "misspelt_top_key.yaml")
    with pytest.raises(SpecError) as info:
        load(path)
    out = render_text(info.value.problems)
    assert out == (
        f"{path}:4:1: error: unknown key 'alertng'; did you mean 'alerting'? "
        "[schema/unknown-key]\n"
        "    alertng:\n"
        "    ^\n")


def test_render_text_caret_under_column():
    path = os.path.join(BAD, "bad_enum.yaml")
    with pytest.raises(SpecError) as info:
        load(path)
    lines = render_text(info.value.problems).splitlines()
    assert lines[0] == (f"{path}:7:13: error: services.api.scheme: 'htp' is not allowed; "
                        "expected 'http' or 'https'; did you mean 'http'? [schema/enum]")
    assert lines[1] == "        scheme: htp"
    assert lines[2] == "    " + " " * 12 + "^"
    assert lines[1][lines[2].index("^")] == "h"  # the caret sits under the value


def test_render_text_warning_and_no_source():
    p = Problem(WARNING, "secrets/missing", "gone", "nowhere.yaml", Position(3, 5))
    assert render_text([p]) == "nowhere.yaml:3:5: warning: gone [secrets/missing]\n"
    q = Problem(ERROR, "spec/read", "cannot read spec", "x.yaml")
    assert render_text([q]) == "x.yaml: error: cannot read spec [spec/read]\n"
    assert render_text([]) == ""
    path = os.path.join(BAD, "bad_enum.yaml")
    r = Problem(ERROR, "c", "m", path, Position(7, 13))
    assert render_text([r], show_source=False) == f"{path}:7:13: error: m [c]\n"


# -- (f) units ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [
    ("80%", 0.8), ("99.9%", 0.999), ("0%", 0.0), (0.8, 0.8), (1, 1.0),
])
def test_parse_ratio(text, value):
    assert U.parse_ratio(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["80 %%", "80", "eighty", True, None, "%"])
def test_parse_ratio_rejects(text):
    assert U.parse_ratio(text) is None


@pytest.mark.parametrize("text,value", [
    ("500ms", 0.5), ("2s", 2), ("5m", 300), ("1h30m", 5400), ("15d", 15 * 86400),
    ("1w", 604800), (0.25, 0.25),
])
def test_parse_seconds(text, value):
    assert U.parse_seconds(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["5 minutes", "0s", "5", "m5", "-1s", False])
def test_parse_seconds_rejects(text):
    assert U.parse_seconds(text) is None


@pytest.mark.parametrize("text,value", [
    ("10GiB", 10737418240), ("500MB", 5e8), ("1KiB", 1024), ("1kB", 1000), ("2 GB", 2e9),
    ("1.5TiB", 1.5 * 2**40), (4096, 4096),
])
def test_parse_size(text, value):
    assert U.parse_size(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["10 gigs", "10G", "GiB", "10gib"])
def test_parse_size_rejects(text):
    assert U.parse_size(text) is None


@pytest.mark.parametrize("text,value", [
    ("1/s", 1.0), ("30/m", 0.5), ("3600/h", 1.0), ("0.5/s", 0.5), (45, 45.0),
])
def test_parse_rate(text, value):
    assert U.parse_rate(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["1/d", "per second", "/s"])
def test_parse_rate_rejects(text):
    assert U.parse_rate(text) is None


def test_parse_any():
    assert U.parse_any("65%") == pytest.approx(0.65)
    assert U.parse_any("2s") == 2
    assert U.parse_any("10GiB") == 10737418240
    assert U.parse_any("1/s") == 1
    assert U.parse_any(45) == 45
    assert U.parse_any("5 apples") is None


@pytest.mark.parametrize("seconds,text", [
    (0.5, "500ms"), (1, "1s"), (90, "1m30s"), (3600, "1h"), (86400, "1d"), (15 * 86400, "15d"),
    (30 * 86400, "30d"), (3723.25, "1h2m3s250ms"), (0, "0s"),
])
def test_format_duration(seconds, text):
    assert U.format_duration(seconds) == text


@pytest.mark.parametrize("text", ["500ms", "1s", "5m", "1h", "2h30m", "15d", "1d12h", "90s", "1w"])
def test_format_duration_round_trips(text):
    seconds = U.duration_seconds(text)
    again = U.format_duration(seconds)
    assert U.duration_seconds(again) == seconds
    assert U.format_duration(U.duration_seconds(again)) == again


def test_is_duration():
    assert U.is_duration("5m")
    assert not U.is_duration("0s")
    assert not U.is_duration("5 m")
    assert not U.is_duration(5)


def test_fmt_number():
    assert U.fmt_number(80.0) == "80"
    assert U.fmt_number(0.8) == "0.8"
    assert U.fmt_number(0.1 + 0.2) == "0.3"


# -- (g) matchers -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,name,op,value,norm", [
    ('severity="critical"', "severity", "=", "critical", 'severity="critical"'),
    ('team=~"ml-.*"', "team", "=~", "ml-.*", 'team=~"ml-.*"'),
    ("a!=b", "a", "!=", "b", 'a!="b"'),
    ('kpi!~"cpu|memory"', "kpi", "!~", "cpu|memory", 'kpi!~"cpu|memory"'),
    (' env = "prod" ', "env", "=", "prod", 'env="prod"'),
    ('msg="say \\"hi\\""', "msg", "=", 'say "hi"', 'msg="say \\"hi\\""'),
    ('empty=""', "empty", "=", "", 'empty=""'),
])
def test_matcher_parse(text, name, op, value, norm):
    m = matchers.parse(text)
    assert (m.name, m.op, m.value) == (name, op, value)
    assert str(m) == norm


@pytest.mark.parametrize("text,fragment", [
    ('severity=="x"', "invalid matcher"),
    ("=x", "invalid matcher"),
    ("severity", "invalid matcher"),
    ('1abc="x"', "invalid matcher"),
    ('team=~"ml-("', "invalid regular expression"),
    ('team!~"[a-"', "invalid regular expression"),
])
def test_matcher_rejects(text, fragment):
    with pytest.raises(ValueError) as info:
        matchers.parse(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


def test_matcher_matches():
    assert matchers.parse('team=~"ml-.*"').matches({"team": "ml-platform"})
    assert not matchers.parse('team=~"ml"').matches({"team": "ml-platform"})  # anchored
    assert matchers.parse("a!=b").matches({})
    assert matchers.parse('a!~"x|y"').matches({"a": "z"})


def test_did_you_mean_offers_typos_and_prefixes_not_lookalikes():
    keys = ["group_interval", "repeat_interval", "resolve_timeout", "time_intervals"]
    # `time_intervals` looks like `repeat_interval` (ratio 0.69) but is no typo of it
    assert schema.did_you_mean("time_intervals", keys[:3]) == ""
    assert schema.did_you_mean("time_interval", keys) == "; did you mean 'time_intervals'?"
    assert schema.did_you_mean("prod", ["staging", "production"]) == \
        "; did you mean 'production'?"


def test_did_you_mean_catches_one_slip_in_a_short_name():
    assert schema.did_you_mean("opz", ["ops", "team"]) == "; did you mean 'ops'?"
    assert schema.did_you_mean("cpu", ["gpu", "disk"]) == "; did you mean 'gpu'?"
    assert schema.did_you_mean("xyz", ["ops", "team"]) == ""
