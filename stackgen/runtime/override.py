"""The smoke test's override of a spec: every target and receiver local, every timer short.

Applied to the spec's data (as `stackgen.spec.source.load_file` reads it) before the
mapping, so that the stack under test is built by the very same generators:

- every scrape target -> 127.0.0.1:<port of a demo exporter>, one port per target;
- scrape and evaluation every 1s, `stack.rate_window` and the ranges of custom expressions
  (`[5m]`) -> a few seconds, every KPI's `for` -> 2s (KPIs on by default included);
- Alertmanager's group_wait and group_interval (also on routes) -> 1s, repeat_interval -> 1h;
- Slack `api_url_file`, webhook `url_file` -> temp files holding the URL of a local sink at
  /slack/<receiver>/<n>, /webhook/<receiver>/<n>; PagerDuty gets a routing key file (its
  URL is set in the runtime copy of alertmanager.yml: the spec has no field for it);
- email: `to` -> <receiver>-<n>@smoke.stackgen.invalid (so receivers can be told apart),
  `smtp.smarthost` -> the local SMTP sink, `require_tls: false`, a known password.
"""

from __future__ import annotations

import copy
import os
import re
import secrets as _random
from dataclasses import dataclass, field

import yaml

from stackgen import kpis as K
from stackgen.kpis.base import DefaultKind
from stackgen.model import GPUS, HOSTS, SERVICES

RATE_WINDOW = "5s"
INTERVAL = "1s"
FOR = "2s"
GROUP_WAIT = GROUP_INTERVAL = "1s"
REPEAT = "1h"
EMAIL_DOMAIN = "smoke.stackgen.invalid"
INTEGRATIONS = ("slack", "email", "webhook", "pagerduty")

_RANGE = re.compile(r"\[\s*(?:\d+(?:ms|s|m|h|d|w|y))+\s*(?::\s*((?:\d+(?:ms|s|m|h|d|w|y))*)\s*)?\]")


def shorten_ranges(expr: str, window: str = RATE_WINDOW) -> str:
    """`[5m]` -> `[5s]`, `[1h:1m]` -> `[5s:1s]` (range vectors and subqueries)."""
    def repl(m):
        return f"[{window}:{INTERVAL}]" if m.group(0).find(":") >= 0 else f"[{window}]"

    return _RANGE.sub(repl, expr)


@dataclass
class Override:
    spec: str  # path of the overridden spec
    endpoints: dict = field(default_factory=dict)  # receiver -> [(integration, index), ...]
    emails: dict = field(default_factory=dict)  # address -> (receiver, index)
    # (integration, receiver, index) of configs with `send_resolved: false`, and of Slack
    # configs with their own `title` or `text` (the message is the user's template)
    no_resolved: set = field(default_factory=set)
    custom_text: set = field(default_factory=set)
    pagerduty_urls: dict = field(default_factory=dict)  # (receiver, index) -> URL
    smtp_user: str | None = None
    smtp_password: str | None = None
    notes: list = field(default_factory=list)


def _confs(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _routes(routes: list, notes: list, path: str = "alerting.routes"):
    """Short timings on every route; mute and active time intervals dropped (a smoke run
    checks every incident's delivery, whatever the hour), each named in `notes`."""
    for i, r in enumerate(routes or []):
        for key, value in (("group_wait", GROUP_WAIT), ("group_interval", GROUP_INTERVAL),
                           ("repeat_interval", REPEAT)):
            if key in r:
                r[key] = value
        for key in ("mute_time_intervals", "active_time_intervals"):
            names = r.pop(key, None)
            if names:
                notes.append(f"{path}[{i}]: {key} [{', '.join(map(str, names))}] dropped: "
                             "smoke checks each incident's delivery whatever the hour")
        _routes(r.get("routes"), notes, f"{path}[{i}].routes")


def apply(data: dict, spec_dir: str, targets: dict, sink_url, smtp_address: str) -> Override:
    """Rewrite `data` (a copy is made) into `spec_dir`/stack.yaml with its secret files.

    targets: {(group name, index): "127.0.0.1:port"}; sink_url(integration, receiver, n)."""
    data = copy.deepcopy(data)
    os.makedirs(os.path.join(spec_dir, "secrets"), exist_ok=True)
    ov = Override(spec=os.path.join(spec_dir, "stack.yaml"))
    files: dict = {}

    def secret(name: str, content: str) -> str:
        rel = f"secrets/{name}"
        files[rel] = content
        return rel

    stack = data.setdefault("stack", {})
    stack["scrape_interval"] = INTERVAL
    stack["evaluation_interval"] = INTERVAL
    if "scrape_timeout" in stack:
        stack["scrape_timeout"] = INTERVAL
    stack["rate_window"] = RATE_WINDOW
    grafana = stack.get("grafana") or {}
    if "admin_password_file" in grafana:
        grafana["admin_password_file"] = secret("smoke-grafana-admin-password",
                                                _random.token_urlsafe(16))
    counts = target_counts(data)
    for kind in (HOSTS, GPUS, SERVICES):
        for name, group in (data.get(kind) or {}).items():
            if group.pop("kubernetes", None) is not None:
                stand_in = "its demo targets" if group.get("targets") else "one demo target"
                ov.notes.append(f"{kind}.{name}: its Kubernetes Services -> {stand_in} (the "
                                "native run has no service discovery)")
            group["targets"] = [targets[(name, i)] for i in range(counts[name])]
            if group.pop("scheme", "http") != "http":
                ov.notes.append(f"{kind}.{name}: scheme https -> http (the demo exporter "
                                "serves plain HTTP)")
            defaults = [k.key for k in K.kinds_of(kind) if isinstance(k, DefaultKind)]
            for key in defaults:  # on by default unless switched off: shorten their `for` too
                kpis = group.get("kpis") or {}
                if kpis.get(key, True) is True:
                    group["kpis"] = {**kpis, key: {}}
            for key, kpi in (group.get("kpis") or {}).items():
                if key == "custom":
                    for c in kpi or []:
                        c["for"] = FOR
                        c["expr"] = shorten_ranges(c["expr"])
                elif isinstance(kpi, dict):
                    kpi["for"] = FOR
    alerting = data.get("alerting") or {}
    alerting["group_wait"] = GROUP_WAIT
    alerting["group_interval"] = GROUP_INTERVAL
    alerting["repeat_interval"] = REPEAT
    _routes(alerting.get("routes"), ov.notes)
    alerting.pop("time_intervals", None)  # no route names them any more
    smtp = alerting.get("smtp")
    if smtp is not None:
        smtp["smarthost"] = smtp_address
        smtp["require_tls"] = False
        smtp.pop("hello", None)
        if "auth_username" in smtp or "auth_password_file" in smtp:
            ov.smtp_user = smtp.setdefault("auth_username", "stackgen-smoke")
            ov.smtp_password = _random.token_urlsafe(16)
            smtp["auth_password_file"] = secret("smoke-smtp-password", ov.smtp_password)
    for rname, rec in (alerting.get("receivers") or {}).items():
        eps = ov.endpoints.setdefault(rname, [])
        for integration in INTEGRATIONS:
            for i, conf in enumerate(_confs(rec.get(integration))):
                eps.append((integration, i))
                if conf.get("send_resolved") is False:
                    ov.no_resolved.add((integration, rname, i))
                if integration == "slack" and (conf.get("title") or conf.get("text")):
                    ov.custom_text.add((integration, rname, i))
                if integration == "slack":
                    conf["api_url_file"] = secret(f"smoke-slack-{rname}-{i}",
                                                  sink_url("slack", rname, i))
                elif integration == "webhook":
                    conf["url_file"] = secret(f"smoke-webhook-{rname}-{i}",
                                              sink_url("webhook", rname, i))
                elif integration == "pagerduty":
                    conf["routing_key_file"] = secret(f"smoke-pagerduty-{rname}-{i}",
                                                      f"smoke-routing-key-{rname}-{i}")
                    ov.pagerduty_urls[(rname, i)] = sink_url("pagerduty", rname, i)
                else:
                    address = f"{rname}-{i}@{EMAIL_DOMAIN}"
                    conf["to"] = address
                    ov.emails[address] = (rname, i)
    for rel, content in files.items():
        path = os.path.join(spec_dir, rel)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(content + "\n")
    with open(ov.spec, "w", encoding="utf-8") as fh:
        fh.write("# stackgen smoke: the spec under test with its test override applied\n")
        yaml.safe_dump(data, fh, sort_keys=False, default_flow_style=False, width=10**6)
    return ov


def target_counts(data: dict) -> dict:
    """{group name: number of demo targets}: one per static target, and one for a group
    scraped only through Kubernetes Services (the native run has no service discovery)."""
    out = {}
    for kind in (HOSTS, GPUS, SERVICES):
        for name, group in (data.get(kind) or {}).items():
            n = len((group or {}).get("targets", []) or [])
            out[name] = n or (1 if (group or {}).get("kubernetes") else 0)
    return out


def pagerduty_extra(ov: Override):
    """An `am_extra` for NativeStack: point PagerDuty configs at the sink."""
    def extra(cfg: dict, notes: list):
        for rec in cfg.get("receivers", []):
            for i, conf in enumerate(rec.get("pagerduty_configs", [])):
                url = ov.pagerduty_urls.get((rec.get("name"), i))
                if url:
                    conf["url"] = url
                    notes.append(f"receiver {rec.get('name')}: PagerDuty url -> {url} (smoke)")
    return extra
