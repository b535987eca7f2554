"""Grafana dashboards and provisioning: modern schema, valid queries, alert links that land."""

import dataclasses
import json
from urllib.parse import parse_qs, urlparse

import promql_parser
import pytest
import yaml

from conftest import SPEC
from stackgen import layout
from stackgen.generators import grafana_dashboards, grafana_provisioning
from stackgen.model import Threshold
from stackgen.spec import load

PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "heatmap", "barchart"}
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


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


def test_dashboards_are_modern(model):
    all_ = boards(model)
    assert len(all_) == 1 + len(model.groups)
    for uid, board in all_.items():
        assert board["schemaVersion"] == 41
        assert "rows" not in board and board.get("id") is None
        assert len(uid) <= layout.UID_MAX
        assert board["editable"] is False and board["graphTooltip"] == 1
        assert board["tags"][:2] == ["stackgen", model.stack.name]
        for variable in board["templating"]["list"]:
            assert variable["datasource"] == DATASOURCE


def test_panels_are_valid(model):
    for uid, board in boards(model).items():
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids"
        for panel in panels(board):
            where = f"{uid} panel {panel['id']}"
            assert panel["type"] in PANEL_TYPES | {"row"}, where
            assert panel["datasource"] == DATASOURCE, where
            if panel["type"] == "row":
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
                promql_parser.parse(target["expr"].replace("$instance", ".*"))


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
        assert names == (["instance"] if group.kind in ("hosts", "gpus") else [])


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
    overview = layout.dashboard_url(model, layout.overview_uid(model),
                                    layout.overview_title(model))
    for uid, board in boards(model).items():
        urls = [link["url"] for link in board["links"] if link["type"] == "link"]
        assert urls == ([] if uid == layout.overview_uid(model) else [overview])
    alone = dataclasses.replace(model, dashboards_overview=False)
    for board in boards(alone).values():
        assert [link["type"] for link in board["links"]] == ["dashboards"]


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
