"""Routing checked against the alerts the stack really generates (check ids `routes/*`).

A route is only as good as the labels it matches on. Each generated alert (every rule of
`prometheus_rules.rule_files`, plus the external labels Prometheus adds when it sends it) is
described by the labels whose values stackgen knows (`alertname`, `severity`, `kpi`, the
group's labels, `job`, `env`, ...) and the labels it carries with values only the scraped
series know (`instance`, `mountpoint`, `gpu`, ...). Against that set:

- every label a route matcher names must be carried by some alert (did-you-mean from them);
- every route (with its parents' matchers) must match at least one alert;
- every `group_by` label must be carried by some alert.

A custom KPI whose expression keeps labels stackgen cannot know (anything but an aggregation
without `by`) makes the first and last checks warnings: its alerts may carry any label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackgen import matchers as M
from stackgen.model import GPUS, GROUP_LABEL, HOSTS, Model
from stackgen.spec.schema import did_you_mean

# Labels that the series behind a KPI's alerts carry, with values known only at run time.
SERIES_LABELS = {HOSTS: ("instance",), GPUS: ("instance", "gpu", "UUID", "device",
                                              "modelName", "Hostname", "pci_bus_id")}
# Labels of the series behind the stack's own alerts, besides job and instance.
STACK_ALERT_LABELS = {
    "PrometheusRuleEvaluationFailures": ("rule_group",),
    "PrometheusNotificationsFailing": ("alertmanager",),
    "AlertmanagerNotificationsFailing": ("integration",),
}
# Labels the Prometheus Operator adds to targets of a ServiceMonitor.
KUBERNETES_LABELS = ("namespace", "pod", "container", "endpoint")


@dataclass
class AlertLabels:
    """The labels one generated alert arrives at Alertmanager with."""

    known: dict  # label -> value stackgen knows
    free: set = field(default_factory=set)  # labels whose values come from the series
    open: bool = False  # may carry further labels (a custom expression keeps them)

    def names(self) -> set:
        return set(self.known) | self.free

    def may_match(self, m: M.Matcher) -> bool:
        if m.name in self.known:
            return m.matches(self.known)
        if m.name in self.free or self.open:
            return True  # some value of the series may match
        return m.matches({})  # absent label: Alertmanager reads it as ""

    def example(self) -> dict:
        """A concrete label set: free labels get a plausible value."""
        samples = {"instance": "target:9100", "mountpoint": "/", "gpu": "0"}
        out = dict(self.known)
        for name in sorted(self.free):
            out.setdefault(name, samples.get(name, "x"))
        return out


def _custom_is_open(expr: str) -> bool:
    """Whether a custom expression may keep labels of its series (anything but numbers and
    aggregations without `by`, combined by operators)."""
    try:
        import promql_parser

        return _open(promql_parser.parse(expr))
    except ValueError:
        return True


def _open(node) -> bool:
    while type(node).__name__ == "ParenExpr":
        node = node.expr
    kind = type(node).__name__
    if kind == "NumberLiteral":
        return False
    if kind == "AggregateExpr":
        modifier = getattr(node, "modifier", None)
        return modifier is not None and bool(getattr(modifier, "labels", None))
    if kind == "BinaryExpr":
        return _open(node.lhs) or _open(node.rhs)
    return True


def alert_label_sets(model: Model) -> list[AlertLabels]:
    """Every alert rule stackgen generates, as the labels it reaches Alertmanager with."""
    from stackgen.generators.prometheus_rules import rule_files

    s = model.stack
    external = {"stack": s.name, "env": s.environment, **dict(s.external_labels)}
    by_group = {}
    for g in model.groups:
        for k in g.kpis:
            by_group[(g.group_label, g.name, k.name)] = (g, k)
    out = []
    for _, data in rule_files(model):
        for group in data["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                labels = rule.get("labels", {})
                a = AlertLabels({**external, "alertname": rule["alert"], **labels})
                if labels.get("kpi") == "up":  # target down: up{job=...} keeps its target
                    a.known["job"] = rule["expr"].split('"')[1]
                    a.free.add("instance")
                elif labels.get("kpi") == "stack":
                    a.known["job"] = labels.get("service", "")
                    a.free.update(("instance", *STACK_ALERT_LABELS.get(rule["alert"], ())))
                else:
                    hit = next((by_group[key] for key in
                                ((glabel, labels[glabel], labels.get("kpi"))
                                 for glabel in GROUP_LABEL.values() if glabel in labels)
                                if key in by_group), None)
                    if hit:
                        g, k = hit
                        if k.kind == "custom":
                            a.open = _custom_is_open(k.expr)
                        elif not k.record_labels:  # per-target KPI: keeps the series' labels
                            a.known["job"] = g.job
                            a.free.update(SERIES_LABELS.get(g.kind, ("instance",)) + k.per)
                        if g.kubernetes is not None and (a.free or a.open):
                            a.free.update(KUBERNETES_LABELS)
                out.append(a)
    return out


def check(mapper, model: Model, raw: dict) -> None:
    """Report routing mistakes through `mapper.error` / `mapper.warn` at their lines."""
    alerts = alert_label_sets(model)
    names = set().union(*(a.names() for a in alerts)) if alerts else set()
    open_ = [a.known.get("alertname") for a in alerts if a.open]
    shown = ", ".join(sorted(names))

    def unknown_label(path, what, name):
        msg = (f"{what}: no alert that this stack generates carries label {name!r}"
               f"{did_you_mean(name, names)} (their labels: {shown})")
        if open_:
            mapper.warn(path, "routes/label", msg + f"; custom alert {open_[0]} may carry it")
        else:
            mapper.error(path, "routes/label", msg)

    for j, name in enumerate(raw.get("group_by", [])):
        if name != "..." and name not in names:
            unknown_label(("alerting", "group_by", j), "alerting.group_by", name)

    def visit(items, routes, path, label, candidates):
        """`candidates`: the alerts that reach these routes; None after an error above."""
        for i, (r_raw, r) in enumerate(zip(items, routes)):
            rp = path + (i,)
            text = f"{label}[{i}]"
            left = candidates
            for j, m_text in enumerate(r.matchers):
                m = M.parse(m_text)
                mp = rp + ("matchers", j)
                if m.name not in names:
                    unknown_label(mp, f"alerting.{text}", m.name)
                    left = None  # already reported: no second error for the same route
                    continue
                if left is None:
                    continue
                before = left
                left = [a for a in left if a.may_match(m)]
                if not left:
                    values = sorted({a.known[m.name] for a in before if m.name in a.known})
                    hint = did_you_mean(m.value, values) if m.op == "=" else ""
                    seen = f" (values of {m.name} on them: {', '.join(values)})" if values else ""
                    mapper.error(mp, "routes/unmatched",
                                 f"alerting.{text} matches none of the alerts this stack "
                                 f"generates: {m_text} matches none of the {len(before)} that "
                                 f"reach it{seen}{hint}")
                    left = None
            if left is not None and not left and not r.matchers:
                mapper.error(rp, "routes/unmatched",
                             f"alerting.{text} matches none of the alerts this stack generates")
                left = None
            for j, name in enumerate(r_raw.get("group_by", [])):
                if name != "..." and name not in names:
                    unknown_label(rp + ("group_by", j), f"alerting.{text}.group_by", name)
            visit(r_raw.get("routes", []), r.routes, rp + ("routes",), f"{text}.routes", left)

    spec_routes = tuple(r for r in model.alerting.routes if r.path != "heartbeat")
    visit(raw.get("routes", []), spec_routes, ("alerting", "routes"), "routes", alerts)
