"""hosts.<group>.kpis.disk: free space per instance and mountpoint, with node-mixin's semantics.

Source (facts, no code copied): prometheus/node_exporter docs/node-mixin (alerts/alerts.libsonnet,
config.libsonnet). Filesystems as node-mixin selects them, `fstype!=""` and `mountpoint!=""`
(tmpfs in; node_exporter itself leaves pseudo filesystems out); every alert requires
`node_filesystem_readonly == 0`; the filling alert is node-mixin's NodeFilesystemSpaceFillingUp
(predict_linear over 6h, under 40% free); inode alerts fire under 5% (warning) and 3%
(critical) free inodes (NodeFilesystemAlmostOutOfFiles).

Alerts: `HostDiskSpaceLow` per threshold: a percentage is the free share of each
filesystem (`free < size * 0.15`); a size applies in full to filesystems of at least
`REFERENCE_FACTOR` x the KPI's largest size threshold and in proportion to the size on
smaller ones (`free < clamp_max(size / reference, 1) * threshold`), so a small healthy /boot
never pages and a full one still does. `HostDiskFillingUp` (warning) with `fills_within`;
`HostDiskInodesLow`. The recorded value stays free bytes (dashboards).
"""

from __future__ import annotations

from dataclasses import replace

from stackgen.kpis.base import BELOW, GAUGE, KpiKind, KpiShape, Param, clamp, selector
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import HOSTS, Series
from stackgen.spec import units as U

AVAIL, SIZE = "node_filesystem_avail_bytes", "node_filesystem_size_bytes"
READONLY = "node_filesystem_readonly"
FILES, FILES_FREE = "node_filesystem_files", "node_filesystem_files_free"
FS_MATCHERS = ('fstype!=""', 'mountpoint!=""')  # node-mixin's fsSelector, fsMountpointSelector
PREDICT_RANGE = "6h"  # node-mixin's fsSpaceFillingUpPredictionWindow
FILLING_GUARD = 0.4  # node-mixin: a filling alert only under 40% free
INODE_THRESHOLDS = (("warning", 0.05, "5%"), ("critical", 0.03, "3%"))
REFERENCE_FACTOR = 4  # a size threshold applies in full from 4x the largest one
FILLING_ALERT, INODES_ALERT = "HostDiskFillingUp", "HostDiskInodesLow"
ON = "on (instance, mountpoint)"
ROOT = {"device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
GIB = 2**30


def _fs(job: str) -> str:
    return selector(job, *FS_MATCHERS)


def _per_fs(metric: str, job: str) -> str:
    return f"max without (device, fstype) ({metric}{_fs(job)})"


def _writable(job: str) -> str:
    return f"{ON} ({_per_fs(READONLY, job)} == 0)"


def _num(x: float) -> str:
    return U.fmt_number(float("%.10g" % x))


def reference(kpi) -> float:
    sizes = [t.value for t in kpi.thresholds if not t.share]
    return REFERENCE_FACTOR * max(sizes) if sizes else 0.0


def test_size(kpi) -> float:
    """A filesystem big enough that size thresholds apply in full (tests and demo)."""
    sizes = [t.value for t in kpi.thresholds if not t.share and not t.text.endswith("%")]
    return float(max(100 * GIB, REFERENCE_FACTOR * max(sizes, default=0)))


def in_bytes(kpi):
    """The KPI with share thresholds as bytes of `test_size` (to choose test/demo levels)."""
    size = test_size(kpi)
    return replace(kpi, thresholds=tuple(replace(t, value=t.value * size, share=False)
                                         if t.share else t for t in kpi.thresholds))


class HostDisk(KpiKind):
    kind, key, group, order = "disk", "disk", HOSTS, 30
    parse = staticmethod(U.parse_size_or_share)
    default_for = "10m"
    alert_subject = " ({{ $labels.mountpoint }})"
    instant = True
    series_labels = {"mountpoint": "/"}

    def shape(self, m, path, d, job, window):
        return KpiShape(
            title="Disk free",
            record="instance_mountpoint:node_filesystem_avail:bytes",
            expr=_per_fs(AVAIL, job),
            unit="bytes", panel="bargauge", alert="HostDiskSpace", per=("instance", "mountpoint"),
            inputs=(Series(AVAIL, "gauge", tuple(sorted(ROOT.items()))),),
        )

    # -- alerts -----------------------------------------------------------------------------
    def alert_expr(self, group, kpi, t) -> str:
        free = f'{kpi.record}{{{group.group_label}="{group.name}"}}'
        size = _per_fs(SIZE, group.job)
        if t.share:
            limit = f"{size} * {U.fmt_number(t.value)}"
        else:
            limit = (f"clamp_max({size} / {U.fmt_number(reference(kpi))}, 1) * "
                     f"{U.fmt_number(t.value)}")
        return f"{free} < {ON} group_left () ({limit})\nand {_writable(group.job)}"

    def extra_alerts(self, model, group, index, kpi) -> list:
        from stackgen import layout

        where = f"in host group {group.name} on {{{{ $labels.instance }}}}{self.alert_subject}"
        common = {}
        if group.runbook_url:
            common["runbook_url"] = group.runbook_url
        url = layout.kpi_url(model, group, index)
        if url:
            common["dashboard_url"] = url
        labels = {"kpi": kpi.name, **dict(group.target_labels)}
        job = group.job
        out = []
        if kpi.fills_within:
            free = f'{kpi.record}{{{group.group_label}="{group.name}"}}'
            predicted = (f"max without (device, fstype) (predict_linear({AVAIL}{_fs(job)}"
                         f"[{PREDICT_RANGE}], "
                         f"{U.fmt_number(U.duration_seconds(kpi.fills_within))}))")
            out.append({
                "alert": FILLING_ALERT,
                "expr": f"{free} < {ON} group_left () ({_per_fs(SIZE, job)} * "
                        f"{U.fmt_number(FILLING_GUARD)})\nand {ON} ({predicted} < 0)\n"
                        f"and {_writable(job)}",
                "for": kpi.for_,
                "labels": {"severity": "warning", **labels},
                "annotations": {
                    "summary": f"Disk predicted full within {kpi.fills_within} {where}",
                    "description": f"Disk free {where} is {{{{ $value | humanize1024 }}}}B "
                                   f"(under 40%) and a linear prediction over the last "
                                   f"{PREDICT_RANGE} says it is full within {kpi.fills_within}.",
                    **common},
            })
        ratio = f"max without (device, fstype) ({FILES_FREE}{_fs(job)} / {FILES}{_fs(job)})"
        for severity, limit, text in INODE_THRESHOLDS:
            out.append({
                "alert": INODES_ALERT,
                "expr": f"{ratio} < {U.fmt_number(limit)}\nand {_writable(job)}",
                "for": kpi.for_,
                "labels": {"severity": severity, **labels},
                "annotations": {
                    "summary": f"Free inodes below {text} {where}",
                    "description": f"Free inodes {where} are {{{{ $value | humanizePercentage }}}}"
                                   f", below the {severity} threshold of {text} for more than "
                                   f"{kpi.for_}: no new file can be created when none is left.",
                    **common},
            })
        return out

    # -- generated promtool tests -----------------------------------------------------------
    def test_kpi(self, kpi):
        return in_bytes(kpi)

    def test_inputs(self, kpi, base, levels):
        labels = {**base, **ROOT}
        steps = sum(n for _, n in levels)
        return [(series_text(AVAIL, labels), gauge(levels)),
                (series_text(SIZE, labels), gauge([(test_size(kpi), steps)])),
                (series_text(READONLY, labels), gauge([(0, steps)]))]

    def extra_test_cases(self, model, group, index, kpi) -> list:
        from stackgen.generators import rule_tests as T

        rules = {(r["alert"], r["labels"]["severity"]): r
                 for r in self.extra_alerts(model, group, index, kpi)}
        labels = T.kpi_labels(group, kpi)
        fs = {**T.scrape_labels(group), **ROOT}
        for_m = T.minutes(kpi.for_)
        size = test_size(kpi)
        cases = []
        if kpi.fills_within:
            rule = rules[(FILLING_ALERT, "warning")]
            fw = T.minutes(kpi.fills_within)
            full = max(fw, for_m + 10)  # minutes until the disk is full
            onset = max(1, full - fw + 1)  # first minute the prediction says "full in time"
            fire_at, total = onset + for_m + 1, onset + for_m + 3
            start = 0.3 * size
            per_min = start / full
            fixed = [(series_text(SIZE, fs), gauge([(size, total + 1)])),
                     (series_text(READONLY, fs), gauge([(0, total + 1)]))]
            case = T.Case(f"{FILLING_ALERT} ({group.name}): fires {kpi.for_} after the "
                          f"prediction says full within {kpi.fills_within}, silent before")
            case.series = [(series_text(AVAIL, fs),
                            f"{_num(start)}-{_num(per_min)}x{total}")] + fixed
            if for_m >= 1:
                case.checks.append((onset + for_m - 1, FILLING_ALERT, []))
            case.checks.append((fire_at, FILLING_ALERT, [T.expected_alert(
                rule, labels, start - per_min * fire_at)]))
            steady = T.Case(f"{FILLING_ALERT} ({group.name}): silent while free space holds")
            steady.series = [(series_text(AVAIL, fs), gauge([(start, total + 1)]))] + fixed
            steady.checks.append((fire_at, FILLING_ALERT, []))
            cases += [case, steady]
        files, tb = 1_000_000, 3
        total = tb + for_m + 2
        for severity, limit, text in INODE_THRESHOLDS:
            level = limit * 0.8
            case = T.Case(f"{INODES_ALERT} {severity} ({group.name}): fires after {kpi.for_} "
                          f"under {text} free inodes, silent before")
            case.series = [(series_text(FILES, fs), gauge([(files, total + 1)])),
                           (series_text(FILES_FREE, fs),
                            gauge([(files * 0.5, tb), (files * level, total + 1 - tb)])),
                           (series_text(READONLY, fs), gauge([(0, total + 1)]))]
            if for_m >= 1:
                case.checks.append((tb + for_m - 1, INODES_ALERT, []))
            case.checks.append((tb + for_m, INODES_ALERT, [
                T.expected_alert(rules[(INODES_ALERT, s)], labels, level)
                for s, r, _ in INODE_THRESHOLDS if level < r]))
            cases.append(case)
        quiet = T.Case(f"{INODES_ALERT} ({group.name}): silent with 6% free inodes, and on a "
                       "read-only filesystem with none")
        ro = {**T.scrape_labels(group), "device": "/dev/sdb1", "fstype": "ext4",
              "mountpoint": "/srv/archive"}
        quiet.series = [(series_text(FILES, fs), gauge([(files, total + 1)])),
                        (series_text(FILES_FREE, fs), gauge([(files * 0.06, total + 1)])),
                        (series_text(READONLY, fs), gauge([(0, total + 1)])),
                        (series_text(FILES, ro), gauge([(files, total + 1)])),
                        (series_text(FILES_FREE, ro), gauge([(0, total + 1)])),
                        (series_text(READONLY, ro), gauge([(1, total + 1)]))]
        quiet.checks.append((tb + for_m + 1, INODES_ALERT, []))
        cases.append(quiet)
        return cases

    # -- demo exporter ----------------------------------------------------------------------
    incidents = {"disk-full": BELOW}
    default_incident = "disk-full"
    serves_always = True

    def demo_kpi(self, kpi):
        return in_bytes(kpi)

    def demo_setup(self, sim, kpi):
        size = sim.state[self.kind] = test_size(kpi) if kpi else 100 * GIB
        sim.base["disk"] = sim.healthy(kpi, size * 0.6) if kpi else size * 0.6

    def demo_param(self, sim, kpi):
        return Param("disk", per_target=True)

    def demo_samples(self, sim, i, p, wobble, add):
        size = sim.state[self.kind]
        free = clamp(p("disk") * wobble("disk", 0.005), 0, size)
        run = {"device": "tmpfs", "fstype": "tmpfs", "mountpoint": "/run"}
        efi = {"device": "/dev/sda15", "fstype": "vfat", "mountpoint": "/boot/efi"}
        for labels, total, avail in ((ROOT, size, free), (run, 1.6 * GIB, 1.5 * GIB),
                                     (efi, 0.5 * GIB, 0.49 * GIB)):
            add(AVAIL, "gauge", AVAIL, labels, GAUGE, avail)
            add(SIZE, "gauge", SIZE, labels, GAUGE, total)
            add(READONLY, "gauge", READONLY, labels, GAUGE, 0)
        # inodes (FILES, FILES_FREE) of the root filesystem: served by exporters/node.py


KIND = HostDisk()
