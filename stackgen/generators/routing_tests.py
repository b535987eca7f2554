"""alertmanager/tests/routing.test.yml: where alerts go, checked by `amtool config routes test`.

Cases, each a label set and the receivers Alertmanager must pick, in order:
- one per route (labels built from its matchers and its parents'): proves the route is
  reachable, or that an earlier route takes its alerts (the order of routes);
- one per distinct label set of the generated alerts, as they reach Alertmanager (rule labels,
  external labels, the labels of their series with sample values): where the spec's own
  alerts go;
- one that matches no route: the default receiver.
Expected receivers come from stackgen's own model of Alertmanager's routing tree; amtool,
reading the generated alertmanager.yml, is the judge.
"""

from __future__ import annotations

import re

from stackgen import matchers as M
from stackgen.artifact import Artifact, to_yaml
from stackgen.model import Model, Route

PATH = "alertmanager/tests/routing.test.yml"


def route_receivers(routes: tuple, default: str, labels: dict) -> list[str]:
    """Alertmanager's routing: the first matching child (and later ones while `continue`),
    depth first; a node no child takes is its own receiver."""
    out = []
    for r in routes:
        if all(M.parse(m).matches(labels) for m in r.matchers):
            out.extend(route_receivers(r.routes, r.receiver, labels))
            if not r.continue_:
                break
    return out or [default]


def _value_for(m: M.Matcher) -> str | None:
    """A label value that satisfies matcher `m`."""
    if m.op == "=":
        return m.value
    candidates = ["critical", "warning", "x", "0", "stackgen-routing-probe"]
    alts = [a for a in re.split(r"[|()^$]", m.value) if a and re.fullmatch(r"[\w.:-]+", a)]
    for v in alts + candidates:
        if m.matches({m.name: v}):
            return v
    return None


def _labels_for(path: list[Route]) -> dict | None:
    labels: dict = {"alertname": "StackgenRoutingProbe"}
    for r in path:
        for text in r.matchers:
            m = M.parse(text)
            if m.matches(labels):
                continue
            if m.name in labels:
                return None  # this route's matchers contradict its parents'
            v = _value_for(m)
            if v is None:
                return None
            labels[m.name] = v
    if all(M.parse(t).matches(labels) for r in path for t in r.matchers):
        return labels
    return None


def _walk(routes: tuple, parents: list):
    for r in routes:
        yield parents + [r]
        yield from _walk(r.routes, parents + [r])


def cases(model: Model, alert_label_sets: list[dict]) -> list[dict]:
    a = model.alerting
    out = []
    for path in _walk(a.routes, []):
        r = path[-1]
        labels = _labels_for(path)
        if labels is None:
            continue
        out.append({
            "name": f"{r.path} ({', '.join(r.matchers) or 'no matchers'}) -> {r.receiver}",
            "labels": labels,
            "receivers": route_receivers(a.routes, a.default_receiver, labels),
        })
    seen = set()
    for labels in alert_label_sets:
        key = tuple(sorted(labels.items()))
        if key in seen:
            continue
        seen.add(key)
        desc = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())
                         if k not in ("alertname", "stack", "env"))
        out.append({
            "name": f"alert {labels.get('alertname')} ({desc})",
            "labels": labels,
            "receivers": route_receivers(a.routes, a.default_receiver, labels),
        })
    probe = {"alertname": "StackgenRoutingProbe", "stackgen_probe": "default"}
    out.append({
        "name": f"an alert no route matches -> default receiver {a.default_receiver}",
        "labels": probe,
        "receivers": route_receivers(a.routes, a.default_receiver, probe),
    })
    return out


def alert_labels(model: Model) -> list[dict]:
    """The label sets every alert rule stackgen generates reaches Alertmanager with: its rule
    labels, `alertname`, the external labels, and the labels of its series (`instance`,
    `mountpoint`, ... with a sample value)."""
    from stackgen.spec.routing_check import alert_label_sets

    return [a.example() for a in alert_label_sets(model)]


def generate(model: Model) -> list[Artifact]:
    data = {
        "config": "../alertmanager.yml",
        "cases": cases(model, alert_labels(model)),
    }
    return [Artifact(PATH, to_yaml(data, model.spec_name))]
