"""The arithmetic of PromQL as Prometheus does it, for the steady-state evaluator
(stackgen.runtime.steady): binary operators on floats (division by zero, comparisons),
`quantile` over values and `histogram_quantile` over cumulative buckets."""

from __future__ import annotations

import math


class Unsupported(ValueError):
    """The expression uses PromQL this evaluator does not model."""


def arith(op: str, a: float, b: float):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
        return a / b
    if op == "%":
        return math.fmod(a, b) if b != 0 else math.nan
    if op == "^":
        try:
            return a ** b
        except (OverflowError, ZeroDivisionError):
            return math.inf
    if op == "atan2":
        return math.atan2(a, b)
    comparisons = {"==": a == b, "!=": a != b, ">": a > b, "<": a < b, ">=": a >= b,
                   "<=": a <= b}
    if op in comparisons:
        return comparisons[op]
    raise Unsupported(f"operator {op} is not modelled")


def quantile(q: float, xs: list) -> float:
    xs = sorted(xs)
    if not xs:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    rank = q * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def bucket_quantile(q: float, buckets: list) -> float:
    """Prometheus's histogram_quantile over cumulative (upper bound, count) buckets."""
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets)
    if len(buckets) < 2 or buckets[-1][0] != math.inf:
        return math.nan
    # Cumulative counts must not decrease (they may, a little, with jitter): fix as Prometheus.
    fixed, top = [], 0.0
    for upper, count in buckets:
        top = max(top, count)
        fixed.append((upper, top))
    total = fixed[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    i = next(i for i, (_, c) in enumerate(fixed) if c >= rank)
    if i == len(fixed) - 1:
        return fixed[-2][0]
    upper, count = fixed[i]
    lower, prev = (0.0, 0.0) if i == 0 else fixed[i - 1]
    if i == 0 and upper <= 0:
        return upper
    if count == prev:
        return upper
    return lower + (upper - lower) * (rank - prev) / (count - prev)
