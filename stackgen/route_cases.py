"""Routing cases that prove the same thing, run once (`stackgen check`).

`amtool config routes test` walks the route tree with one label set per run, and the tree
reads only the labels its matchers name (`matchers`, `match`, `match_re`). Two cases whose
labels agree on every such name, and which expect the same receivers, take the same path
through the tree: amtool's verdict on one is its verdict on the other. So each distinct
(labels the tree reads, expected receivers) runs once, and its verdict stands for every case
that shares it (a large stack has hundreds of alert cases and a handful of distinct paths).
A route tree this module cannot read fully (a matcher it does not parse) keeps every case.
"""

from __future__ import annotations

import re

# a label name followed by a matcher operator; over-reading (a name-like text inside a
# quoted value) only keeps more labels, so cases are never merged wrongly
_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


def routed_label_names(config: dict) -> set | None:
    """Every label name a matcher of the route tree names, or None if a route cannot be
    read (then no case may stand for another)."""
    names: set = set()
    stack = [config.get("route")] if isinstance(config, dict) else []
    while stack:
        route = stack.pop()
        if route is None:
            continue
        if not isinstance(route, dict):
            return None
        for key in ("match", "match_re"):
            value = route.get(key) or {}
            if not isinstance(value, dict):
                return None
            names.update(str(k) for k in value)
        matchers = route.get("matchers") or []
        if not isinstance(matchers, list):
            return None
        for m in matchers:
            if not isinstance(m, str):
                return None
            found = _NAME.findall(m)
            if not found:
                return None
            names.update(found)
        children = route.get("routes") or []
        if not isinstance(children, list):
            return None
        stack.extend(children)
    return names


def representatives(cases: list[dict], config: dict) -> dict:
    """{index of the case that runs: [indexes of the cases its verdict stands for]} (each
    case stands for itself too), in the cases' order."""
    names = routed_label_names(config)
    groups: dict = {}
    out: dict = {}
    for i, case in enumerate(cases):
        if names is None:
            out[i] = [i]
            continue
        labels = case.get("labels") or {}
        key = (tuple(sorted((k, str(v)) for k, v in labels.items() if k in names)),
               tuple(case.get("receivers") or []))
        if key in groups:
            out[groups[key]].append(i)
        else:
            groups[key] = i
            out[i] = [i]
    return out
