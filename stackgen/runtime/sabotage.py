"""Edits of a smoke run's built files: `sabotage` breaks one on purpose (for the tests of
`stackgen smoke` itself), `shorten_target_down` cuts TargetDown's `for` (minutes in real life) for the run."""

from __future__ import annotations

import glob
import json
import os
import re

import yaml

from stackgen.generators import prometheus_rules as R
from stackgen.model import Model
from stackgen.runtime import override as O
from stackgen.runtime.smoke_checks import substitute

SABOTAGES = ("rule", "route", "panel")


def load_yaml(path):
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def dump_yaml(path, data, note):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# {note}\n")
        yaml.safe_dump(data, fh, sort_keys=False, width=10**6)


def sabotage(kind: str, out_dir: str, model: Model) -> tuple[str, str | None]:
    """Break the built files on purpose: (what was broken, the KPI id it is about).

    rule[:<group>/<kpi>]: the critical alert of that KPI (default: the first that has one)
    can never fire; route: routes[0] sends to another receiver; panel: the first panel
    query of the first dashboard reads a metric that does not exist."""
    kind, _, which = kind.partition(":")
    if kind == "rule":
        for g in model.groups:
            for k in g.kpis:
                t = next((t for t in k.thresholds if t.severity == "critical"), None)
                if t is None or (which and which != f"{g.name}/{k.name}"):
                    continue
                path = os.path.join(out_dir, R.RULES_DIR, f"{g.kind}-{g.name}.yml")
                data = load_yaml(path)
                name = R.alert_name(k, t)
                for group in data["groups"]:
                    for rule in group["rules"]:
                        if rule.get("alert") == name and \
                                rule.get("labels", {}).get("severity") == "critical":
                            rule["expr"] = f"({rule['expr']}) and on() (vector(0) > 1)"
                dump_yaml(path, data, "sabotaged by stackgen smoke (test)")
                return (f"alert {name} (critical) of {g.name}/{k.name} can never fire "
                        f"({R.RULES_DIR}/{g.kind}-{g.name}.yml)", f"{g.name}/{k.name}")
        raise ValueError(f"no KPI {which or ''} with a critical threshold to sabotage")
    if kind == "route":
        path = os.path.join(out_dir, "alertmanager", "alertmanager.yml")
        data = load_yaml(path)
        routes = data["route"].get("routes") or []
        if not routes:
            raise ValueError("no route to sabotage")
        old = routes[0]["receiver"]
        names = [r["name"] for r in data["receivers"]]
        new = next((n for n in [data["route"]["receiver"], *names] if n != old), None)
        if new is None:
            raise ValueError("only one receiver: cannot reroute")
        routes[0]["receiver"] = new
        dump_yaml(path, data, "sabotaged by stackgen smoke (test)")
        return (f"route[0] ({', '.join(routes[0].get('matchers', []))}) sends to {new} "
                f"instead of {old}", None)
    if kind == "panel":
        from stackgen.runtime.steady import metric_selectors

        for path in sorted(glob.glob(os.path.join(out_dir, "grafana", "dashboards", "*.json"))):
            with open(path, encoding="utf-8") as fh:
                board = json.load(fh)
            for panel in board.get("panels", []):
                for t in panel.get("targets") or []:
                    if not t.get("expr"):
                        continue
                    names = [m for m, _, _ in metric_selectors(substitute(t["expr"]))]
                    if not names:
                        continue
                    t["expr"] = re.sub(rf"(?<![\w:]){re.escape(names[0])}(?![\w:])",
                                       names[0] + "_sabotaged", t["expr"], count=1)
                    with open(path, "w", encoding="utf-8") as fh:
                        json.dump(board, fh, indent=2)
                    return (f"{os.path.basename(path)} panel {panel.get('id')} "
                            f"'{panel.get('title')}' queries {names[0]}_sabotaged", None)
        raise ValueError("no panel query to sabotage")
    raise ValueError(f"unknown sabotage {kind!r} (one of {', '.join(SABOTAGES)})")


def shorten_target_down(out_dir: str) -> None:
    """Cut TargetDown's `for` (minutes in real life) to seconds for the test."""
    path = os.path.join(out_dir, R.RULES_DIR, "stack.yml")
    data = load_yaml(path)
    for group in data.get("groups", []):
        for rule in group.get("rules", []):
            if rule.get("alert") == "TargetDown":
                rule["for"] = O.FOR
    dump_yaml(path, data, f"stackgen smoke: TargetDown `for` cut to {O.FOR} for the test")
