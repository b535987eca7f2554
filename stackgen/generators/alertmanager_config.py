"""alertmanager/alertmanager.yml and alertmanager/templates/stackgen.tmpl.

Routes use `matchers` (never the deprecated `match`); every secret is a `*_file` field that
points where the runtime mounts it (`/run/secrets/<name>` under Compose).
"""

from __future__ import annotations

from stackgen.artifact import MARK, Artifact, to_yaml
from stackgen.model import Model, Route
from stackgen.templating import render

PATH = "alertmanager/alertmanager.yml"
TEMPLATE_PATH = "alertmanager/templates/stackgen.tmpl"

# Labels that identify "the same KPI and target" for inhibition of warning by critical.
INHIBIT_EQUAL = ["alertname", "kpi", "service", "host_group", "gpu_group", "instance",
                 "mountpoint", "gpu"]


def _route(r: Route) -> dict:
    out: dict = {"receiver": r.receiver}
    if r.matchers:
        out["matchers"] = list(r.matchers)
    if r.group_by is not None:
        out["group_by"] = list(r.group_by)
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if getattr(r, key):
            out[key] = getattr(r, key)
    for key in ("mute_time_intervals", "active_time_intervals"):
        if getattr(r, key):
            out[key] = list(getattr(r, key))
    if r.continue_:
        out["continue"] = True
    if r.routes:
        out["routes"] = [_route(c) for c in r.routes]
    return out


def time_intervals(model: Model) -> list[dict]:
    """Top-level `time_intervals` (Alertmanager 0.24 and later), in the spec's order."""
    out = []
    for ti in model.alerting.time_intervals:
        entries = []
        for r in ti.ranges:
            e: dict = {}
            if r.times:
                e["times"] = [{"start_time": s, "end_time": end} for s, end in r.times]
            for key in ("weekdays", "days_of_month", "months", "years"):
                if getattr(r, key):
                    e[key] = list(getattr(r, key))
            if r.location:
                e["location"] = r.location
            entries.append(e)
        out.append({"name": ti.name, "time_intervals": entries})
    return out


def receivers(model: Model, secret_path=lambda s: s.mount) -> list[dict]:
    out = []
    for r in model.alerting.receivers:
        rec: dict = {"name": r.name}
        if r.slack:
            rec["slack_configs"] = [{
                "api_url_file": secret_path(c.api_url),
                "channel": c.channel,
                "send_resolved": c.send_resolved,
                "title": c.title or '{{ template "stackgen.title" . }}',
                "text": c.text or '{{ template "stackgen.text" . }}',
            } for c in r.slack]
        if r.email:
            rec["email_configs"] = [{
                "to": c.to,
                "send_resolved": c.send_resolved,
                "headers": {"Subject": '{{ template "stackgen.email.subject" . }}'},
                "html": '{{ template "stackgen.email.html" . }}',
            } for c in r.email]
        if r.webhook:
            rec["webhook_configs"] = [{
                "url_file": secret_path(c.url),
                "send_resolved": c.send_resolved,
                **({"max_alerts": c.max_alerts} if c.max_alerts else {}),
            } for c in r.webhook]
        if r.pagerduty:
            rec["pagerduty_configs"] = [{
                "routing_key_file": secret_path(c.routing_key),
                "send_resolved": c.send_resolved,
                "severity": c.severity or '{{ if eq .CommonLabels.severity "critical" }}critical'
                                          '{{ else }}warning{{ end }}',
                "description": '{{ template "stackgen.title" . }}',
            } for c in r.pagerduty]
        out.append(rec)
    return out


def config(model: Model, secret_path=lambda s: s.mount) -> dict:
    a = model.alerting
    glob: dict = {"resolve_timeout": a.resolve_timeout}
    if a.smtp:
        glob["smtp_smarthost"] = a.smtp.smarthost
        glob["smtp_from"] = a.smtp.from_
        if a.smtp.hello:
            glob["smtp_hello"] = a.smtp.hello
        if a.smtp.auth_username:
            glob["smtp_auth_username"] = a.smtp.auth_username
        if a.smtp.auth_password:
            glob["smtp_auth_password_file"] = secret_path(a.smtp.auth_password)
        if a.smtp.require_tls is not None:
            glob["smtp_require_tls"] = a.smtp.require_tls
    route = {
        "receiver": a.default_receiver,
        "group_by": list(a.group_by),
        "group_wait": a.group_wait,
        "group_interval": a.group_interval,
        "repeat_interval": a.repeat_interval,
    }
    if a.routes:
        route["routes"] = [_route(r) for r in a.routes]
    return {
        "global": glob,
        "templates": ["templates/*.tmpl"],
        "route": route,
        "inhibit_rules": [{
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": INHIBIT_EQUAL,
        }],
        "receivers": receivers(model, secret_path),
        **({"time_intervals": time_intervals(model)} if model.alerting.time_intervals else {}),
    }


def generate(model: Model) -> list[Artifact]:
    template = render("alertmanager/stackgen.tmpl.j2", mark=MARK.format(spec=model.spec_name),
                      stack_name=model.stack.name)
    return [
        Artifact(PATH, to_yaml(config(model), model.spec_name)),
        Artifact(TEMPLATE_PATH, template),
    ]
