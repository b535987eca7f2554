"""`stackgen smoke`: build a spec for test, run it natively, and prove the stack works.

1. The spec gets a test override (stackgen.runtime.override): demo exporters for every
   target, local sinks for every receiver, 1s intervals, 2s `for`. It is built with the
   normal generators into a temp folder (plus: TargetDown's fixed `for: 2m` is cut to 2s
   there), then Prometheus and Alertmanager run as `stackgen up` runs them.
2. Checks, each with its time:
   - every scrape target is up; every rule group evaluates without error;
   - every query of every generated Grafana panel returns data from the live Prometheus;
   - the healthy baseline fires no KPI alert;
   - one incident per KPI that has thresholds, and a target down: the alert goes pending,
     fires, reaches exactly the receivers the spec's routes promise (through the real Slack,
     email, webhook and PagerDuty integrations, with its runbook and dashboard links), a
     warning is inhibited while the critical alert of the same KPI fires, and it resolves
     (send_resolved notification) when the incident ends. Incidents that disturb no other
     incident's KPIs run concurrently.
3. A report; any failure names what broke.

A hidden `sabotage` (rule | route | panel) breaks the built files on purpose, for tests.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import yaml

from stackgen import layout
from stackgen.generators import prometheus_rules as R
from stackgen.generators.routing_tests import route_receivers
from stackgen.model import GPUS, HOSTS, Group, Kpi, Model
from stackgen.runtime import override as O
from stackgen.runtime import procs
from stackgen.runtime.demo_exporter import DOWN, DemoExporter, Incident, IncidentError, \
    reserve_sockets
from stackgen.runtime.native import NativeStack, UpError
from stackgen.runtime.procs import LOOPBACK, MissingBinary, StartError, http_get
from stackgen.runtime.sinks import SmtpSink, WebhookSink
from stackgen.spec.units import duration_seconds

SABOTAGES = ("rule", "route", "panel")
POLL = 0.25
RATE_WINDOW_S = duration_seconds(O.RATE_WINDOW)
FOR_S = duration_seconds(O.FOR)


@dataclass
class Check:
    name: str
    ok: bool = True
    seconds: float = 0.0
    detail: str = ""
    failures: list = field(default_factory=list)

    def fail(self, message: str):
        self.ok = False
        self.failures.append(message)


@dataclass
class Result:
    spec: str
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    pids: dict = field(default_factory=dict)  # every process started: name -> pid
    seconds: float = 0.0
    sabotage: str | None = None  # what was broken on purpose
    sabotaged: str | None = None  # the KPI id the sabotage is about, if any
    interrupted: bool = False
    error: str | None = None  # setup failure (invalid spec, missing binary): exit 2

    @property
    def ok(self) -> bool:
        return not self.error and not self.interrupted and bool(self.checks) and \
            all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[str]:
        out = [f"{c.name}: {f}" for c in self.checks for f in c.failures]
        if self.error:
            out.insert(0, self.error)
        return out

    def summary(self) -> str:
        lines = []
        if self.error:
            lines.append(f"smoke could not run: {self.error}")
        passed = sum(c.ok for c in self.checks)
        if self.ok:
            lines.append(f"smoke PASSED: {passed} checks in {self.seconds:.1f}s")
        elif not self.error:
            failed = [c for c in self.checks if not c.ok]
            lines.append(f"smoke FAILED ({'interrupted, ' if self.interrupted else ''}"
                         f"{len(failed)} of {len(self.checks)} checks failed, "
                         f"{self.seconds:.1f}s):")
            lines.extend(f"  - {f}" for f in self.failures)
        return "\n".join(lines)


def _fmt_check(c: Check) -> str:
    head = f"{'PASS' if c.ok else 'FAIL'}  {c.name} ({c.seconds:.1f}s)"
    if c.detail:
        head += f": {c.detail}"
    return "\n".join([head] + [f"      {f}" for f in c.failures])


# -- the live stack -----------------------------------------------------------------------
class LiveError(RuntimeError):
    pass


class Live:
    """Prometheus and Alertmanager HTTP APIs, with short caches for concurrent pollers."""

    def __init__(self, stack: NativeStack):
        self.stack = stack
        self._lock = threading.Lock()
        self._cache: dict = {}

    def _get(self, url: str) -> dict:
        status, body = http_get(url, timeout=5)
        if status == 0:
            raise LiveError(f"no answer from {url}")
        try:
            data = json.loads(body)
        except ValueError:
            raise LiveError(f"{url}: HTTP {status}, not JSON: {body[:200]!r}") from None
        if status != 200 and not (isinstance(data, dict) and "error" in data):
            raise LiveError(f"{url}: HTTP {status}")
        return data

    def prom(self, path: str, **params) -> dict:
        url = self.stack.prom(path) + ("?" + urllib.parse.urlencode(params) if params else "")
        data = self._get(url)
        if data.get("status") != "success":
            raise LiveError(data.get("error") or f"{path}: {data}")
        return data["data"]

    def query(self, q: str) -> tuple[list, str | None]:
        try:
            data = self.prom("/api/v1/query", query=q)
        except LiveError as exc:
            return [], str(exc)
        return data.get("result") or [], None

    def _cached(self, key, fetch, ttl=0.2):
        with self._lock:
            hit = self._cache.get(key)
            if hit and time.time() - hit[0] < ttl:
                return hit[1]
        value = fetch()
        with self._lock:
            self._cache[key] = (time.time(), value)
        return value

    def prom_alerts(self) -> list:
        return self._cached("prom", lambda: self.prom("/api/v1/alerts").get("alerts", []))

    def am_alerts(self) -> list:
        url = self.stack.am("/api/v2/alerts?active=true&silenced=true&inhibited=true"
                            "&unprocessed=true")
        return self._cached("am", lambda: self._get(url))


def _matches(labels: dict, subset: dict) -> bool:
    return all(labels.get(k) == v for k, v in subset.items())


def find_prom(alerts: list, subset: dict, states=("pending", "firing")) -> dict | None:
    for a in alerts:
        if a.get("state") in states and _matches(a.get("labels", {}), subset):
            return a
    return None


def find_am(alerts: list, subset: dict) -> dict | None:
    for a in alerts:
        if _matches(a.get("labels", {}), subset):
            return a
    return None


class Aborted(Exception):
    """The run is being interrupted: incident threads stop waiting at once."""


def wait_for(fn, deadline: float, poll: float = POLL, abort: threading.Event | None = None):
    """fn() until it returns something truthy or the deadline passes (then None)."""
    while True:
        if abort is not None and abort.is_set():
            raise Aborted()
        try:
            value = fn()
        except LiveError:
            value = None
        if value:
            return value
        if time.time() >= deadline:
            return None
        time.sleep(poll)


# -- planning incidents -------------------------------------------------------------------
@dataclass
class Expect:
    alertname: str
    severity: str
    subset: dict  # labels that identify the alert in Prometheus and Alertmanager
    runbook: str | None = None
    dashboard: str | None = None


@dataclass
class Planned:
    id: str
    incident: Incident
    group: Group
    kpi: Kpi | None
    main: Expect
    warning: Expect | None = None
    affected: set = field(default_factory=set)
    keys: set = field(default_factory=set)  # Alertmanager aggregation keys it produces

    @property
    def expects(self) -> list:
        return [self.main] + ([self.warning] if self.warning else [])


def _group_by(model: Model) -> tuple:
    labels = set(model.alerting.group_by)

    def walk(routes):
        for r in routes:
            labels.update(r.group_by or ())
            walk(r.routes)

    walk(model.alerting.routes)
    return tuple(sorted(labels))


def _plan_one(model: Model, exporter: DemoExporter, kpi_id: str) -> Planned:
    inc = exporter.plan(kpi_id)
    g = exporter.sim.group(inc.group)
    if inc.kind == DOWN:
        target = g.targets[inc.targets[0]]
        main = Expect("TargetDown", "critical",
                      {"alertname": "TargetDown", "job": g.job, "instance": target},
                      g.runbook_url, layout.group_url(model, g))
        return Planned(inc.kpi_id, inc, g, None, main)
    index = next(i for i, k in enumerate(g.kpis) if k.name == inc.kpi)
    kpi = g.kpis[index]
    base = {"kpi": kpi.name, g.group_label: g.name}
    if g.kind in (HOSTS, GPUS):
        base["instance"] = g.targets[inc.targets[0]]
    if g.kind == GPUS:
        base["gpu"] = "0"
    t = inc.threshold
    name = R.alert_name(kpi, t)
    urls = (g.runbook_url, layout.kpi_url(model, g, index))
    main = Expect(name, t.severity, {"alertname": name, "severity": t.severity, **base}, *urls)
    warning = None
    if t.severity == "critical":
        w = next((x for x in inc.crossed if x.severity == "warning" and x.below == t.below),
                 None)
        if w is not None:
            warning = Expect(name, "warning", {"alertname": name, "severity": "warning",
                                               **base}, *urls)
    return Planned(inc.kpi_id, inc, g, kpi, main, warning)


def plan(model: Model, exporter: DemoExporter, only=None) -> tuple[list, list]:
    """(waves of Planned incidents, notes). One incident per KPI with thresholds, and a
    target down on the group with the fewest KPIs; incidents share a wave when neither
    moves a KPI the other reads and their alerts fall into different notification groups."""
    notes, planned = [], []
    ids = []
    for g in model.groups:
        for k in g.kpis:
            if not k.thresholds:
                notes.append(f"{g.name}/{k.name}: no thresholds, so no alert to drive")
                continue
            ids.append(f"{g.name}/{k.name}")
    if model.groups:
        fewest = min(model.groups, key=lambda g: sum(1 for k in g.kpis if k.thresholds))
        ids.append(f"{fewest.name}/{DOWN}")
    if only is not None:
        wanted = set(only)
        unknown = wanted - set(ids) - {i.split("/")[0] + "/*" for i in ids}
        notes.extend(f"only {x}: no such incident (choose from {', '.join(ids)})"
                     for x in sorted(unknown))
        ids = [i for i in ids if i in wanted or i.split("/")[0] + "/*" in wanted]
    for kpi_id in ids:
        try:
            planned.append(_plan_one(model, exporter, kpi_id))
        except IncidentError as exc:
            notes.append(f"{kpi_id}: not driven: {exc}")
    before = exporter.sim.kpi_values()
    group_by = _group_by(model)
    for p in planned:
        p.affected = exporter.sim.affected(p.incident, before) | {p.id}
        labels = {**dict(p.group.target_labels), **p.main.subset}
        if "..." in group_by:
            p.keys = {(p.id,)}
        else:
            p.keys = {(e.alertname,) + tuple(labels.get(x, "") for x in group_by
                                             if x != "alertname") for e in p.expects}
    waves: list = []
    for p in planned:
        for wave in waves:
            if all(not (p.affected & q.affected) and not (p.keys & q.keys) for q in wave):
                wave.append(p)
                break
        else:
            waves.append([p])
    return waves, notes


# -- running one incident -----------------------------------------------------------------
class Ctx:
    def __init__(self, model, live, exporter, web, smtp, ov, echo):
        self.model, self.live, self.exporter = model, live, exporter
        self.web, self.smtp, self.ov, self.echo = web, smtp, ov, echo
        self.abort = threading.Event()

    def wait(self, fn, deadline: float):
        return wait_for(fn, deadline, abort=self.abort)

    def deliveries(self) -> list:
        return self.web.snapshot() + self.smtp.snapshot()

    def endpoints(self, receivers: list) -> set:
        return {(integ, r, i) for r in receivers for integ, i in self.ov.endpoints.get(r, [])}


def _mentions(d, severity: str, summary: str) -> bool:
    if d.integration == "slack":
        return f"*{severity.upper()}* {summary}" in d.text
    if d.integration == "email":
        return f"{severity.upper()}: {summary}" in d.text
    return summary in d.text


def _ep(e: tuple) -> str:
    return f"{e[0]}:{e[1]}" + (f"#{e[2]}" if e[2] else "")


def _eps(es) -> str:
    return ", ".join(sorted(_ep(e) for e in es)) or "none"


def run_incident(ctx: Ctx, p: Planned) -> Check:
    inc = p.incident
    what = "target down" if inc.kind == DOWN else inc.kind
    c = Check(f"incident {p.id} ({what})")
    m = p.main
    label = f"{m.alertname} ({m.severity})"
    live = ctx.live
    t0 = time.time()
    steps = []
    ctx.exporter.start_incident(incident=inc)
    ended = False
    try:
        # 1. pending, 2. firing
        a = ctx.wait(lambda: find_prom(live.prom_alerts(), m.subset),
                     t0 + RATE_WINDOW_S + FOR_S + 15)
        if a is None:
            c.fail(f"{label} never went pending within {time.time() - t0:.0f}s of the {what}"
                   f"{_kpi_value_note(ctx, p)}")
            return c
        steps.append(f"pending {time.time() - t0:.1f}s")
        t_pending = time.time()
        a = ctx.wait(lambda: find_prom(live.prom_alerts(), m.subset, ("firing",)),
                     t_pending + FOR_S + 10)
        if a is None:
            c.fail(f"{label} went pending but did not fire within {FOR_S + 10:.0f}s")
            return c
        steps.append(f"firing {time.time() - t0:.1f}s")
        ann = a.get("annotations", {})
        summary = ann.get("summary", "")
        for key, want in (("runbook_url", m.runbook), ("dashboard_url", m.dashboard)):
            if want and ann.get(key) != want:
                c.fail(f"{label}: annotation {key} is {ann.get(key)!r}, expected {want!r}")
        # 3. Alertmanager has it: where must it go?
        am = ctx.wait(lambda: find_am(live.am_alerts(), m.subset), time.time() + 10)
        if am is None:
            c.fail(f"{label} fired in Prometheus but never reached Alertmanager")
            return c
        t_am = time.time()
        receivers = route_receivers(ctx.model.alerting.routes,
                                    ctx.model.alerting.default_receiver, am["labels"])
        expected = ctx.endpoints(receivers)

        def arrived(status, since, sev=m.severity, text=summary):
            return {d.endpoint for d in ctx.deliveries()
                    if d.at >= since and d.status == status and _mentions(d, sev, text)}

        # 4. notified, exactly where the routes say
        got = ctx.wait(lambda: expected <= arrived("firing", t0) and arrived("firing", t0),
                       time.time() + 12)
        have = arrived("firing", t0)
        if not expected:
            c.fail(f"{label}: its receivers {receivers} have no integration to check")
        elif got is None:
            c.fail(f"{label} did not reach {_eps(expected - have)} (routes promise "
                   f"{', '.join(receivers)}; it reached {_eps(have)})"
                   f"{_notify_errors(ctx, have, expected)}")
        else:
            steps.append(f"-> {_eps(expected)} {time.time() - t0:.1f}s")
            for d in ctx.deliveries():
                if d.at >= t0 and d.endpoint in expected and d.status == "firing" and \
                        _mentions(d, m.severity, summary):
                    missing = [u for u in (m.runbook, m.dashboard) if u and u not in d.text]
                    if missing:
                        c.fail(f"{label}: the {_ep(d.endpoint)} message lacks "
                               f"{', '.join(missing)}")
                    if d.integration == "email" and ctx.smtp.username and \
                            not d.meta.get("authenticated_as"):
                        c.fail(f"{label}: email arrived without SMTP authentication")
        # 5. a critical alert inhibits the warning of the same KPI
        w_summary = None
        if p.warning is not None:
            w = p.warning
            wa = ctx.wait(lambda: find_prom(live.prom_alerts(), w.subset), time.time() + 8)
            w_summary = wa.get("annotations", {}).get("summary") if wa else None

            def suppressed():
                x = find_am(live.am_alerts(), w.subset)
                st = (x or {}).get("status", {})
                return x if st.get("state") == "suppressed" and st.get("inhibitedBy") else None

            if ctx.wait(suppressed, time.time() + 8) is None:
                x = find_am(live.am_alerts(), w.subset)
                c.fail(f"{w.alertname} (warning) is not inhibited while the critical alert "
                       f"fires (Alertmanager state: "
                       f"{(x or {}).get('status', {}).get('state', 'absent')})")
            else:
                steps.append("warning inhibited")
        # 6. the incident ends: the alert resolves
        ctx.exporter.end_incident(inc)
        ended = True
        t_end = time.time()
        gone = ctx.wait(lambda: not any(find_prom(live.prom_alerts(), e.subset)
                                        for e in p.expects), t_end + RATE_WINDOW_S + 15)
        if not gone:
            c.fail(f"{label} still active {time.time() - t_end:.0f}s after the {what} ended")
        else:
            steps.append(f"resolved {time.time() - t0:.1f}s")
            got = ctx.wait(lambda: expected <= arrived("resolved", t_end), time.time() + 12)
            if got is None and expected:
                c.fail(f"{label}: no resolved notification at "
                       f"{_eps(expected - arrived('resolved', t_end))}")
            elif expected:
                steps.append(f"resolved notice {time.time() - t0:.1f}s")
        # 7. nowhere else, and no warning while the critical fired
        extra = arrived("firing", t0) - expected
        if extra:
            c.fail(f"{label} also reached {_eps(extra)}, which the routes do not promise "
                   f"(they promise {', '.join(receivers)})")
        if w_summary:
            leaked = [d for d in ctx.deliveries() if t_am + 2 < d.at < t_end and
                      d.status == "firing" and _mentions(d, "warning", w_summary)]
            if leaked:
                c.fail(f"{p.warning.alertname} (warning) was notified at "
                       f"{_eps({d.endpoint for d in leaked})} while the critical alert fired")
        return c
    except Aborted:
        c.fail("interrupted")
        return c
    finally:
        if not ended:
            ctx.exporter.end_incident(inc)
        c.seconds = time.time() - t0
        c.detail = f"{label}: " + ", ".join(steps) if steps else label


def _run_incident_safely(ctx: Ctx, p: Planned) -> Check:
    try:
        return run_incident(ctx, p)
    except Exception as exc:  # a bug or a dead server: report it, do not lose the run
        c = Check(f"incident {p.id} ({p.incident.kind})")
        c.fail(f"could not run: {exc!r}{_died(ctx.live.stack)}")
        return c


def _died(stack) -> str:
    dead = stack.died() if stack is not None else []
    return "".join(f"; {d.name} exited with code {d.popen.returncode}:\n{d.log_tail(10)}"
                   for d in dead)


def _kpi_value_note(ctx: Ctx, p: Planned) -> str:
    if p.kpi is None:
        res, _ = ctx.live.query(f'up{{job="{p.group.job}"}}')
        ups = ", ".join(f"{r['metric'].get('instance')}={r['value'][1]}" for r in res)
        return f" (up: {ups or 'no series'})"
    q = f'{p.kpi.record}{{{p.group.group_label}="{p.group.name}"}}'
    res, err = ctx.live.query(q)
    if err or not res:
        return f"; the KPI's recording {q} has {'an error: ' + err if err else 'no data'}"
    vals = ", ".join(f"{float(r['value'][1]):.4g}" for r in res)
    t = p.incident.threshold
    return (f" although the KPI's recorded value {q} is {vals} (the alert fires at "
            f"{t.op} {t.text}): the alert rule does not fire")


def _notify_errors(ctx: Ctx, have, expected) -> str:
    stack = ctx.live.stack
    proc = stack.procs.get("alertmanager")
    if proc is None:
        return ""
    errs = [ln for ln in proc.log_tail(200).splitlines() if "level=error" in ln
            or "level=warn" in ln and "Notify" in ln]
    return ("; Alertmanager says: " + errs[-1][-300:]) if errs else ""


# -- the steady checks --------------------------------------------------------------------
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


_VAR = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
BUILTIN_VARS = {"__rate_interval": O.RATE_WINDOW, "__interval": O.RATE_WINDOW,
                "__range": "1h", "__interval_ms": "5000", "__range_s": "3600",
                "__range_ms": "3600000"}


def substitute(expr: str) -> str:
    """Grafana template variables -> what "All" means: `.*` (built-ins -> durations)."""
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return BUILTIN_VARS.get(name, ".*")

    return _VAR.sub(repl, expr)


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
        return [a for a in live.prom_alerts() if a.get("labels", {}).get("kpi") != "stack"]

    wait_for(lambda: not noisy_alerts(), deadline)
    noisy = noisy_alerts()
    c.seconds = time.time() - t0
    for a in noisy:
        lb = a["labels"]
        c.fail(f"{lb.get('alertname')} ({lb.get('severity')}, {lb.get('kpi')}) is "
               f"{a.get('state')} with value {a.get('value')} while every KPI is healthy")
    c.detail = "no KPI alert pending or firing" if not noisy else ""
    return c


# -- sabotage (tests) ---------------------------------------------------------------------
def _load_yaml(path):
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _dump_yaml(path, data, note):
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
                data = _load_yaml(path)
                name = R.alert_name(k, t)
                for group in data["groups"]:
                    for rule in group["rules"]:
                        if rule.get("alert") == name and \
                                rule.get("labels", {}).get("severity") == "critical":
                            rule["expr"] = f"({rule['expr']}) and on() (vector(0) > 1)"
                _dump_yaml(path, data, "sabotaged by stackgen smoke (test)")
                return (f"alert {name} (critical) of {g.name}/{k.name} can never fire "
                        f"({R.RULES_DIR}/{g.kind}-{g.name}.yml)", f"{g.name}/{k.name}")
        raise ValueError(f"no KPI {which or ''} with a critical threshold to sabotage")
    if kind == "route":
        path = os.path.join(out_dir, "alertmanager", "alertmanager.yml")
        data = _load_yaml(path)
        routes = data["route"].get("routes") or []
        if not routes:
            raise ValueError("no route to sabotage")
        old = routes[0]["receiver"]
        names = [r["name"] for r in data["receivers"]]
        new = next((n for n in [data["route"]["receiver"], *names] if n != old), None)
        if new is None:
            raise ValueError("only one receiver: cannot reroute")
        routes[0]["receiver"] = new
        _dump_yaml(path, data, "sabotaged by stackgen smoke (test)")
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


def _shorten_target_down(out_dir: str) -> None:
    """TargetDown's `for: 2m` is fixed by the generator, not the spec: cut it for the test."""
    path = os.path.join(out_dir, R.RULES_DIR, "stack.yml")
    data = _load_yaml(path)
    for group in data.get("groups", []):
        for rule in group.get("rules", []):
            if rule.get("alert") == "TargetDown":
                rule["for"] = O.FOR
    _dump_yaml(path, data, f"stackgen smoke: TargetDown `for` cut to {O.FOR} for the test")


# -- the whole run ------------------------------------------------------------------------
def run(spec: str, *, sabotage_kind: str | None = None, only=None, work_dir: str | None = None,
        keep: bool = False, echo=None) -> Result:
    """Run the smoke test of `spec`; `only`: incident ids (group/kpi, group/down) to run."""
    from stackgen import writer
    from stackgen.build import compile_spec
    from stackgen.problems import SpecError
    from stackgen.spec import load
    from stackgen.spec.source import load_file

    say = echo or (lambda text: None)
    res = Result(spec=spec)
    t_start = time.time()
    tmp = work_dir or tempfile.mkdtemp(prefix="stackgen-smoke-")
    os.makedirs(tmp, exist_ok=True)
    sockets: dict = {}
    exporter = stack = web = smtp = None

    def done(check: Check):
        res.checks.append(check)
        say(_fmt_check(check))

    with procs.stop_on_signals():
        try:
            # -- build the spec under test ------------------------------------------------
            t0 = time.time()
            try:
                load(spec)
            except SpecError as exc:
                res.error = f"{spec} is invalid:\n" + "\n".join(f"  {p}" for p in exc.problems)
                return res
            for component in ("prometheus", "alertmanager"):
                procs.find_binary(component)
            src, problems = load_file(spec)
            web = WebhookSink().start()
            smtp = SmtpSink().start()
            sockets = reserve_sockets([_GroupStub(n, c) for n, c in
                                       O.target_counts(src.data).items()])
            targets = {k: f"{LOOPBACK}:{s.getsockname()[1]}" for k, s in sockets.items()}
            ov = O.apply(src.data, os.path.join(tmp, "spec"), targets, web.url, smtp.address)
            smtp.username, smtp.password = ov.smtp_user, ov.smtp_password
            smtp.rcpt_receivers = {a.lower(): v for a, v in ov.emails.items()}
            out_dir = os.path.join(tmp, "out")
            try:
                model, artifacts, warnings = compile_spec(ov.spec, out_dir)
            except SpecError as exc:
                res.error = ("the test override made the spec invalid (a stackgen bug):\n"
                             + "\n".join(f"  {p}" for p in exc.problems))
                return res
            writer.write(out_dir, artifacts)
            _shorten_target_down(out_dir)
            res.notes.extend(ov.notes)
            if sabotage_kind:
                try:
                    res.sabotage, res.sabotaged = sabotage(sabotage_kind, out_dir, model)
                except ValueError as exc:
                    res.error = f"sabotage {sabotage_kind}: {exc}"
                    return res
                say(f"sabotage: {res.sabotage}")
            done(Check("build", detail=f"{len(artifacts)} files from the spec with its test "
                       f"override in {out_dir}", seconds=time.time() - t0))
            # -- start ----------------------------------------------------------------------
            t0 = time.time()
            exporter = DemoExporter(model, sockets=sockets)
            sockets = {}
            exporter.start()
            data_dir = os.path.join(tmp, "data")
            if os.path.isfile(os.path.join(data_dir, "runtime.json")):  # an earlier --keep run
                shutil.rmtree(data_dir)
            stack = NativeStack(model, out_dir, data_dir, am_extra=O.pagerduty_extra(ov))
            try:
                stack.start()
            finally:
                res.pids = dict(stack.pids)
            res.notes.extend(stack.notes + exporter.sim.notes)
            for note in res.notes:
                say(f"note: {note}")
            done(Check("start", seconds=time.time() - t0, detail=(
                f"Prometheus {stack.urls['prometheus']} (pid {stack.pids['prometheus']}), "
                f"Alertmanager {stack.urls['alertmanager']} (pid {stack.pids['alertmanager']})"
                f", {len(exporter.endpoints())} demo targets, sinks {web.address} (HTTP) and "
                f"{smtp.address} (SMTP)")))
            live = Live(stack)
            # -- steady state ---------------------------------------------------------------
            done(check_targets(live, model, time.time() + 25))
            done(check_rules(live, time.time() + 15))
            done(check_panels(live, out_dir, time.time() + 20))
            done(check_baseline(live, time.time() + RATE_WINDOW_S + FOR_S + 10))
            # -- incidents ------------------------------------------------------------------
            waves, notes = plan(model, exporter, only)
            res.notes.extend(notes)
            for note in notes:
                say(f"note: {note}")
            ctx = Ctx(model, live, exporter, web, smtp, ov, say)
            for n, wave in enumerate(waves, 1):
                say(f"wave {n}/{len(waves)}: {', '.join(p.id for p in wave)}")
                quiet = wait_for(lambda wave=wave: not any(
                    find_prom(live.prom_alerts(), e.subset) for p in wave for e in p.expects),
                    time.time() + RATE_WINDOW_S + 15)
                if not quiet:
                    c = Check(f"wave {n} start")
                    c.fail("alerts of " + ", ".join(p.id for p in wave) + " were still active "
                           "before their incidents began")
                    done(c)
                pool = ThreadPoolExecutor(max_workers=max(1, len(wave)),
                                          thread_name_prefix="smoke-incident")
                try:
                    for check in pool.map(lambda p: _run_incident_safely(ctx, p), wave):
                        done(check)
                except BaseException:
                    ctx.abort.set()  # incident threads stop waiting and end their incidents
                    raise
                finally:
                    pool.shutdown(wait=True)
        except (MissingBinary, UpError) as exc:
            res.error = str(exc)
        except OSError as exc:
            res.error = f"cannot set up the run: {exc}"
        except LiveError as exc:
            c = Check("live stack")
            c.fail(f"{exc}{_died(stack)}")
            done(c)
        except StartError as exc:
            c = Check("start")
            c.fail(str(exc))
            done(c)
        except KeyboardInterrupt:
            res.interrupted = True
            say("interrupted: stopping everything")
        finally:
            if stack is not None:
                res.pids = {**res.pids, **stack.pids}
                stack.stop()
            if exporter is not None:
                exporter.stop()
            for s in sockets.values():
                s.close()
            for sink in (web, smtp):
                if sink is not None:
                    sink.stop()
            res.seconds = time.time() - t_start
            if not keep and work_dir is None:
                shutil.rmtree(tmp, ignore_errors=True)
    return res


@dataclass
class _GroupStub:
    name: str
    count: int

    @property
    def targets(self):
        return [None] * self.count


def leftover(pids: dict) -> list[str]:
    """Processes of a finished run that still exist (there should be none)."""
    return [f"{name} (pid {pid})" for name, pid in pids.items() if procs.pid_running(pid)]


def main(spec: str, *, sabotage_kind=None, only=None, keep=None, echo=print) -> int:
    """The `stackgen smoke` command; returns the exit code (0 pass, 1 fail, 2 cannot run)."""
    echo(f"stackgen smoke: {spec}")
    res = run(spec, sabotage_kind=sabotage_kind, only=only, work_dir=keep, keep=bool(keep),
              echo=echo)
    left = leftover(res.pids)
    if left:
        res.checks.append(Check("cleanup", ok=False, failures=[
            f"still running after the run: {', '.join(left)}"]))
    echo(res.summary())
    if res.error:
        return 2
    return 0 if res.ok else 1

