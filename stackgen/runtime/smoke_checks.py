"""`stackgen smoke`'s steady checks: every target is up, every rule evaluates, every panel
query returns data, and the healthy baseline fires no KPI alert."""

from __future__ import annotations

import glob
import json
import os
import re
import time

from stackgen.model import Model
from stackgen.runtime import override as O
from stackgen.runtime.live import Live, wait_for
from stackgen.runtime.smoke_report import Check


def check_targets(live: Live, model: Model, deadline: float) -> Check:
    c = Check("targets")
    t0 = time.time()
    expected = sum(len(g.targets) for g in model.groups)

    def all_up():
        ts = live.prom("/api/v1/targets", state="active").get("activeTargets", [])
        ours = [t for t in ts if t.get("labels", {}).get("job") in {g.job for g in model.groups}]
        if len(ours) >= expected and ts and all(t.get("health") == "up" for t in ts):
            return ts
        return None

    ts = wait_for(all_up, deadline)
    if ts is None:
        ts = live.prom("/api/v1/targets", state="active").get("activeTargets", [])
        for t in ts:
            if t.get("health") != "up":
                c.fail(f"job {t['labels'].get('job')} target {t['labels'].get('instance')} is "
                       f"{t.get('health')}: {t.get('lastError') or 'not scraped yet'}")
        jobs = {t["labels"].get("job") for t in ts}
        for g in model.groups:
            if g.job not in jobs:
                c.fail(f"job {g.job} is not scraped at all")
    else:
        c.detail = f"{len(ts)} targets up ({', '.join(sorted({t['labels']['job'] for t in ts}))})"
    c.seconds = time.time() - t0
    return c


def check_rules(live: Live, deadline: float) -> Check:
    c = Check("rules")
    t0 = time.time()

    def evaluated():
        groups = live.prom("/api/v1/rules").get("groups", [])
        rules = [r for g in groups for r in g.get("rules", [])]
        if rules and all(r.get("health") != "unknown" for r in rules):
            return groups
        return None

    groups = wait_for(evaluated, deadline) or live.prom("/api/v1/rules").get("groups", [])
    n = 0
    for g in groups:
        for r in g.get("rules", []):
            n += 1
            name = r.get("name")
            if r.get("health") == "err" or r.get("lastError"):
                c.fail(f"group {g['name']} rule {name}: {r.get('lastError') or 'error'}")
            elif r.get("health") != "ok":
                c.fail(f"group {g['name']} rule {name} was never evaluated")
    if not groups:
        c.fail("Prometheus loaded no rule group")
    c.detail = f"{len(groups)} groups, {n} rules evaluate without error"
    c.seconds = time.time() - t0
    return c


TEMPLATE_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
BUILTINTEMPLATE_VARIABLES = {"__rate_interval": O.RATE_WINDOW, "__interval": O.RATE_WINDOW,
                "__range": "1h", "__interval_ms": "5000", "__range_s": "3600",
                "__range_ms": "3600000"}


def substitute(expr: str) -> str:
    """Grafana template variables -> what "All" means: `.*` (built-ins -> durations)."""
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return BUILTINTEMPLATE_VARIABLES.get(name, ".*")

    return TEMPLATE_VARIABLE.sub(repl, expr)


def panel_queries(out_dir: str) -> list[dict]:
    out = []
    for path in sorted(glob.glob(os.path.join(out_dir, "grafana", "dashboards", "*.json"))):
        with open(path, encoding="utf-8") as fh:
            board = json.load(fh)

        def walk(panels):
            for panel in panels or []:
                yield panel
                yield from walk(panel.get("panels"))

        for panel in walk(board.get("panels")):
            for t in panel.get("targets") or []:
                if t.get("expr"):
                    out.append({"file": os.path.basename(path), "uid": board.get("uid"),
                                "panel": panel.get("id"), "title": panel.get("title"),
                                "ref": t.get("refId", "A"), "expr": t["expr"],
                                "query": substitute(t["expr"])})
    return out


def check_panels(live: Live, out_dir: str, deadline: float) -> Check:
    c = Check("dashboards")
    t0 = time.time()
    queries = panel_queries(out_dir)
    pending = list(queries)
    results: dict = {}
    while pending:
        still = []
        for q in pending:
            res, err = live.query(q["query"])
            results[id(q)] = (res, err)
            if err or not res:
                still.append(q)
        pending = still
        if not pending or time.time() >= deadline:
            break
        time.sleep(0.5)
    for q in pending:
        res, err = results[id(q)]
        c.fail(f"{q['file']} panel {q['panel']} '{q['title']}' ({q['ref']}): query "
               f"`{q['query']}` {'failed: ' + err if err else 'returned no data'}")
    boards = len(glob.glob(os.path.join(out_dir, "grafana", "dashboards", "*.json")))
    c.detail = f"{len(queries) - len(pending)}/{len(queries)} panel queries of {boards} " \
               f"dashboards return data" if boards else "the spec asks for no dashboard"
    c.seconds = time.time() - t0
    return c


def check_baseline(live: Live, deadline: float) -> Check:
    """No KPI alert is pending or firing once every rate window has filled (right after
    start, rate() over a half-empty window reads low, which can make alerts pend briefly)."""
    c = Check("healthy baseline")
    t0 = time.time()

    def noisy_alerts():
        return [a for a in live.prom_alerts()  # the heartbeat always fires, by design
                if a.get("labels", {}).get("kpi") not in ("stack", "heartbeat")]

    wait_for(lambda: not noisy_alerts(), deadline)
    noisy = noisy_alerts()
    c.seconds = time.time() - t0
    for a in noisy:
        lb = a["labels"]
        c.fail(f"{lb.get('alertname')} ({lb.get('severity')}, {lb.get('kpi')}) is "
               f"{a.get('state')} with value {a.get('value')} while every KPI is healthy")
    c.detail = "no KPI alert pending or firing" if not noisy else ""
    return c
