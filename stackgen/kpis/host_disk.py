"""hosts.<group>.kpis.disk: free bytes per instance and mountpoint (node_exporter), pseudo and
container filesystems excluded."""

from __future__ import annotations

from stackgen.kpis.base import BELOW, GAUGE, KpiKind, KpiShape, Param, clamp, selector
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import HOSTS, Series
from stackgen.spec import units as U

AVAIL, SIZE = "node_filesystem_avail_bytes", "node_filesystem_size_bytes"
# Pseudo and container filesystems that never hold user data.
NON_DISK_FSTYPES = "tmpfs|ramfs|overlay|squashfs|nsfs|devtmpfs|fuse.lxcfs|autofs|proc|sysfs"
ROOT = {"device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
GIB = 2**30


class HostDisk(KpiKind):
    kind, key, group, order = "disk", "disk", HOSTS, 30
    parse = staticmethod(U.parse_size)
    default_for = "10m"
    alert_subject = " ({{ $labels.mountpoint }})"
    instant = True
    series_labels = {"mountpoint": "/"}

    def shape(self, m, path, d, job, window):
        sel = selector(job, f'fstype!~"{NON_DISK_FSTYPES}"')
        return KpiShape(
            title="Disk free",
            record="instance_mountpoint:node_filesystem_avail:bytes",
            expr=f"max without (device, fstype) ({AVAIL}{sel})",
            unit="bytes", panel="bargauge", alert="HostDiskSpace", per=("instance", "mountpoint"),
            inputs=(Series(AVAIL, "gauge", tuple(sorted(ROOT.items()))),),
        )

    def test_inputs(self, kpi, base, levels):
        return [(series_text(AVAIL, {**base, **ROOT}), gauge(levels))]

    incidents = {"disk-full": BELOW}
    default_incident = "disk-full"
    serves_always = True

    def demo_setup(self, sim, kpi):
        ts = [t.value for t in kpi.thresholds] if kpi else []
        size = sim.state[self.kind] = max(100 * GIB, 4 * max(ts, default=0))
        sim.base["disk"] = sim.healthy(kpi, size * 0.6) if kpi else size * 0.6

    def demo_param(self, sim, kpi):
        return Param("disk", per_target=True)

    def demo_samples(self, sim, i, p, wobble, add):
        size = sim.state[self.kind]
        free = clamp(p("disk") * wobble("disk", 0.005), 0, size)
        run = {"device": "tmpfs", "fstype": "tmpfs", "mountpoint": "/run"}
        for labels, total, avail in ((ROOT, size, free), (run, 1.6 * GIB, 1.5 * GIB)):
            add(AVAIL, "gauge", AVAIL, labels, GAUGE, avail)
            add(SIZE, "gauge", SIZE, labels, GAUGE, total)


KIND = HostDisk()
