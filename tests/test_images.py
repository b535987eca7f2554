"""Image references: what the parser accepts and refuses, and the pins report."""

import pytest

from stackgen import images as I


@pytest.mark.parametrize("ref, registry, path, tag", [
    ("prom/prometheus:v3.5.5", None, "prom/prometheus", "v3.5.5"),
    ("registry.local:5000/prom/prometheus:v3.5.5", "registry.local:5000", "prom/prometheus",
     "v3.5.5"),
    ("localhost:5000/grafana:12.4.5", "localhost:5000", "grafana", "12.4.5"),
    ("ghcr.io/google/cadvisor:v0.60.5", "ghcr.io", "google/cadvisor", "v0.60.5"),
    ("prom/node-exporter@sha256:" + "a" * 64, None, "prom/node-exporter", None),
    ("prom/node-exporter:latest@sha256:" + "a" * 64, None, "prom/node-exporter", "latest"),
])
def test_parse_accepts(ref, registry, path, tag):
    r = I.parse(ref)
    assert (r.registry, r.path, r.tag) == (registry, path, tag)


@pytest.mark.parametrize("ref, why", [
    ("prom/prometheus", "has no tag"),
    ("registry.local:5000/prom/prometheus", "has no tag"),
    ("prom/prometheus:latest", "moving tag 'latest'"),
    ("Prom/Prometheus:v1", "malformed repository"),
    ("prom/prometheus:v1 ", "spaces"),
    ("prom/prometheus@sha256:abc", "malformed digest"),
    ("prom/prometheus:v1:v2", "malformed"),
])
def test_parse_refuses(ref, why):
    with pytest.raises(I.ImageError, match=why):
        I.parse(ref)


def test_default_pins_parse_and_are_current():
    rows = I.report(dict(I.DEFAULT_IMAGES))
    assert {r[0] for r in rows} == set(I.DEFAULT_IMAGES)
    assert all(status == "current" for _, _, _, status, _ in rows), rows


def test_report_marks_an_old_pin_behind():
    rows = {r[0]: r for r in I.report({**I.DEFAULT_IMAGES,
                                       "prometheus": "prom/prometheus:v3.5.0",
                                       "grafana": "mirror.example/grafana:1.0"})}
    assert rows["prometheus"][3] == "behind"
    assert rows["grafana"][3] == "other"
    assert rows["alertmanager"][3] == "current"


def test_images_command_shows_a_spec_pin_behind(tmp_path):
    from click.testing import CliRunner

    from stackgen.cli import main

    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "hook").write_text("x\n")
    spec = tmp_path / "stack.yaml"
    spec.write_text("version: 1\nstack:\n  name: old\n  images: {prometheus: "
                    "'registry.local:5000/prom/prometheus:v3.5.0'}\nalerting:\n"
                    "  default_receiver: ops\n  receivers: {ops: {webhook: {url_file: "
                    "secrets/hook}}}\n")
    res = CliRunner().invoke(main, ["images", str(spec)])
    assert res.exit_code == 0, res.output
    rows = {ln.split()[0]: ln.split() for ln in res.output.splitlines()[1:6]}
    assert rows["prometheus"][1:4] == ["registry.local:5000/prom/prometheus:v3.5.0", "v3.5.5",
                                       "behind"]
    assert rows["alertmanager"][3] == "current"
