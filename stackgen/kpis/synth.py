"""Synthetic input series for promtool tests: the values a counter or gauge takes, level by
level, written as promtool's expanding notation (`1000+600x9`). KPI kinds build their test
inputs from these; generators/rule_tests.py builds the cases around them."""

from __future__ import annotations

from stackgen.spec.units import fmt_number

STEP = 60  # seconds between input samples and between rule evaluations
REQ_RATE = 10.0  # synthetic requests per second
COUNTER_START = 1000.0  # counters start here, not at 0: rate() extrapolates them evenly


def fmt(x: float) -> str:
    return fmt_number(float("%.10g" % x))


def label_value(value: str) -> str:
    """A label value as a quoted PromQL string (backslashes, quotes, newlines escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def series_text(metric: str, labels: dict) -> str:
    inner = ",".join(f"{k}={label_value(v)}" for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def gauge(levels: list[tuple[float, int]]) -> str:
    """Values of a gauge that holds each (value, steps) level in turn."""
    return " ".join(f"{fmt(v)}x{n - 1}" if n > 1 else fmt(v) for v, n in levels if n > 0)


def counter(levels: list[tuple[float, int]]) -> str:
    """Values of a counter growing at each (rate per second, steps) in turn."""
    out, total, first = [], COUNTER_START, True
    for rate, n in levels:
        if n <= 0:
            continue
        inc = rate * STEP
        start = total if first else total + inc
        out.append(f"{fmt(start)}+{fmt(inc)}x{n - 1}")
        total = start + inc * (n - 1)
        first = False
    return " ".join(out)
