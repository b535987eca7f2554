"""What each KPI of SPEC.md's table means in PromQL: value expression, recording rule, unit.

One function per KPI kind, each returning the fields of a `model.Kpi` that depend on the kind.
Thresholds, `for` and labels are filled in by the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackgen.model import Series

# `for` when the spec gives none, per KPI kind (documented in docs/spec.md).
DEFAULT_FOR = {
    "cpu": "5m", "memory": "5m", "disk": "10m",
    "gpu_utilization": "10m", "gpu_memory": "5m",
    "response_time": "5m", "throughput": "10m", "error_rate": "5m",
    "drift": "15m", "accuracy": "10m", "custom": "5m",
}

# Pseudo and container filesystems that never hold user data.
NON_DISK_FSTYPES = "tmpfs|ramfs|overlay|squashfs|nsfs|devtmpfs|fuse.lxcfs|autofs|proc|sysfs"

# Grafana unit ids that stackgen passes through as they are; anything else becomes a suffix.
GRAFANA_UNITS = {
    "percent", "percentunit", "s", "ms", "us", "ns", "bytes", "decbytes", "bits", "Bps", "bps",
    "reqps", "rps", "ops", "wps", "short", "none", "hertz", "celsius", "watt", "m", "h", "d",
}

HUMANIZE_BY_UNIT = {
    "percentunit": "humanizePercentage", "s": "humanizeDuration", "bytes": "humanize1024",
}


@dataclass(frozen=True)
class KpiShape:
    """The kind-dependent part of a KPI."""

    title: str
    record: str
    expr: str
    unit: str
    panel: str
    alert: str
    per: tuple = ()
    inputs: tuple = ()
    heatmap_expr: str | None = None
    aggregated: bool = False  # True: the value has no per-target labels (add group labels)


def selector(job: str, *extra: str) -> str:
    return "{" + ",".join([f'job="{job}"', *extra]) + "}"


def window_suffix(window: str) -> str:
    return f"rate{window}"


def _stem(metric: str, suffix: str) -> str:
    return metric[: -len(suffix)] if metric.endswith(suffix) else metric


def quantile_name(q: float) -> str:
    """0.95 -> 'p95', 0.999 -> 'p99_9', 0.5 -> 'p50'."""
    text = f"{q * 100:.6f}".rstrip("0").rstrip(".")
    return "p" + text.replace(".", "_")


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_") if part)


def host_cpu(job: str, window: str) -> KpiShape:
    idle = selector(job, 'mode="idle"')
    return KpiShape(
        title="CPU busy",
        record=f"instance:node_cpu_busy:ratio_{window_suffix(window)}",
        expr=f"1 - avg without (cpu, mode) (rate(node_cpu_seconds_total{idle}[{window}]))",
        unit="percentunit", panel="timeseries", alert="HostCpu", per=("instance",),
        inputs=(Series("node_cpu_seconds_total", "counter", (("cpu", "0"), ("mode", "idle"))),),
    )


def host_memory(job: str, window: str) -> KpiShape:
    sel = selector(job)
    return KpiShape(
        title="Memory used",
        record="instance:node_memory_used:ratio",
        expr=f"1 - node_memory_MemAvailable_bytes{sel} / node_memory_MemTotal_bytes{sel}",
        unit="percentunit", panel="gauge", alert="HostMemory", per=("instance",),
        inputs=(Series("node_memory_MemAvailable_bytes", "gauge"),
                Series("node_memory_MemTotal_bytes", "gauge")),
    )


def host_disk(job: str, window: str) -> KpiShape:
    sel = selector(job, f'fstype!~"{NON_DISK_FSTYPES}"')
    return KpiShape(
        title="Disk free",
        record="instance_mountpoint:node_filesystem_avail:bytes",
        expr=f"max without (device, fstype) (node_filesystem_avail_bytes{sel})",
        unit="bytes", panel="bargauge", alert="HostDiskSpace", per=("instance", "mountpoint"),
        inputs=(Series("node_filesystem_avail_bytes", "gauge",
                       (("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/"))),),
    )


def gpu_utilization(job: str, window: str) -> KpiShape:
    return KpiShape(
        title="GPU utilisation",
        record="gpu:dcgm_gpu_utilization:ratio",
        expr=f"DCGM_FI_DEV_GPU_UTIL{selector(job)} / 100",
        unit="percentunit", panel="timeseries", alert="GpuUtilization", per=("instance", "gpu"),
        inputs=(Series("DCGM_FI_DEV_GPU_UTIL", "gauge", (("gpu", "0"),)),),
    )


def gpu_memory(job: str, window: str) -> KpiShape:
    sel = selector(job)
    return KpiShape(
        title="GPU memory used",
        record="gpu:dcgm_fb_used:ratio",
        expr=f"DCGM_FI_DEV_FB_USED{sel} / (DCGM_FI_DEV_FB_USED{sel} + DCGM_FI_DEV_FB_FREE{sel})",
        unit="percentunit", panel="gauge", alert="GpuMemory", per=("instance", "gpu"),
        inputs=(Series("DCGM_FI_DEV_FB_USED", "gauge", (("gpu", "0"),)),
                Series("DCGM_FI_DEV_FB_FREE", "gauge", (("gpu", "0"),))),
    )


def response_time(job: str, window: str, histogram: str, quantile: float) -> KpiShape:
    base = _stem(histogram, "_bucket")
    buckets = f"sum by (le) (rate({base}_bucket{selector(job)}[{window}]))"
    return KpiShape(
        title=f"{quantile_name(quantile)} response time",
        record=f"service:{base}:{quantile_name(quantile)}_{window_suffix(window)}",
        expr=f"histogram_quantile({quantile}, {buckets})",
        unit="s", panel="heatmap", alert="ResponseTime", heatmap_expr=buckets, aggregated=True,
        inputs=(Series(base, "histogram"),),
    )


def throughput(job: str, window: str, counter: str) -> KpiShape:
    return KpiShape(
        title="Throughput",
        record=f"service:{_stem(counter, '_total')}:{window_suffix(window)}",
        expr=f"sum(rate({counter}{selector(job)}[{window}]))",
        unit="reqps", panel="timeseries", alert="Throughput", aggregated=True,
        inputs=(Series(counter, "counter"),),
    )


def error_rate(job: str, window: str, counter: str, errors: str) -> KpiShape:
    return KpiShape(
        title="Error ratio",
        record=f"service:{_stem(counter, '_total')}:error_ratio_{window_suffix(window)}",
        expr=f"sum(rate({counter}{selector(job, errors)}[{window}]))"
             f" / sum(rate({counter}{selector(job)}[{window}]))",
        unit="percentunit", panel="stat", alert="ErrorRate", aggregated=True,
        inputs=(Series(counter, "counter"),),
    )


def drift(job: str, window: str, gauge: str) -> KpiShape:
    return KpiShape(
        title="Data drift score",
        record=f"service:{gauge}:max",
        expr=f"max({gauge}{selector(job)})",
        unit="short", panel="timeseries", alert="DataDrift", aggregated=True,
        inputs=(Series(gauge, "gauge"),),
    )


def accuracy(job: str, window: str, gauge: str) -> KpiShape:
    return KpiShape(
        title="Model accuracy",
        record=f"service:{gauge}:min",
        expr=f"min({gauge}{selector(job)})",
        unit="percentunit", panel="stat", alert="ModelAccuracy", aggregated=True,
        inputs=(Series(gauge, "gauge"),),
    )


def custom(name: str, expr: str, unit: str | None, panel: str | None, title: str) -> KpiShape:
    return KpiShape(
        title=title,
        record=f"service:{name}:custom",
        expr=expr,
        unit=unit or "short", panel=panel or "timeseries", alert=camel(name), aggregated=True,
    )


def grafana_unit(unit: str) -> str:
    """A Grafana unit id: known ids pass, anything else is shown as a suffix."""
    return unit if unit in GRAFANA_UNITS or unit.startswith("suffix:") else f"suffix: {unit}"


def humanizer(unit: str) -> str:
    return HUMANIZE_BY_UNIT.get(unit, "humanize")


def le_matcher(seconds: float) -> str:
    """A matcher for the bucket `le` equal to `seconds`, whichever way the client wrote it
    (0.5 / 0.50; 2 / 2.0): Prometheus 3 normalises to one form, older servers keep both."""
    text = repr(float(seconds))
    escaped_dot = "\\\\."  # a regex `\.` inside a PromQL double-quoted string
    if text.endswith(".0"):
        return 'le=~"' + text[:-2] + "(" + escaped_dot + '0+)?"'
    return 'le=~"' + text.replace(".", escaped_dot) + '0*"'


def availability_error_ratio(job: str, counter: str, errors: str, window: str) -> str:
    return (f"(sum(rate({counter}{selector(job, errors)}[{window}])) or vector(0))"
            f" / sum(rate({counter}{selector(job)}[{window}]))")


def latency_error_ratio(job: str, histogram: str, seconds: float, window: str) -> str:
    base = _stem(histogram, "_bucket")
    return (f"1 - (sum(rate({base}_bucket{selector(job, le_matcher(seconds))}[{window}]))"
            f" / sum(rate({base}_count{selector(job)}[{window}])))")
