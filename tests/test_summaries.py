"""Summaries, `filter:` and custom KPIs that read well (issue 12, items 2 and 4).

tests/specs/good/summaries.yaml uses all of it; tests/test_tools.py builds it and runs its
generated promtool tests (they pass). Here: what it generates, and that those promtool tests
fail when a rule loses its filter, reads the summary another way or renames the alert.
Bad specs (errors at their line): tests/specs/bad/response_time_summary, kpi_filter,
custom_alerts, custom_alert_name.
"""

import json
import os

import pytest
import yaml

from conftest import ROOT, need_tool
from stackgen import build, check
from stackgen.build import compile_spec
from stackgen.runtime.sim import Sim
from stackgen.spec import load

SPEC = os.path.join(ROOT, "tests", "specs", "good", "summaries.yaml")
HEALTH = 'uri!="/actuator/health"'


@pytest.fixture(scope="module")
def model():
    return load(SPEC)[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("summaries")
    return {a.path: a.content for a in compile_spec(SPEC, str(out))[1]}


def kpis(model, group):
    return {k.name: k for g in model.groups if g.name == group for k in g.kpis}


def rules(files, name) -> list:
    data = yaml.safe_load(files[f"prometheus/rules/{name}"])
    return [r for g in data["groups"] for r in g["rules"]]


def sli_exprs(files, name) -> list:
    """The SLI error ratios over each window that read the input series (not recordings)."""
    return [r["expr"] for r in rules(files, name)
            if r.get("record", "").startswith("slo:sli_error:ratio_rate") and "rate(" in r["expr"]]


def test_a_summary_reads_the_worst_quantile_series_of_the_service(model):
    rt = kpis(model, "checkout")["response_time"]
    assert rt.expr == ('max(http_server_requests_seconds{job="checkout",quantile=~"0\\\\.990*",'
                       f'{HEALTH}}})')
    assert (rt.record, rt.title, rt.unit, rt.quantile) == (
        "service:http_server_requests_seconds:p99", "p99 response time", "s", 0.99)
    assert rt.inputs[0].kind == "summary" and rt.heatmap_expr is None


def test_filter_narrows_every_series_a_kpi_and_its_slo_read(model, files):
    checkout = {r.get("record"): r["expr"] for r in rules(files, "services-checkout.yml")}
    assert HEALTH in checkout["service:http_server_requests_seconds_count:rate5m"]
    ratio = checkout["service:http_server_requests_seconds_count:error_ratio_rate5m"]
    assert ratio.count(f'{HEALTH},method!="OPTIONS"') == 2  # errors and all requests
    slo = sli_exprs(files, "slo-checkout.yml")
    assert slo and all(e.count(HEALTH) == 2 for e in slo)
    latency = sli_exprs(files, "slo-storefront.yml")
    assert latency and all(e.count('route=~"/(cart|checkout).*"') == 2 for e in latency)
    heatmap = [p for p in json.loads(files["grafana/dashboards/summaries-services-storefront.json"])
               ["panels"] if p["type"] == "heatmap"]
    assert len(heatmap) == 1 and 'route=~\\"/(cart|checkout).*\\"' in json.dumps(
        heatmap[0]["targets"])


def test_filtered_kpis_tests_feed_series_the_filter_leaves_out(files):
    """Beside the series that pass the filter run series it refuses, past every threshold."""
    data = yaml.safe_load(files["prometheus/tests/services-checkout.test.yml"])
    series = [s["series"] for t in data["tests"] for s in t["input_series"]]
    assert any('uri="/actuator/health"' in s for s in series)
    assert any('uri="/actuator/health"' not in s and "uri=" in s for s in series)
    slo = yaml.safe_load(files["prometheus/tests/slo-checkout.test.yml"])
    assert any('uri="/actuator/health"' in s["series"] for t in slo["tests"]
               for s in t["input_series"])


def test_a_summary_gets_a_quantile_panel_and_no_heatmap(files):
    checkout = json.loads(files["grafana/dashboards/summaries-services-checkout.json"])
    types = {p["title"]: p["type"] for p in checkout["panels"]}
    assert types["p99 response time"] == "timeseries"
    assert "heatmap" not in types.values()


def test_the_demo_serves_the_summary_with_labels_that_pass_the_filter(model):
    sim = Sim(model)
    samples = [s for s in sim.samples("checkout", 0)
               if s.name.startswith("http_server_requests_seconds")]
    quantiles = {s.labels.get("quantile") for s in samples
                 if s.name == "http_server_requests_seconds"}
    assert quantiles == {"0.5", "0.99"}
    assert {s.name for s in samples} == {"http_server_requests_seconds",
                                         "http_server_requests_seconds_sum",
                                         "http_server_requests_seconds_count"}
    # its _count is the request counter the error ratio reads, split by status
    assert {s.labels.get("status") for s in samples
            if s.name == "http_server_requests_seconds_count"} == {"500", "404"}
    assert all(s.labels.get("uri") != "/actuator/health" and s.labels.get("method") != "OPTIONS"
               for s in samples)


def test_custom_kpis_read_well(model, files):
    down = kpis(model, "postgres")["pg_down"]
    assert down.title == "pg_down"
    alerts = {r["alert"]: r for r in rules(files, "services-postgres.yml") if "alert" in r}
    assert set(alerts) == {"PostgresDown", "PostgresConnectionsHigh"}
    ann = alerts["PostgresDown"]["annotations"]
    assert ann["summary"] == "Postgres is down on {{ $labels.service }}"
    assert ann["runbook_url"] == "https://runbooks.example.com/postgres-down"
    assert alerts["PostgresConnectionsHigh"]["annotations"]["runbook_url"] == \
        "https://runbooks.example.com/postgres"  # the service's, by default
    panels = {p["title"]: p for p in json.loads(
        files["grafana/dashboards/summaries-services-postgres.json"])["panels"]}
    assert "pg_down" in panels and "Postgres does not answer the exporter" in \
        panels["pg_down"]["description"]
    tests = yaml.safe_load(files["prometheus/tests/services-postgres.test.yml"])
    expected = [e["exp_annotations"]["summary"] for t in tests["tests"]
                for c in t["alert_rule_test"] for e in c["exp_alerts"]]
    assert "Postgres is down on postgres" in expected
    assert any(s.startswith("Postgres uses ") and s.endswith("% of its connections")
               for s in expected)


# -- the generated promtool tests fail when the rules drift (one promtool pass) ----------------
MUTATIONS = [  # (rule file, old, new, the alert whose test must fail)
    ("services-checkout.yml", f'quantile=~"0\\\\.990*",{HEALTH}', 'quantile=~"0\\\\.990*"',
     "ResponseTimeHigh"),
    ("services-checkout.yml", f'rate(http_server_requests_seconds_count{{job="checkout",{HEALTH}}}',
     'rate(http_server_requests_seconds_count{job="checkout"}', "ThroughputLow"),
    ("services-checkout.yml", f'status=~"5..",{HEALTH},method!="OPTIONS"', 'status=~"5.."',
     "ErrorRateHigh"),
    ("slo-checkout.yml", f'status=~"5..",{HEALTH}', 'status=~"5.."', "ErrorBudgetBurn"),
    ("slo-storefront.yml", 'le=~"0\\\\.250*",route=~"/(cart|checkout).*"', 'le=~"0\\\\.250*"',
     "ErrorBudgetBurn"),
    ("services-storefront.yml", ',route=~"/(cart|checkout).*"}', "}", "ResponseTimeHigh"),
    ("services-postgres.yml", "summary: Postgres is down on", "summary: Postgres down on",
     "PostgresDown"),
]


def test_generated_tests_fail_when_a_rule_drops_its_filter_or_summary(tmp_path):
    need_tool(check.find_promtool, "promtool", check.INSTALL["promtool"])
    out = tmp_path / "out"
    assert not build.build(SPEC, str(out), create_secrets=False).failed
    for name, old, new, _ in MUTATIONS:
        path = out / "prometheus" / "rules" / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new, 1))
    failed = {s.name: s.output for s in check.test_rules(str(out)) if not s.ok}
    for name, _, _, alert in MUTATIONS:
        step = f"promtool test rules {name.replace('.yml', '.test.yml')}"
        assert step in failed, (step, list(failed))
        assert f"alertname: {alert}" in failed[step] or f"alert {alert}:" in failed[step], \
            (name, alert, failed[step][:2000])
