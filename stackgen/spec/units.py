"""Values with units, as written in a spec, and their base-unit meaning.

`80%` -> 0.8, `500ms` -> 0.5 (seconds), `10GiB` -> 10737418240 (bytes), `1/s` -> 1.0 (per second).
Durations stay Prometheus durations in generated config; `duration_seconds` is for arithmetic.
"""

from __future__ import annotations

import functools
import math
import re

DURATION_RE = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION_ORDER = ["y", "w", "d", "h", "m", "s", "ms"]

PERCENT_RE = re.compile(r"^(\d+(?:\.\d+)?)%$")
SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s?(B|kB|KB|MB|GB|TB|PB|KiB|MiB|GiB|TiB|PiB)$")
_SIZE_UNITS = {
    "B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50,
}
RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)/(s|m|h)$")
_RATE_UNITS = {"s": 1, "m": 60, "h": 3600}


def is_duration(text) -> bool:
    return isinstance(text, str) and bool(DURATION_RE.match(text)) and duration_seconds(text) > 0


@functools.lru_cache(maxsize=4096)  # pure, and asked for the same few durations many times
def duration_seconds(text: str) -> float:
    if not DURATION_RE.match(text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """Shortest Prometheus duration for `seconds` (e.g. 3600 -> '1h', 90 -> '1m30s')."""
    return _duration(seconds, long_units=False)  # d/h/m/s/ms: what people read best


def prometheus_duration(seconds: float) -> str:
    """A duration as Prometheus (and Sloth) print it: years and weeks only when exact, then
    d/h/m/s/ms (28d -> '4w', 30d -> '30d', 90d -> '90d', 1h30m -> '1h30m')."""
    return _duration(seconds, long_units=True)


def _duration(seconds: float, long_units: bool) -> str:
    """`seconds` in units from the largest down; years and weeks only with `long_units`,
    and then only when they divide the duration exactly."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    out = []
    for unit in _DURATION_ORDER:
        size = round(_DURATION_UNITS[unit] * 1000)
        if unit in ("y", "w") and (not long_units or ms % size):
            continue
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def number(value) -> float | None:
    """A bare YAML number (not a bool), as float; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and abs(value) > 2**63:
        return None  # values.py reports it; float() of a huge int overflows
    return float(value) if math.isfinite(value) else None


def parse_ratio(value) -> float | None:
    """`80%` -> 0.8; a bare number as it is."""
    n = number(value)
    if n is not None:
        return n
    if isinstance(value, str):
        m = PERCENT_RE.match(value.strip())
        if m:
            return float(m.group(1)) / 100
    return None


def parse_size(value) -> float | None:
    n = number(value)
    if n is not None:
        return n
    if isinstance(value, str):
        m = SIZE_RE.match(value.strip())
        if m:
            return float(m.group(1)) * _SIZE_UNITS[m.group(2)]
    return None


def parse_size_or_share(value) -> float | None:
    """Disk thresholds: `15%` -> 0.15 (a share of the filesystem), else a size in bytes."""
    if isinstance(value, str) and PERCENT_RE.match(value.strip()):
        return parse_ratio(value.strip())
    return parse_size(value)


def mark_shares(kind: str, thresholds: tuple) -> tuple:
    """Disk thresholds written as percentages are shares of the filesystem."""
    if kind != "disk":
        return thresholds
    from dataclasses import replace

    return tuple(replace(t, share=t.text.strip().endswith("%")) for t in thresholds)


def parse_rate(value) -> float | None:
    n = number(value)
    if n is not None:
        return n
    if isinstance(value, str):
        m = RATE_RE.match(value.strip())
        if m:
            return float(m.group(1)) / _RATE_UNITS[m.group(2)]
    return None


def parse_seconds(value) -> float | None:
    n = number(value)
    if n is not None:
        return n
    if isinstance(value, str) and is_duration(value.strip()):
        return duration_seconds(value.strip())
    return None


def parse_any(value) -> float | None:
    """For custom KPIs: a number, percentage, duration, size or rate."""
    for parse in (parse_ratio, parse_seconds, parse_size, parse_rate):
        v = parse(value)
        if v is not None:
            return v
    return None


def fmt_number(x: float) -> str:
    """A float as PromQL/YAML text: integers without '.0', no exponent noise."""
    if not math.isfinite(x):
        return repr(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(round(x, 12))
