"""One `stackgen smoke` incident, live: the alert goes pending, fires with its links,
reaches exactly the receivers the routes promise, inhibits its warning, and resolves."""

from __future__ import annotations

import re

import threading
import time

from stackgen.generators.routing_tests import route_receivers
from stackgen.runtime import override as O
from stackgen.runtime.incidents import DOWN
from stackgen.runtime.live import Aborted, find_am, find_prom, wait_for
from stackgen.runtime.smoke_plan import Planned
from stackgen.runtime.smoke_report import Check
from stackgen.spec.units import duration_seconds

RATE_WINDOW_S = duration_seconds(O.RATE_WINDOW)
FOR_S = duration_seconds(O.FOR)


class Ctx:
    def __init__(self, model, live, exporter, web, smtp, ov, echo, patience: float = 1.0):
        self.model, self.live, self.exporter = model, live, exporter
        self.web, self.smtp, self.ov, self.echo = web, smtp, ov, echo
        self.abort = threading.Event()
        self.patience = patience  # < 1: tests that expect a failure wait less for it

    def wait(self, fn, deadline: float):
        now = time.time()
        return wait_for(fn, now + (deadline - now) * self.patience, abort=self.abort)

    def deliveries(self) -> list:
        return self.web.snapshot() + self.smtp.snapshot()

    def endpoints(self, receivers: list) -> set:
        return {(integ, r, i) for r in receivers for integ, i in self.ov.endpoints.get(r, [])}


def mentions(d, severity: str, summary: str) -> bool:
    """Whether a notification carries the alert's line: severity, alert name, summary."""
    name = r"[A-Za-z_:][A-Za-z0-9_:]*"
    if d.integration == "slack":
        return re.search(rf"\*{severity.upper()}\* {name}: {re.escape(summary)}", d.text) \
            is not None
    if d.integration == "email":
        return re.search(rf"{severity.upper()} {name}: {re.escape(summary)}", d.text) is not None
    return summary in d.text


def resolved_endpoints(deliveries, since: float, severity: str, summary: str,
                       warning_summary: str | None, match=None) -> set:
    """Endpoints with a RESOLVED notification since `since` that carries the alert, or (when
    `warning_summary` is given: the two severities share an Alertmanager group) the same
    KPI's warning: once the critical resolves with the value between the thresholds, the
    warning fires uninhibited and the group's resolution names only the warning."""
    match = match or mentions
    out = {d.endpoint for d in deliveries
           if d.at >= since and d.status == "resolved" and match(d, severity, summary)}
    if warning_summary:
        out |= {d.endpoint for d in deliveries if d.at >= since and d.status == "resolved"
                and match(d, "warning", warning_summary)}
    return out


def severities_share_a_group(group_by: tuple, routes: tuple) -> bool:
    """Whether a KPI's warning and critical alerts (the same labels but `severity`) land in
    one Alertmanager group under every route: no group_by anywhere names severity or `...`."""
    def fine(gb) -> bool:
        return gb is None or not ({"severity", "..."} & set(gb))

    def walk(rs) -> bool:
        return all(fine(r.group_by) and walk(r.routes) for r in rs)

    return fine(group_by) and walk(routes)


def endpoint_text(e: tuple) -> str:
    return f"{e[0]}:{e[1]}" + (f"#{e[2]}" if e[2] else "")


def endpoints_text(es) -> str:
    return ", ".join(sorted(endpoint_text(e) for e in es)) or "none"


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
                   f"{kpi_value_note(ctx, p)}")
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

        description = ann.get("description", "")

        def match(d, sev, text):
            """The notification carries the alert: its line, or (a Slack config with its
            own title or text) its summary or description anywhere."""
            return mentions(d, sev, text) or d.endpoint in ctx.ov.custom_text and (
                text in d.text or bool(description) and description in d.text)

        def arrived(status, since, sev=m.severity, text=summary):
            return {d.endpoint for d in ctx.deliveries()
                    if d.at >= since and d.status == status and match(d, sev, text)}

        # 4. notified, exactly where the routes say
        got = ctx.wait(lambda: expected <= arrived("firing", t0) and arrived("firing", t0),
                       time.time() + 12)
        have = arrived("firing", t0)
        if not expected:
            c.fail(f"{label}: its receivers {receivers} have no integration to check")
        elif got is None:
            c.fail(f"{label} did not reach {endpoints_text(expected - have)} (routes promise "
                   f"{', '.join(receivers)}; it reached {endpoints_text(have)})"
                   f"{notify_errors(ctx, have, expected)}")
        else:
            steps.append(f"-> {endpoints_text(expected)} {time.time() - t0:.1f}s")
            for d in ctx.deliveries():
                if d.at >= t0 and d.endpoint in expected - ctx.ov.custom_text and \
                        d.status == "firing" and mentions(d, m.severity, summary):
                    missing = [u for u in (m.runbook, m.dashboard) if u and u not in d.text]
                    if missing:
                        c.fail(f"{label}: the {endpoint_text(d.endpoint)} message lacks "
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
            shared = w_summary if w_summary and severities_share_a_group(
                ctx.model.alerting.group_by, ctx.model.alerting.routes) else None

            def resolved():
                return resolved_endpoints(ctx.deliveries(), t_end, m.severity, summary, shared,
                                          match)

            promised = expected - ctx.ov.no_resolved  # `send_resolved: false` sends none
            got = ctx.wait(lambda: promised <= resolved(), time.time() + 12)
            if got is None and promised:
                c.fail(f"{label}: no resolved notification at "
                       f"{endpoints_text(promised - resolved())}")
            elif promised:
                steps.append(f"resolved notice {time.time() - t0:.1f}s")
        # 7. nowhere else, and no warning while the critical fired
        extra = arrived("firing", t0) - expected
        if extra:
            c.fail(f"{label} also reached {endpoints_text(extra)}, which the routes do not promise "
                   f"(they promise {', '.join(receivers)})")
        if w_summary:
            leaked = [d for d in ctx.deliveries() if t_am + 2 < d.at < t_end and
                      d.status == "firing" and mentions(d, "warning", w_summary)]
            if leaked:
                c.fail(f"{p.warning.alertname} (warning) was notified at "
                       f"{endpoints_text({d.endpoint for d in leaked})} while the critical "
                       "alert fired")
        return c
    except Aborted:
        c.fail("interrupted")
        return c
    finally:
        if not ended:
            ctx.exporter.end_incident(inc)
        c.seconds = time.time() - t0
        c.detail = f"{label}: " + ", ".join(steps) if steps else label


def run_incident_safely(ctx: Ctx, p: Planned) -> Check:
    try:
        return run_incident(ctx, p)
    except Exception as exc:  # a bug or a dead server: report it, do not lose the run
        c = Check(f"incident {p.id} ({p.incident.kind})")
        c.fail(f"could not run: {exc!r}{died(ctx.live.stack)}")
        return c


def died(stack) -> str:
    dead = stack.died() if stack is not None else []
    return "".join(f"; {d.name} exited with code {d.popen.returncode}:\n{d.log_tail(10)}"
                   for d in dead)


def kpi_value_note(ctx: Ctx, p: Planned) -> str:
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


def notify_errors(ctx: Ctx, have, expected) -> str:
    stack = ctx.live.stack
    proc = stack.procs.get("alertmanager")
    if proc is None:
        return ""
    errs = [ln for ln in proc.log_tail(200).splitlines() if "level=error" in ln
            or "level=warn" in ln and "Notify" in ln]
    return ("; Alertmanager says: " + errs[-1][-300:]) if errs else ""
