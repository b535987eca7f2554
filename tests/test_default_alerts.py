"""The default alerts (hosts: network errors, clock skew, clock not synchronising; GPUs:
temperature, XID errors): on without spec changes, overridable, and firing on the series the
real exporters serve (node_exporter, dcgm-exporter), checked by promtool in one run."""

import subprocess

import pytest
import yaml

from conftest import need_tool
from stackgen import check
from stackgen.artifact import to_yaml
from stackgen.generators import prometheus_rules as R
from stackgen.generators.rule_tests import expected_alert, scrape_labels
from stackgen.spec import load

SPEC = """\
version: 1
stack: {name: defaults}
hosts:
  nodes:
    targets: [node1:9100]
  edge:
    targets: [edge1:9100]
    kpis:
      cpu: {warning: 90%}
      network_receive_errors: {warning: 5%}
      network_transmit_errors: {for: 30m}
      clock_skew: false
      clock_sync: null
gpus:
  dcgm:
    targets: [gpu1:9400]
  quiet:
    targets: [gpu2:9400]
    kpis:
      temperature: {critical: 95, for: 1m}
      xid_errors: false
alerting:
  default_receiver: ops
  receivers:
    ops:
      webhook: {url_file: secrets/hook}
"""

DEFAULTS = {"network_receive_errors", "network_transmit_errors", "clock_skew", "clock_sync"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("spec")
    (d / "secrets").mkdir()
    (d / "secrets" / "hook").write_text("http://127.0.0.1:1/\n")
    (d / "stack.yaml").write_text(SPEC)
    m, problems = load(str(d / "stack.yaml"))
    assert not [p for p in problems if p.severity == "error"], problems
    return m


def group(model, name):
    return next(g for g in model.groups if g.name == name)


def kpi(model, group_name, key):
    return next((k for k in group(model, group_name).kpis if k.name == key), None)


# -- the spec -------------------------------------------------------------------------------
def test_every_host_and_gpu_group_gets_the_defaults(model):
    assert {k.name for k in group(model, "nodes").kpis} == DEFAULTS
    assert {k.name for k in group(model, "dcgm").kpis} == {"temperature", "xid_errors"}
    rx = kpi(model, "nodes", "network_receive_errors")
    assert [(t.severity, t.value, t.below) for t in rx.thresholds] == [("warning", 0.01, False)]
    assert rx.for_ == "1h"
    sync = kpi(model, "nodes", "clock_sync")
    assert [(t.op, t.value) for t in sync.thresholds] == [(">=", 16.0)]
    temp = kpi(model, "dcgm", "temperature")
    assert [(t.severity, t.value) for t in temp.thresholds] == [("warning", 85), ("critical", 90)]
    assert kpi(model, "dcgm", "xid_errors").for_ == "0s"


def test_thresholds_replace_the_defaults_and_false_or_null_switch_off(model):
    edge = {k.name: k for k in group(model, "edge").kpis}
    assert set(edge) == {"cpu", "network_receive_errors", "network_transmit_errors"}
    assert [t.value for t in edge["network_receive_errors"].thresholds] == [0.05]
    assert edge["network_receive_errors"].for_ == "1h"
    tx = edge["network_transmit_errors"]  # `for` only: the default threshold stays
    assert [t.value for t in tx.thresholds] == [0.01] and tx.for_ == "30m"
    quiet = {k.name: k for k in group(model, "quiet").kpis}
    assert set(quiet) == {"temperature"}
    assert [(t.severity, t.value) for t in quiet["temperature"].thresholds] == [("critical", 95)]
    rules = dict(R.rule_files(model))
    names = [r.get("alert") for g in rules["hosts-edge.yml"]["groups"] for r in g["rules"]]
    assert "HostClockSkewHigh" not in names and "HostClockMaxErrorHigh" not in names


# -- promtool: the alerts on real exporter series -------------------------------------------
def series(metric, labels):
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def gpu_labels(g):
    return {"gpu": str(g), "UUID": f"GPU-0000000{g}-1111-2222-3333-444444444444",
            "device": f"nvidia{g}", "modelName": "NVIDIA H100 80GB HBM3", "Hostname": "gpu1"}


class Cases:
    def __init__(self, model):
        self.model, self.tests = model, []
        self.rules = {(r["alert"], r["labels"]["severity"], r["labels"][g.group_label]): r
                      for g in model.groups for r in R.group_rules(model, g)["rules"]
                      if "alert" in r}

    def alert(self, group_name, alertname, severity, labels, value):
        g = group(self.model, group_name)
        rule = self.rules[(alertname, severity, g.name)]
        return expected_alert(rule, {**scrape_labels(g), **labels}, value)

    def add(self, name, inputs, checks):
        self.tests.append({
            "name": name, "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in inputs],
            "alert_rule_test": [{"eval_time": f"{t}m", "alertname": a, "exp_alerts": e}
                                for t, a, e in checks],
        })


def test_the_default_alerts_fire_on_real_exporter_series(model, tmp_path):
    promtool = need_tool(check.find_promtool, "promtool", check.INSTALL["promtool"])
    c = Cases(model)
    node = scrape_labels(group(model, "nodes"))
    edge = scrape_labels(group(model, "edge"))

    def net(base, device, direction, kind):
        return series(f"node_network_{direction}_{kind}_total", {**base, "device": device})

    # 2% receive errors on eth0 for over an hour; lo without errors; wlan0 without traffic
    # (0/0); 0.5% transmit errors. Under `edge`'s 5% threshold the same 2% stays silent.
    inputs = []
    for base in (node, edge):
        inputs += [(net(base, "eth0", "receive", "packets"), "0+60000x70"),
                   (net(base, "eth0", "receive", "errs"), "0+1200x70"),
                   (net(base, "lo", "receive", "packets"), "0+6000x70"),
                   (net(base, "lo", "receive", "errs"), "0x70"),
                   (net(base, "wlan0", "receive", "packets"), "0x70"),
                   (net(base, "wlan0", "receive", "errs"), "0x70"),
                   (net(base, "eth0", "transmit", "packets"), "0+60000x70"),
                   (net(base, "eth0", "transmit", "errs"), "0+300x70")]
    c.add("network errors: 2% of received packets for 1h", inputs, [
        (59, "HostNetworkReceiveErrorsHigh", []),
        (62, "HostNetworkReceiveErrorsHigh",
         [c.alert("nodes", "HostNetworkReceiveErrorsHigh", "warning", {"device": "eth0"},
                  0.02)]),
        (62, "HostNetworkTransmitErrorsHigh", []),
    ])

    # Clock offset drifting away (+2ms a minute from 41ms): above 50ms from minute 5, alert
    # 10m later. An offset of 200ms that NTP pulls back, and one falling below -60ms.
    offset = "node_timex_offset_seconds"
    c.add("clock skew: drifting away fires", [
        (series(offset, node), "0.041+0.002x30"),
    ], [(14, "HostClockSkewHigh", []),
        (16, "HostClockSkewHigh",
         [c.alert("nodes", "HostClockSkewHigh", "warning", {}, 0.073)])])
    c.add("clock skew: converging back to zero stays silent", [
        (series(offset, node), "0.2-0.002x30"),
    ], [(20, "HostClockSkewHigh", [])])
    c.add("clock skew: a negative offset growing away fires", [
        (series(offset, node), "-0.06-0.001x30"),
    ], [(12, "HostClockSkewHigh",
         [c.alert("nodes", "HostClockSkewHigh", "warning", {}, 0.072)])])

    # Not synchronised: sync status 0, maxerror growing 0.5ms/s to the kernel's 16s cap
    # (reached at minute 20): the alert fires 10m later. Unsynchronised with maxerror 10s,
    # or synchronised: silent.
    sync, maxerror = "node_timex_sync_status", "node_timex_maxerror_seconds"
    c.add("clock not synchronising: maxerror at the 16s cap while unsynchronised", [
        (series(sync, node), "0x45"), (series(maxerror, node), "15.4+0.03x19 16x25"),
    ], [(29, "HostClockMaxErrorHigh", []),
        (31, "HostClockMaxErrorHigh",
         [c.alert("nodes", "HostClockMaxErrorHigh", "warning", {}, 16)])])
    c.add("clock not synchronising: below the cap, or synchronised, stays silent", [
        (series(sync, node), "0x45"), (series(maxerror, node), "10x45"),
        (series(sync, edge), "1x45"), (series(maxerror, edge), "16x45"),
    ], [(31, "HostClockMaxErrorHigh", [])])

    # GPU temperature: GPU 0 at 93 degrees (warning and critical), GPU 1 at 88 (warning),
    # GPU 2 at 70; on `quiet` (critical above 95 only) 93 stays silent.
    gpu = scrape_labels(group(model, "dcgm"))
    quiet = scrape_labels(group(model, "quiet"))
    temp = "DCGM_FI_DEV_GPU_TEMP"
    c.add("GPU temperature", [
        (series(temp, {**gpu, **gpu_labels(0)}), "93x10"),
        (series(temp, {**gpu, **gpu_labels(1)}), "88x10"),
        (series(temp, {**gpu, **gpu_labels(2)}), "70x10"),
        (series(temp, {**quiet, **gpu_labels(0)}), "93x10"),
    ], [(4, "GpuTemperatureHigh", []),
        (6, "GpuTemperatureHigh",
         [c.alert("dcgm", "GpuTemperatureHigh", "warning", gpu_labels(0), 93),
          c.alert("dcgm", "GpuTemperatureHigh", "critical", gpu_labels(0), 93),
          c.alert("dcgm", "GpuTemperatureHigh", "warning", gpu_labels(1), 88)])])

    # XID, as dcgm-exporter serves it: the code is the value and the err_code/err_msg
    # labels, so a new code is a new series (the old one goes stale). GPU 0 reports XID 79
    # at minute 10; GPU 1 has shown XID 43 since before Prometheus started (no change: no
    # alert). The alert fires at once and resolves 10m after the change.
    xid = "DCGM_FI_DEV_XID_ERRORS"
    c.add("XID errors: a new code fires at once, for 10m", [
        (series(xid, {**gpu, **gpu_labels(0), "err_code": "0", "err_msg": "No Error"}),
         "0x9 stale"),
        (series(xid, {**gpu, **gpu_labels(0), "err_code": "79",
                      "err_msg": "GPU has fallen off the bus"}), "_x10 79x20"),
        (series(xid, {**gpu, **gpu_labels(1), "err_code": "43",
                      "err_msg": "GPU stopped processing"}), "43x30"),
    ], [(9, "GpuXidErrorHigh", []),
        (10, "GpuXidErrorHigh",
         [c.alert("dcgm", "GpuXidErrorHigh", "warning", gpu_labels(0), 79)]),
        (19, "GpuXidErrorHigh",
         [c.alert("dcgm", "GpuXidErrorHigh", "warning", gpu_labels(0), 79)]),
        (21, "GpuXidErrorHigh", [])])

    rules = tmp_path / "rules"
    rules.mkdir()
    names = []
    for name, data in R.rule_files(model):
        if name.startswith(("hosts-", "gpus-")):
            (rules / name).write_text(to_yaml(data, model.spec_name))
            names.append(f"rules/{name}")
    test = tmp_path / "defaults.test.yml"
    test.write_text(yaml.safe_dump({"rule_files": names, "evaluation_interval": "1m",
                                    "tests": c.tests}, sort_keys=False))
    proc = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
