"""The host and GPU alerts against real exporter series (issue 9): one promtool run.

tests/real/node_dcgm.test.yml feeds series as node_exporter and dcgm-exporter expose them
in ordinary situations (small boot partitions, a read-only full volume, a full tmpfs, inode
exhaustion, a filling disk, iowait and steal, reserved GPU memory) and says what must fire.
It runs against the rules built from the default spec and from the reference spec; the
parts where their disk thresholds differ (percentages and `fills_within` in the default
spec, bytes in the reference spec) are filled in here.
"""

from __future__ import annotations

import os
import subprocess

import yaml

from conftest import REFERENCE, SPEC, need_tool
from stackgen import check
from stackgen.build import compile_spec

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = os.path.join(HERE, "real", "node_dcgm.test.yml")
DISK = {"kpi": "disk", "host_group": "nodes", "job": "nodes", "instance": "node-exporter:9100"}


def _disk(severity, mountpoint, alertname=None):
    return {"exp_labels": {"severity": severity, **DISK, "mountpoint": mountpoint}}


# What the filling disk (30 GiB free of 100 GiB, losing 5 GiB/h from t=0) fires, per spec.
FILLING = {
    # 15% / 5% free, fills_within 4h, for 10m: the prediction (4h) says "full" once 20 GiB
    # are left (2h), 15% is crossed at 3h.
    "stack": [
        {"eval_time": "110m", "alertname": "HostDiskFillingUp", "exp_alerts": []},
        {"eval_time": "140m", "alertname": "HostDiskFillingUp",
         "exp_alerts": [_disk("warning", "/var/lib/data")]},
        {"eval_time": "140m", "alertname": "HostDiskSpaceLow", "exp_alerts": []},
        {"eval_time": "200m", "alertname": "HostDiskSpaceLow",
         "exp_alerts": [_disk("warning", "/var/lib/data")]},
    ],
    # 10 GiB / 5 GiB (a 100 GiB disk is above 4x 10 GiB: thresholds in full): 10 GiB at 4h
    "reference": [
        {"eval_time": "200m", "alertname": "HostDiskSpaceLow", "exp_alerts": []},
        {"eval_time": "260m", "alertname": "HostDiskSpaceLow",
         "exp_alerts": [_disk("warning", "/var/lib/data")]},
        {"eval_time": "260m", "alertname": "HostDiskFillingUp", "exp_alerts": []},
    ],
}
# /tmp, 8 GiB tmpfs with 100 MiB left: both thresholds crossed with either spec
TMPFS = [_disk("critical", "/tmp"), _disk("warning", "/tmp")]


def _rules_without_annotations(spec: str, folder) -> list[str]:
    """The spec's host and GPU rule files (annotations dropped: this suite is about what
    fires; the generated tests check the annotations)."""
    _, artifacts, _ = compile_spec(spec, str(folder / "out"))
    out = []
    for a in artifacts:
        if a.path in ("prometheus/rules/hosts-nodes.yml", "prometheus/rules/gpus-dcgm.yml"):
            data = yaml.safe_load(a.content)
            for g in data["groups"]:
                for r in g["rules"]:
                    r.pop("annotations", None)
            path = folder / os.path.basename(a.path)
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            out.append(path.name)
    assert len(out) == 2, out
    return out


def test_default_and_reference_specs_alert_right_on_real_exporter_series(tmp_path):
    promtool = need_tool(check.find_promtool, "promtool", check.INSTALL["promtool"])
    with open(SUITE, encoding="utf-8") as fh:
        suite = yaml.safe_load(fh)
    files = []
    for name, spec in (("stack", SPEC), ("reference", REFERENCE)):
        folder = tmp_path / name
        folder.mkdir()
        test = {**suite, "rule_files": _rules_without_annotations(spec, folder)}
        tests = []
        for t in suite["tests"]:
            t = dict(t)
            if t["alert_rule_test"] == "FILLING_CHECKS":
                t["alert_rule_test"] = FILLING[name]
            for check_ in t["alert_rule_test"]:
                if check_.get("exp_alerts") == "TMPFS_ALERTS":
                    check_["exp_alerts"] = TMPFS
            tests.append(t)
        test["tests"] = tests
        path = folder / "real.test.yml"
        path.write_text(yaml.safe_dump(test, sort_keys=False))
        files.append(str(path))
    res = subprocess.run([promtool, "test", "rules", *files], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
