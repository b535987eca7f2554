"""Dashboards at expert depth (issue 13, item 2): the exporters' panels (USE for hosts, DCGM
for GPUs, cAdvisor's containers, the stack's own health), RED per instance for services,
and on every dashboard a datasource variable, alert annotations and relative links. Every
series a new panel reads is one the demo exporter serves (`stackgen smoke` then proves each
query returns data from a live Prometheus)."""

import dataclasses
import glob
import os
import subprocess
import time
import urllib.request

import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import REFERENCE, ROOT, SPEC
from stackgen import layout
from stackgen.generators import grafana_dashboards, prometheus_config
from stackgen.kpis import exporters
from stackgen.kpis.exporters import cadvisor
from stackgen.model import GPUS, HOSTS
from stackgen.runtime import procs
from stackgen.runtime.sim import Sim
from stackgen.runtime.smoke_checks import substitute
from stackgen.runtime.stack_demo import CadvisorDemo
from stackgen.spec import load
from test_grafana import metric_names, panels

# Prometheus' and Alertmanager's own series the stack dashboard reads (Prometheus 2.42,
# Alertmanager 0.25 serve them; smoke queries them live).
STACK_METRICS = {"up", "prometheus_sd_discovered_targets",
                 "prometheus_rule_evaluation_failures_total",
                 "prometheus_rule_group_last_duration_seconds", "prometheus_tsdb_head_series",
                 "prometheus_tsdb_storage_blocks_bytes", "alertmanager_notifications_total",
                 "alertmanager_notifications_failed_total"}
SPECS = [SPEC] + sorted(glob.glob(os.path.join(ROOT, "tests", "specs", "good", "*.yaml")))


@pytest.fixture(scope="module")
def model():
    m, _ = load(REFERENCE)
    return m


@pytest.fixture(scope="module")
def boards(model) -> dict:
    return {b["uid"]: b for b in grafana_dashboards.dashboards(model)}


def titles(board: dict) -> set:
    return {p["title"] for p in panels(board)}


def exprs(board: dict, ids=None) -> list:
    return [t["expr"] for p in panels(board) if ids is None or p["id"] in ids
            for t in p.get("targets", [])]


def expert_ids(board: dict) -> set:
    return {p["id"] for p in panels(board)
            if layout.DETAIL_BASE <= p["id"] < layout.OVERVIEW_BASE}


def group_board(model, boards, kind):
    group = next(g for g in model.groups if g.kind == kind)
    return group, boards[layout.group_uid(model, group)]


def test_host_dashboard_by_the_use_method(model, boards):
    group, board = group_board(model, boards, HOSTS)
    assert {"CPU by mode", "Load per core", "Memory used and total", "Swap used", "Major page faults",
            "Disk I/O utilisation", "Disk latency", "Disk throughput", "Filesystem space used",
            "Inodes used", "Network traffic", "Network errors and drops"} <= titles(board)
    read = set().union(*map(metric_names, exprs(board, expert_ids(board))))
    assert {"node_cpu_seconds_total", "node_load1", "node_memory_SwapTotal_bytes",
            "node_disk_io_time_seconds_total", "node_disk_read_time_seconds_total",
            "node_disk_reads_completed_total", "node_filesystem_files",
            "node_filesystem_files_free", "node_network_receive_bytes_total",
            "node_network_receive_errs_total"} <= read
    for expr in exprs(board, expert_ids(board)):
        assert f'job="{group.job}"' in expr and 'instance=~"$instance"' in expr, expr
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["CPU", "Memory", "Disk I/O", "Filesystems", "Network"]


def test_gpu_dashboard(model, boards):
    group, board = group_board(model, boards, GPUS)
    assert {"GPU utilisation", "Framebuffer memory", "GPU temperature", "Power draw",
            "SM clock", "Last XID error"} <= titles(board)
    assert len(titles(board)) == len(panels(board))  # no panel repeats a KPI's
    read = set().union(*map(metric_names, exprs(board, expert_ids(board))))
    assert {"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED",
            "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_XID_ERRORS"} == read
    # without the utilisation and temperature KPIs, the DCGM section shows both itself
    bare = dataclasses.replace(group, kpis=tuple(
        k for k in group.kpis if k.kind not in ("gpu_utilization", "gpu_temperature")))
    bare_board = grafana_dashboards.group_dashboard(model, bare)
    read = set().union(*map(metric_names, exprs(bare_board, expert_ids(bare_board))))
    assert {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_TEMP"} <= read


def test_containers_and_stack_dashboards(model, boards):
    containers = boards[layout.containers_uid(model)]
    assert titles(containers) == {"Containers", "CPU per container", "Memory per container",
                                  "Memory against limit", "Restarts", "OOM kills"}
    for expr in exprs(containers):
        assert 'name!=""' in expr and "by (name)" in expr, expr
    stack = boards[layout.stack_uid(model)]
    assert {"Targets up", "Rule evaluation failures", "Rule group evaluation time",
            "Head series", "Storage", "Notifications sent", "Notifications failed"} <= \
        titles(stack)
    assert set().union(*map(metric_names, exprs(stack))) == STACK_METRICS
    # both dashboards only where the group dashboards are
    assert layout.stack_uid(model) not in {
        b["uid"] for b in grafana_dashboards.dashboards(
            dataclasses.replace(model, dashboards_per_group=False))}


def test_service_dashboards_show_red_per_instance(model, boards):
    for group in (g for g in model.groups if g.kind == "services"):
        board = boards[layout.group_uid(model, group)]
        variable = board["templating"]["list"][1]
        assert variable["definition"] == f'label_values(up{{job="{group.job}"}}, instance)'
        kinds = {k.kind: i for i, k in enumerate(group.kpis)}
        by_id = {p["id"]: p for p in panels(board)}
        for kind in ("throughput", "error_rate", "response_time"):
            if kind not in kinds:
                continue
            panel = by_id[layout.kpi_detail_panel_id(kinds[kind])]
            expr = panel["targets"][0]["expr"]
            assert 'instance=~"$instance"' in expr and "by (instance" in expr, expr
            assert panel["targets"][0]["legendFormat"] == "{{instance}}"
        order = [p["id"] for p in board["panels"]]
        red = [layout.kpi_detail_panel_id(kinds[k])
               for k in ("throughput", "error_rate", "response_time") if k in kinds]
        start = order.index(layout.KPI_DETAIL_ROW)  # a row header, then rate, errors, duration
        assert order[start + 1:start + 1 + len(red)] == red


def test_every_dashboard_has_a_datasource_variable_annotations_and_relative_links(model,
                                                                                   boards):
    assert set(boards) == {layout.overview_uid(model), layout.containers_uid(model),
                           layout.stack_uid(model)} | \
        {layout.group_uid(model, g) for g in model.groups}
    for uid, board in boards.items():
        variable = board["templating"]["list"][0]
        assert (variable["name"], variable["type"]) == ("datasource", "datasource")
        builtin, alerts = board["annotations"]["list"]
        assert builtin["builtIn"] == 1 and builtin["name"] == "Annotations & Alerts"
        assert alerts["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert metric_names(alerts["expr"]) == {"ALERTS"}
        links = [link for link in board["links"] if link["type"] == "link"]
        own = uid in (layout.overview_uid(model), layout.containers_uid(model),
                      layout.stack_uid(model))
        assert len(links) == 3 - own, uid  # overview, containers, stack but itself
        for link in links:
            assert link["url"].startswith("/d/") and link["keepTime"] and link["includeVars"]
            assert link["url"].split("/")[2] in boards, link
            assert link["url"].split("/")[2] != uid
        assert board["links"][-1]["type"] == "dashboards"
        assert board["links"][-1]["includeVars"] is False  # a host's instance is no GPU's
    group = model.groups[0]
    annotation = boards[layout.group_uid(model, group)]["annotations"]["list"][1]["expr"]
    assert f'{group.group_label}="{group.name}"' in annotation


def test_overview_opens_with_the_alert_list(model, boards):
    first = boards[layout.overview_uid(model)]["panels"][0]
    assert (first["type"], first["id"]) == ("alertlist", layout.ALERT_LIST_ID)
    assert first["options"]["stateFilter"]["firing"] is True
    for panel in panels(boards[layout.overview_uid(model)])[1:]:
        for link in panel.get("links", []):
            assert link["url"].startswith("/d/"), link


def test_new_panels_keep_clear_of_the_ids_alerts_link(model, boards):
    """Alerts open KPI, companion and SLO panels by id (viewPanel=): the new panels use
    their own ranges, and every panel query parses."""
    assert layout.slo_row_id(29) < layout.DETAIL_BASE
    slots = [p.slot for kind in (HOSTS, GPUS) for p in exporters.group_panels(kind, "")]
    assert layout.detail_panel_id(max(slots)) < layout.KPI_DETAIL_ROW < layout.KPI_DETAIL_BASE
    assert layout.ALERT_LIST_ID < layout.OVERVIEW_BASE
    for uid, board in boards.items():
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), uid
        for expr in exprs(board):
            promql_parser.parse(substitute(expr))


@pytest.mark.parametrize("spec", SPECS, ids=os.path.basename)
def test_the_demo_serves_every_series_the_new_panels_read(spec):
    m, _ = load(spec)
    m = dataclasses.replace(m, dashboards_overview=True, dashboards_per_group=True)
    sim = Sim(m)
    served_cadvisor = set()
    cadvisor.demo_samples("p", 0.0, lambda key: 1.0,
                          lambda f, t, name, *rest: served_cadvisor.add(name))
    boards_ = {b["uid"]: b for b in grafana_dashboards.dashboards(m)}
    for group in m.groups:
        if not group.targets:
            continue  # scraped only in Kubernetes: the demo serves static targets
        board = boards_[layout.group_uid(m, group)]
        served = {s.name for i in range(len(group.targets))
                  for s in sim.samples(group.name, i)}
        for expr in exprs(board, expert_ids(board)):
            assert metric_names(expr) <= served, (group.name, expr)
    for expr in exprs(boards_[layout.containers_uid(m)]):
        assert metric_names(expr) <= served_cadvisor, expr
    for expr in exprs(boards_[layout.stack_uid(m)]):
        assert metric_names(expr) <= STACK_METRICS, expr


def test_the_demo_cadvisor_serves_the_containers_dashboard(model, boards):
    read = set().union(*map(metric_names, exprs(boards[layout.containers_uid(model)])))
    with CadvisorDemo(model.deployment) as demo:
        assert demo.target_map() == {
            ("cadvisor", prometheus_config.STACK_TARGETS["cadvisor"]): demo.address}
        text = urllib.request.urlopen(f"http://{demo.address}/metrics", timeout=5).read()
    served = {s.name for f in text_string_to_metric_families(text.decode())
              for s in f.samples}
    assert read <= served


def test_the_real_node_exporter_serves_what_the_host_panels_read(model, boards, tmp_path):
    """node_exporter 1.5 (the apt package) exposes every series the USE sections read."""
    _, board = group_board(model, boards, HOSTS)
    read = set().union(*map(metric_names, exprs(board, expert_ids(board))))
    port = procs.free_port()
    log = open(tmp_path / "node_exporter.log", "w")
    proc = subprocess.Popen([procs.find_binary("node_exporter"),
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    try:
        text, deadline = None, time.time() + 15
        while text is None and time.time() < deadline:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                              timeout=5).read().decode()
            except OSError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    assert text is not None, "node_exporter did not answer"
    exposed = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert read <= exposed, sorted(read - exposed)
