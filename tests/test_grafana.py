"""Grafana dashboards and provisioning: modern schema, valid queries, alert links that land."""

import dataclasses
import glob
import json
import os
import re
from urllib.parse import parse_qs, urlparse

import promql_parser
import pytest
import yaml

from conftest import ROOT, SPEC
from stackgen import layout
from stackgen.generators import grafana_dashboards, grafana_provisioning, prometheus_rules, \
    slo_rules
from stackgen.model import Threshold
from stackgen.runtime.smoke_checks import substitute  # Grafana variables as smoke fills them
from stackgen.spec import load

PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "heatmap", "barchart", "alertlist"}
# Panels query the datasource variable's choice; its default is the provisioned uid.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Series a dashboard may read although no rule records them.
BUILTIN_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}
SPECS = [SPEC] + sorted(glob.glob(os.path.join(ROOT, "tests", "specs", "good", "*.yaml")))


def load_with_dashboards(spec: str):
    """The spec's model with both kinds of dashboard on, so none of it goes unchecked."""
    m, _ = load(spec)
    return dataclasses.replace(m, dashboards_overview=True, dashboards_per_group=True)


@pytest.fixture(scope="module")
def model():
    m, _ = load(SPEC)
    return m


def boards(model) -> dict:
    """uid -> dashboard dict, checking each file's name against its uid."""
    out = {}
    for artifact in grafana_dashboards.generate(model):
        board = json.loads(artifact.content)
        assert artifact.path == f"grafana/dashboards/{board['uid']}.json"
        out[board["uid"]] = board
    return out


def panels(board: dict) -> list:
    """Every panel, including those nested in collapsed rows."""
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def linked_panel(url: str) -> tuple:
    """(uid, viewPanel id or None) of a Grafana dashboard URL."""
    parsed = urlparse(url)
    parts = parsed.path.split("/")
    assert parts[1] == "d", url
    view = parse_qs(parsed.query).get("viewPanel")
    return parts[2], int(view[0]) if view else None


def assert_lands(boards_: dict, url: str):
    uid, panel_id = linked_panel(url)
    assert uid in boards_, f"{url}: no dashboard {uid}"
    if panel_id is not None:
        ids = {p["id"] for p in panels(boards_[uid])}
        assert panel_id in ids, f"{url}: no panel {panel_id} in {uid}"


def rules(model) -> list:
    """Every rule of every rule file, as generated."""
    return [rule for _, data in prometheus_rules.rule_files(model)
            for group in data["groups"] for rule in group["rules"]]


def recorded(model) -> set:
    return {rule["record"] for rule in rules(model) if "record" in rule}


def metric_names(expr: str) -> set:
    """The metric names a PromQL expression reads (also those given as {__name__="..."})."""
    names = set()

    def walk(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    names.add(m.value)
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            if node.param is not None:
                walk(node.param)
        elif isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr,
                               promql_parser.SubqueryExpr)):
            walk(node.expr)

    walk(promql_parser.parse(substitute(expr)))
    return names


def test_metric_names_walk():
    assert metric_names('1 - sum by (le) (rate(a_bucket{x="$instance"}[5m])) / on () '
                        'group_left max_over_time(b[1h:5m]) or -(c) or {__name__="d"}') == \
        {"a_bucket", "b", "c", "d"}


def test_dashboards_are_modern(model):
    all_ = boards(model)
    assert len(all_) == 1 + len(model.groups) + 2  # and the containers and stack dashboards
    for uid, board in all_.items():
        assert board["schemaVersion"] == 41
        assert "rows" not in board and board.get("id") is None
        assert len(uid) <= layout.UID_MAX
        assert board["editable"] is False and board["graphTooltip"] == 1
        assert board["tags"][:2] == ["stackgen", model.stack.name]
        first, *variables = board["templating"]["list"]
        assert (first["name"], first["type"], first["query"]) == \
            ("datasource", "datasource", "prometheus")
        assert first["current"]["value"] == grafana_provisioning.DATASOURCE_UID
        for variable in variables:
            assert variable["datasource"] == DATASOURCE


def test_panels_are_valid(model):
    for uid, board in boards(model).items():
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids"
        for panel in panels(board):
            where = f"{uid} panel {panel['id']}"
            assert panel["type"] in PANEL_TYPES | {"row"}, where
            assert panel["datasource"] == DATASOURCE, where
            if panel["type"] in ("row", "alertlist"):
                continue
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults["unit"], where
            steps = defaults["thresholds"]["steps"]
            assert steps[0]["value"] is None, where
            values = [s["value"] for s in steps[1:]]
            assert values == sorted(values), where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, where
                promql_parser.parse(substitute(target["expr"]))


def test_no_legacy_panels_anywhere(model):
    for artifact in grafana_dashboards.generate(model):
        text = artifact.content
        assert '"graph"' not in text and '"singlestat"' not in text
        assert '"rows"' not in text


def test_kpi_panels_match_the_model(model):
    all_ = boards(model)
    for group in model.groups:
        board = all_[layout.group_uid(model, group)]
        by_id = {p["id"]: p for p in panels(board)}
        for i, kpi in enumerate(group.kpis):
            panel = by_id[layout.kpi_panel_id(i)]
            assert panel["fieldConfig"]["defaults"]["unit"] == kpi.unit
            assert kpi.record in panel["targets"][0]["expr"]
            if kpi.unit == "percentunit":
                assert (panel["fieldConfig"]["defaults"]["min"],
                        panel["fieldConfig"]["defaults"]["max"]) == (0, 1)
            if kpi.heatmap_expr:
                heatmap = by_id[layout.companion_panel_id(i)]
                assert heatmap["type"] == "heatmap"
                assert heatmap["targets"][0]["format"] == "heatmap"
                assert heatmap["options"]["yAxis"]["unit"] == "s"
        names = [v["name"] for v in board["templating"]["list"]]
        assert names == ["datasource", "instance"]


def test_every_rule_dashboard_url_lands(model):
    """Every alert of every rule file (KPI, SLO, TargetDown, ...) that links a dashboard links
    one that is generated, at a panel that exists; also with the overview alone."""
    for m in (model, dataclasses.replace(model, dashboards_per_group=False)):
        all_ = boards(m)
        urls = [r["annotations"]["dashboard_url"] for r in rules(m)
                if "dashboard_url" in r.get("annotations", {})]
        assert urls
        for url in urls:
            assert url.startswith(m.stack.grafana_url + "/d/"), url
            assert_lands(all_, url)
    none = dataclasses.replace(model, dashboards_per_group=False, dashboards_overview=False)
    assert not [r for r in rules(none) if "dashboard_url" in r.get("annotations", {})]


def test_slo_alerts_open_their_burn_rate_panel(model):
    all_ = boards(model)
    alerts = [r for r in rules(model) if r.get("alert") == slo_rules.ALERT]
    assert alerts
    for group in model.groups:
        board = all_[layout.group_uid(model, group)]
        by_id = {p["id"]: p for p in panels(board)}
        for i, slo in enumerate(group.slos):
            sloth_id = slo_rules.sloth_id(group, slo)
            mine = [a for a in alerts if a["labels"]["sloth_id"] == sloth_id]
            assert {a["labels"]["sloth_severity"] for a in mine} == {"page", "ticket"}
            for alert in mine:
                uid, panel_id = linked_panel(alert["annotations"]["dashboard_url"])
                assert (uid, panel_id) == (board["uid"], layout.slo_panel_id(i, "burn_rate"))
                exprs = [t["expr"] for t in by_id[panel_id]["targets"]]
                assert all(f'sloth_id="{sloth_id}"' in e for e in exprs)
                assert "slo:current_burn_rate:ratio" in exprs[0]


@pytest.mark.parametrize("spec", [s for s in SPECS if any(g.slos for g in load(s)[0].groups)],
                         ids=os.path.basename)
def test_slo_panels_match_the_model(spec):
    model = load_with_dashboards(spec)
    all_ = boards(model)
    for group in model.groups:
        board = all_[layout.group_uid(model, group)]
        by_id = {p["id"]: p for p in panels(board)}
        rows = [p for p in board["panels"] if p["type"] == "row"
                and p["id"] < layout.DETAIL_BASE]  # the exporters' sections have rows too
        assert [r["id"] for r in rows] == [layout.slo_row_id(i) for i in range(len(group.slos))]
        for i, slo in enumerate(group.slos):
            sel = f'{{sloth_id="{slo_rules.sloth_id(group, slo)}"}}'
            got = {name: by_id[layout.slo_panel_id(i, name)] for name in layout.SLO_PANELS}
            assert [p["type"] for p in got.values()] == ["stat", "stat", "gauge", "timeseries"]
            for panel in got.values():
                assert slo.objective_text in panel["title"] and slo.window in panel["title"]
            # Each SLO's row header comes right before its four panels, on one line.
            order = [p["id"] for p in board["panels"]]
            start = order.index(layout.slo_row_id(i))
            assert order[start + 1:start + 5] == [p["id"] for p in got.values()]
            assert len({p["gridPos"]["y"] for p in got.values()}) == 1
            assert sum(p["gridPos"]["w"] for p in got.values()) == 24

            objective = got["objective"]
            assert objective["targets"][0]["expr"] == f"slo:objective:ratio{sel}"
            assert objective["fieldConfig"]["defaults"]["unit"] == "percentunit"
            # the objective reads as written (99.95%, not 99.950%; 99.9% as 99.90%)
            d = objective["fieldConfig"]["defaults"]["decimals"]
            shown = f"{slo.objective * 100:.{d}f}"
            assert float(shown) == round(slo.objective * 100, 9), (shown, slo.objective)
            assert d == 2 or not shown.endswith("0"), shown

            sli = got["sli"]
            assert sli["targets"][0]["expr"] == f"1 - slo:sli_error:ratio_rate{slo.period}{sel}"
            defaults = sli["fieldConfig"]["defaults"]
            assert defaults["unit"] == "percentunit"
            assert defaults["thresholds"]["steps"] == [
                {"color": "red", "value": None}, {"color": "green", "value": slo.objective}]

            budget = got["budget_remaining"]
            assert budget["targets"][0]["expr"] == \
                f"slo:period_error_budget_remaining:ratio{sel}"
            assert budget["targets"][0]["instant"] is True
            defaults = budget["fieldConfig"]["defaults"]
            assert (defaults["unit"], defaults["min"], defaults["max"]) == ("percentunit", 0, 1)
            assert [(s["color"], s["value"]) for s in defaults["thresholds"]["steps"]] == \
                [("red", None), ("orange", 0), ("green", 0.25)]

            burn = got["burn_rate"]
            assert [t["expr"] for t in burn["targets"]] == [
                f"slo:current_burn_rate:ratio{sel}", f"slo:period_burn_rate:ratio{sel}"]
            assert [t["refId"] for t in burn["targets"]] == ["A", "B"]
            assert all(t["legendFormat"] for t in burn["targets"])
            assert burn["options"]["legend"]["showLegend"] is True
            steps = burn["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert {s["value"] for s in steps[1:]} == {t.factor for t in slo_rules.tiers(slo)}
            page = {t.factor for t in slo_rules.tiers(slo) if t.severity == "page"}
            for step in steps[1:]:
                assert step["color"] == ("red" if step["value"] in page else "orange")
            assert burn["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == \
                "dashed"


def test_slo_panel_ids_stay_apart():
    ids = [layout.slo_panel_id(i, name) for i in range(3) for name in layout.SLO_PANELS] + \
        [layout.slo_row_id(i) for i in range(3)]
    assert len(ids) == len(set(ids))
    assert min(ids) >= layout.SLO_BASE > layout.companion_panel_id(0)
    assert max(ids) < layout.OVERVIEW_BASE
    assert layout.overview_row_id(0) < layout.OVERVIEW_BASE


@pytest.mark.parametrize("spec", SPECS, ids=os.path.basename)
def test_panels_read_only_recorded_series(spec):
    """KPI panels read what the rules record (or Prometheus' own series), never raw metrics:
    a renamed metric then breaks a rule test, not a dashboard silently. The one exception is
    the response-time heatmap, which reads its KPI's histogram buckets. (The exporters' own
    panels read raw series: tests/test_dashboard_depth.py checks the demo serves them.)"""
    m = load_with_dashboards(spec)
    known = recorded(m) | BUILTIN_SERIES
    buckets = {}
    for group in m.groups:
        for i, kpi in enumerate(group.kpis):
            if kpi.heatmap_expr:
                buckets[(layout.group_uid(m, group), layout.companion_panel_id(i))] = \
                    {f"{s.metric}_bucket" for s in kpi.inputs if s.kind == "histogram"}
    for board in grafana_dashboards.dashboards(m):
        if board["uid"] in (layout.containers_uid(m), layout.stack_uid(m)):
            continue
        for panel in panels(board):
            if panel["id"] in range(layout.DETAIL_BASE, layout.OVERVIEW_BASE):
                continue
            for target in panel.get("targets", []):
                allowed = known | buckets.get((board["uid"], panel["id"]), set())
                names = metric_names(target["expr"])
                assert names, target["expr"]
                assert names <= allowed, \
                    f"{board['uid']} panel {panel['id']}: {sorted(names - allowed)} not recorded"
        for variable in board["templating"]["list"][1:]:  # after the datasource variable
            selector = re.fullmatch(r"label_values\((.*), \w+\)", variable["definition"])
            assert selector, variable["definition"]
            assert metric_names(selector.group(1)) <= known, variable["definition"]


def test_every_alert_link_lands_on_a_panel(model):
    all_ = boards(model)
    for group in model.groups:
        assert_lands(all_, layout.group_url(model, group))
        for i in range(len(group.kpis)):
            url = layout.kpi_url(model, group, i)
            assert linked_panel(url)[0] == layout.group_uid(model, group)
            assert_lands(all_, url)


def test_overview_only_links_land(model):
    only = dataclasses.replace(model, dashboards_per_group=False)
    all_ = boards(only)
    assert list(all_) == [layout.overview_uid(only)]
    for group in only.groups:
        for i in range(len(group.kpis)):
            url = layout.kpi_url(only, group, i)
            assert linked_panel(url)[0] == layout.overview_uid(only)
            assert_lands(all_, url)
    assert all(not b["links"] for b in all_.values())


def test_no_dashboards_wanted(model):
    none = dataclasses.replace(model, dashboards_per_group=False, dashboards_overview=False)
    assert grafana_dashboards.generate(none) == []


def test_group_dashboards_link_to_the_overview(model):
    overview = f"/d/{layout.overview_uid(model)}/{layout.slug(layout.overview_title(model))}"
    for uid, board in boards(model).items():
        urls = [link["url"] for link in board["links"] if link["type"] == "link"]
        assert (overview in urls) == (uid != layout.overview_uid(model))
    alone = dataclasses.replace(model, dashboards_overview=False)
    for board in boards(alone).values():
        assert board["links"][-1]["type"] == "dashboards"
        assert overview not in [link["url"] for link in board["links"]]


def test_deterministic(model):
    first = [(a.path, a.data) for a in grafana_dashboards.generate(model)]
    assert first == [(a.path, a.data) for a in grafana_dashboards.generate(model)]
    first = [(a.path, a.data) for a in grafana_provisioning.generate(model)]
    assert first == [(a.path, a.data) for a in grafana_provisioning.generate(model)]


def th(severity, below, value):
    return Threshold(severity, below, value, str(value))


@pytest.mark.parametrize("thresholds, expected", [
    ((), [("green", None)]),
    ((th("warning", False, 0.8), th("critical", False, 0.95)),
     [("green", None), ("orange", 0.8), ("red", 0.95)]),
    ((th("critical", False, 0.1),), [("green", None), ("red", 0.1)]),
    ((th("warning", True, 10), th("critical", True, 5)),
     [("red", None), ("orange", 5), ("green", 10)]),
    ((th("warning", True, 1.0),), [("orange", None), ("green", 1.0)]),
    ((th("critical", True, 0.8),), [("red", None), ("green", 0.8)]),
])
def test_threshold_steps(thresholds, expected):
    steps = grafana_dashboards.threshold_steps(thresholds)
    assert [(s["color"], s["value"]) for s in steps] == expected


def test_threshold_description(model):
    granite = next(g for g in model.groups if g.name == "granite-llm")
    kpi = next(k for k in granite.kpis if k.kind == "response_time")
    assert grafana_dashboards.describe(kpi).startswith("warning > 500ms, critical > 2s; for 2m")


def test_provisioning(model):
    files = {a.path: a.content for a in grafana_provisioning.generate(model)}
    for content in files.values():
        assert content.startswith("# Generated by stackgen")
    sources = yaml.safe_load(files["grafana/provisioning/datasources/prometheus.yml"])
    assert sources["apiVersion"] == 1
    by_uid = {d["uid"]: d for d in sources["datasources"]}
    prometheus = by_uid[grafana_provisioning.DATASOURCE_UID]
    assert prometheus["type"] == "prometheus" and prometheus["isDefault"] is True
    assert prometheus["jsonData"] == {"timeInterval": model.stack.scrape_interval}
    assert by_uid["alertmanager"]["type"] == "alertmanager"
    providers = yaml.safe_load(files["grafana/provisioning/dashboards/stackgen.yml"])["providers"]
    assert [p["folder"] for p in providers] == [model.stack.name]
    assert providers[0]["options"]["path"] == grafana_provisioning.DASHBOARDS_MOUNT
