"""A KPI's `filter:`: a plain list of PromQL label matchers that narrows every series the KPI
reads (its recording rule, its SLOs, its dashboard queries, its generated test inputs).

Its matcher-list reader, `matcher_list`, also reads the `errors:` selector (spec/values.py).
"""

from __future__ import annotations

import re

# one PromQL label matcher: name, operator, quoted value ("...", '...' or `...`)
_Q = r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`'
_MATCHER = re.compile(rf"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*({_Q})\s*")
# labels a filter must not match on: stackgen sets them (the scrape job, the metric name) or
# the KPI itself reads them (a histogram's buckets, a summary's quantiles)
RESERVED = {"job": "the service's own scrape job, which stackgen sets",
            "__name__": "the metric name, which the KPI names itself",
            "le": "the histogram's bucket label, which the KPI reads itself",
            "quantile": "the summary's quantile label, which the KPI's `quantile` chooses"}


def matcher_list(text: str) -> list[tuple[str, str, str]] | None:
    """`uri!="/health",method="GET"` (optionally in one pair of braces) as (name, op, quoted
    value) triples; None unless the text is exactly that (nothing can be smuggled after it)."""
    t = text.strip()
    if t.startswith("{") and t.endswith("}"):
        t = t[1:-1]
    out, i = [], 0
    while True:
        m = _MATCHER.match(t, i)
        if not m:
            return None
        out.append(m.groups())
        i = m.end()
        if i == len(t):
            return out
        if t[i] != ",":
            return None
        i += 1
        if not t[i:].strip():
            return out  # a trailing comma, as PromQL allows


def check_filter(m, path: tuple, text: str) -> str | None:
    """The filter at `path` as matchers to add to a selector (`uri!="/health"`), or None
    after reporting why it is not one (m: the mapper)."""
    ms = matcher_list(text)
    if ms is None:
        m.error(path, "kpis/filter", f"filter {text!r} is not a list of label matchers; expected "
                'matchers separated by commas, each with a quoted value, e.g. uri!="/health" '
                'or method="GET",uri!~"/internal/.*"')
        return None
    for name, _, _ in ms:
        if name in RESERVED:
            m.error(path, "kpis/filter", f"filter {text!r} matches on {name!r}, "
                    f"{RESERVED[name]}; remove that matcher")
            return None
    joined = ",".join(f"{n}{op}{v}" for n, op, v in ms)
    if not m.promql(path, f"x{{{joined}}}", f"filter {text!r}"):
        return None  # a bad regular expression, say
    return joined
