"""node_exporter (1.5+) beyond the host KPIs: a host group's panels by the USE method
(utilisation, saturation, errors of CPU, memory, disks, filesystems and network), and the
demo series behind them.

Metric names and what they mean: node_exporter's collectors (cpu, loadavg, meminfo, vmstat,
diskstats, filesystem, netdev) as node_exporter 1.5+ exposes them, and the queries experts
ship for them: node-mixin's "USE Method / Node" dashboard (load per core as CPU saturation,
`io_time` as disk utilisation, read/write time per operation as latency, inodes, network
errors and drops), in stackgen's own words.
"""

from __future__ import annotations

from stackgen.kpis import host_cpu, host_disk, host_memory, host_network_errors
from stackgen.kpis import host_network_transmit_errors
from stackgen.kpis.base import COUNTER, GAUGE, clamp
from stackgen.kpis.exporters import RATE, Panel, Query, row

LOAD = ("node_load1", "node_load5", "node_load15")
SWAP_TOTAL, SWAP_FREE = "node_memory_SwapTotal_bytes", "node_memory_SwapFree_bytes"
MAJOR_FAULTS = "node_vmstat_pgmajfault"
IO_TIME = "node_disk_io_time_seconds_total"
READ_TIME, READS = "node_disk_read_time_seconds_total", "node_disk_reads_completed_total"
WRITE_TIME, WRITES = "node_disk_write_time_seconds_total", "node_disk_writes_completed_total"
READ_BYTES, WRITTEN_BYTES = "node_disk_read_bytes_total", "node_disk_written_bytes_total"
FILES, FILES_FREE = host_disk.FILES, host_disk.FILES_FREE
RX_BYTES, TX_BYTES = "node_network_receive_bytes_total", "node_network_transmit_bytes_total"
RX_ERRS, TX_ERRS = host_network_errors.RX_ERRS, host_network_transmit_errors.TX_ERRS
RX_DROP, TX_DROP = "node_network_receive_drop_total", "node_network_transmit_drop_total"
NOT_LOOPBACK = 'device!="lo"'
# Block devices that are disks, as node-mixin's config.libsonnet lists them (diskDevices):
# no partitions, RAM, loop or zram devices.
DISKS_ONLY = 'device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|dasd.+)"'


def _cores(sel: str) -> str:
    return f'count by (instance) ({host_cpu.METRIC}{{{sel},mode="idle"}})'


def _fs(sel: str) -> str:
    return ",".join((sel, *host_disk.FS_MATCHERS))  # node-mixin's filesystems, as the KPI


def panels(sel: str) -> tuple:
    cpu, mem, avail = host_cpu.METRIC, host_memory.TOTAL, host_memory.AVAILABLE
    disk, net, fs = f"{sel},{DISKS_ONLY}", f"{sel},{NOT_LOOPBACK}", _fs(sel)
    return (
        row(0, "CPU"),
        Panel(1, "CPU by mode", "Share of each host's CPU time per mode (idle left out), "
              "averaged over its cores: utilisation.", "percentunit", (Query(
                  f'sum by (instance, mode) (rate({cpu}{{{sel},mode!="idle"}}[{RATE}])) '
                  f"/ on (instance) group_left {_cores(sel)}", "{{instance}} {{mode}}"),),
              width=12, stack=True, min=0, max=1),
        Panel(2, "Load per core", "Load averages (runnable and waiting tasks) divided by the "
              "host's cores: saturation once above 1.", "short", tuple(
                  Query(f"{m}{{{sel}}} / on (instance) {_cores(sel)}",
                        "{{instance}} " + m.rsplit("load", 1)[1] + "m")
                  for m in LOAD), width=12, min=0, thresholds=((1, "orange"),)),
        row(10, "Memory"),
        Panel(11, "Memory used and total", "Total memory less what is available to new work "
              "(MemAvailable: free, reclaimable caches).", "bytes", (
                  Query(f"{mem}{{{sel}}} - {avail}{{{sel}}}", "{{instance}} used"),
                  Query(f"{mem}{{{sel}}}", "{{instance}} total")), min=0),
        Panel(12, "Swap used", "Swap in use; a host that swaps is short of memory.", "bytes", (
            Query(f"{SWAP_TOTAL}{{{sel}}} - {SWAP_FREE}{{{sel}}}", "{{instance}} used"),
            Query(f"{SWAP_TOTAL}{{{sel}}}", "{{instance}} total")), min=0),
        Panel(13, "Major page faults", "Page faults that had to read from disk: memory "
              "saturation.", "ops", (Query(f"rate({MAJOR_FAULTS}{{{sel}}}[{RATE}])",
                                           "{{instance}}"),), min=0),
        row(20, "Disk I/O"),
        Panel(21, "Disk I/O utilisation", "Share of time each disk was busy with I/O.",
              "percentunit", (Query(f"rate({IO_TIME}{{{disk}}}[{RATE}])",
                                    "{{instance}} {{device}}"),), min=0, max=1,
              thresholds=((0.9, "orange"),)),
        Panel(22, "Disk latency", "Average time per completed read and write.", "s", (
            Query(f"rate({READ_TIME}{{{disk}}}[{RATE}]) / rate({READS}{{{disk}}}[{RATE}])",
                  "{{instance}} {{device}} read"),
            Query(f"rate({WRITE_TIME}{{{disk}}}[{RATE}]) / rate({WRITES}{{{disk}}}[{RATE}])",
                  "{{instance}} {{device}} write")), min=0),
        Panel(23, "Disk throughput", "Bytes read and written per second.", "Bps", (
            Query(f"rate({READ_BYTES}{{{disk}}}[{RATE}])", "{{instance}} {{device}} read"),
            Query(f"rate({WRITTEN_BYTES}{{{disk}}}[{RATE}])",
                  "{{instance}} {{device}} written")), min=0),
        row(30, "Filesystems"),
        Panel(31, "Filesystem space used", "Share of each filesystem's space in use (pseudo "
              "and container filesystems left out).", "percentunit", (Query(
                  f"1 - {host_disk.AVAIL}{{{fs}}} / {host_disk.SIZE}{{{fs}}}",
                  "{{instance}} {{mountpoint}}"),), width=12, min=0, max=1,
              thresholds=((0.8, "orange"), (0.9, "red"))),
        Panel(32, "Inodes used", "Share of each filesystem's inodes in use: a filesystem "
              "out of inodes takes no new file, however much space it has.", "percentunit",
              (Query(f"1 - {FILES_FREE}{{{fs}}} / {FILES}{{{fs}}}",
                     "{{instance}} {{mountpoint}}"),), width=12, min=0, max=1,
              thresholds=((0.8, "orange"), (0.9, "red"))),
        row(40, "Network"),
        Panel(41, "Network traffic", "Bytes received and sent per second, per interface "
              "(loopback left out).", "Bps", (
                  Query(f"rate({RX_BYTES}{{{net}}}[{RATE}])", "{{instance}} {{device}} in"),
                  Query(f"rate({TX_BYTES}{{{net}}}[{RATE}])",
                        "{{instance}} {{device}} out")), width=12, min=0),
        Panel(42, "Network errors and drops", "Packets per second received or sent with "
              "errors, or dropped.", "pps", tuple(
                  Query(f"rate({m}{{{net}}}[{RATE}])", "{{instance}} {{device}} " + what)
                  for m, what in ((RX_ERRS, "receive errors"), (TX_ERRS, "transmit errors"),
                                  (RX_DROP, "receive drops"), (TX_DROP, "transmit drops"))),
              width=12, min=0),
    )


# -- demo series ------------------------------------------------------------------------------
SWAP = 2 * 2**30
INODES = 6_553_600
DISKS = {"sda": 1.0, "nvme0n1": 2.5}  # device -> its share of the host's I/O


def demo_samples(sim, i, p, wobble, add) -> None:
    """A host's background series; CPU load follows the cpu KPI's parameter."""
    busy = clamp(p("cpu") * wobble("cpu")) if "cpu" in sim.base else 0.35
    for m, k in zip(LOAD, (1.0, 0.95, 0.9)):
        add(m, "gauge", m, {}, GAUGE, busy * host_cpu.CPUS * k)
    add(SWAP_TOTAL, "gauge", SWAP_TOTAL, {}, GAUGE, SWAP)
    add(SWAP_FREE, "gauge", SWAP_FREE, {}, GAUGE, SWAP * 0.97)
    add(MAJOR_FAULTS, "unknown", MAJOR_FAULTS, {}, COUNTER, 0.5 * wobble("faults"))
    for device, k in DISKS.items():
        labels = {"device": device}
        reads, writes = 20 * k * wobble(f"io:{device}"), 35 * k * wobble(f"io:{device}")
        for name, value in ((IO_TIME, 0.04 * k), (READS, reads), (READ_TIME, reads * 0.004),
                            (WRITES, writes), (WRITE_TIME, writes * 0.002),
                            (READ_BYTES, reads * 64 * 1024), (WRITTEN_BYTES, writes * 32 * 1024)):
            add(name[:-len("_total")], "counter", name, labels, COUNTER, value)
    used = 1 - p("disk") / sim.state[host_disk.KIND.kind] if "disk" in sim.base else 0.4
    add(FILES, "gauge", FILES, host_disk.ROOT, GAUGE, INODES)
    add(FILES_FREE, "gauge", FILES_FREE, host_disk.ROOT, GAUGE, INODES * (1 - 0.5 * used))
    labels = {"device": "eth0"}
    # (the network error kinds serve the packet and error counters)
    for name, value in ((RX_BYTES, 1.2e6 * wobble("net")), (TX_BYTES, 0.8e6 * wobble("net")),
                        (RX_DROP, 0.0), (TX_DROP, 0.0)):
        add(name[:-len("_total")], "counter", name, labels, COUNTER, value)
