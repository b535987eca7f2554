"""prometheus/rules/*.yml: recording and alert rules for every KPI, target and the stack itself.

`rule_files(model)` is the single source of the rule groups: the Compose stack writes them as
YAML here, and other runtimes (the Helm chart) wrap the very same data.
"""

from __future__ import annotations

from stackgen import kpis as K
from stackgen import layout
from stackgen.artifact import Artifact, per_model, to_yaml
from stackgen.model import GPUS, HOSTS, Group, Kpi, Model, TargetDown, Threshold
from stackgen.spec.units import fmt_number

RULES_DIR = "prometheus/rules"

# The stack's own components (Grafana, cAdvisor, ...) down: a warning, not a page. Prometheus
# cannot report itself down, and Alertmanager down cannot deliver: the heartbeat covers both.
STACK_TARGET_DOWN = TargetDown(severity="warning", for_="2m")

# Where in a KPI's series the alert's subject is, for the summary line.
_SUBJECT = {
    HOSTS: " on {{ $labels.instance }}",
    GPUS: " on {{ $labels.instance }} GPU {{ $labels.gpu }}",
}


def _value_text(kpi: Kpi) -> str:
    """`{{ $value | humanizeX }}` with the unit a person expects after it."""
    value = f"{{{{ $value | {kpi.humanize} }}}}"
    if kpi.unit == "bytes":
        return value + "B"
    if kpi.unit == "reqps":
        return value + "/s"
    if kpi.unit.startswith("suffix:"):
        return value + " " + kpi.unit.split(":", 1)[1].strip()
    return value


def _subject(group: Group, kpi: Kpi) -> str:
    return _SUBJECT.get(group.kind, "") + K.of(kpi).alert_subject


def alert_name(kpi: Kpi, t: Threshold) -> str:
    return kpi.alert_exact or kpi.alert + ("Low" if t.below else "High")


def recording_rule(kpi: Kpi) -> dict:
    rule = {"record": kpi.record, "expr": kpi.expr}
    if kpi.record_labels:
        rule["labels"] = dict(kpi.record_labels)
    return rule


def alert_expr(group: Group, kpi: Kpi, t: Threshold) -> str:
    own = K.of(kpi).alert_expr(group, kpi, t)
    if own is not None:
        return own
    return f'{kpi.record}{{{group.group_label}="{group.name}"}} {t.op} {fmt_number(t.value)}'


def alert_rule(model: Model, group: Group, index: int, kpi: Kpi, t: Threshold) -> dict:
    side = ("at or " if t.inclusive else "") + ("below" if t.below else "above")
    what = f"{kpi.title} of {group.name}" if group.kind not in (HOSTS, GPUS) else \
        f"{kpi.title} in {group.kind[:-1]} group {group.name}"
    annotations = {
        "summary": kpi.summary or f"{what} {side} {t.text}{_subject(group, kpi)}",
        "description": f"{what}{_subject(group, kpi)} is {_value_text(kpi)}, {side} the "
                       f"{t.severity} threshold of {t.text} for more than {kpi.for_}."
                       + (f" {kpi.description}." if kpi.description else ""),
    }
    if kpi.runbook_url or group.runbook_url:
        annotations["runbook_url"] = kpi.runbook_url or group.runbook_url
    url = layout.kpi_url(model, group, index)
    if url:
        annotations["dashboard_url"] = url
    return {
        "alert": alert_name(kpi, t),
        "expr": alert_expr(group, kpi, t),
        "for": kpi.for_,
        "labels": {"severity": t.severity, "kpi": kpi.name, **dict(group.target_labels)},
        "annotations": annotations,
    }


def group_rules(model: Model, group: Group) -> dict:
    rules = [recording_rule(k) for k in group.kpis]
    for i, kpi in enumerate(group.kpis):
        rules.extend(alert_rule(model, group, i, kpi, t) for t in kpi.thresholds)
        rules.extend(K.of(kpi).extra_alerts(model, group, i, kpi))
    return {"name": f"{model.stack.name}.{group.kind}.{group.name}", "rules": rules}


def target_down_rule(model: Model, job: str, labels: tuple, runbook: str | None,
                     dashboard: str | None, down: TargetDown = STACK_TARGET_DOWN) -> dict:
    annotations = {
        "summary": f"Scrape target {{{{ $labels.instance }}}} of job {job} is down",
        "description": f"Prometheus has failed to scrape {{{{ $labels.instance }}}} (job {job}) "
                       f"for more than {down.for_}; its KPIs have no data.",
    }
    if runbook:
        annotations["runbook_url"] = runbook
    if dashboard:
        annotations["dashboard_url"] = dashboard
    return {
        "alert": "TargetDown",
        "expr": f'up{{job="{job}"}} == 0',
        "for": down.for_,
        "labels": {"severity": down.severity, "kpi": "up", **dict(labels)},
        "annotations": annotations,
    }


# (job, alert, expr, for, severity, summary, description) of the alerts on the stack itself.
STACK_ALERTS = (
    ("prometheus", "PrometheusRuleEvaluationFailures",
     'increase(prometheus_rule_evaluation_failures_total{job="prometheus"}[5m]) > 0', "0s",
     "critical", "Prometheus fails to evaluate rules",
     "{{ $value | humanize }} rule evaluations of group {{ $labels.rule_group }} failed in the "
     "last 5m; alerts and recordings of that group may be missing."),
    ("prometheus", "PrometheusConfigReloadFailed",
     'prometheus_config_last_reload_successful{job="prometheus"} == 0', "5m", "warning",
     "Prometheus configuration reload failed",
     "The last reload of the Prometheus configuration failed; it runs an older configuration."),
    ("prometheus", "PrometheusNotConnectedToAlertmanagers",
     'max_over_time(prometheus_notifications_alertmanagers_discovered{job="prometheus"}[5m]) < 1',
     "5m", "critical", "Prometheus is not connected to any Alertmanager",
     "Prometheus has discovered no Alertmanager for 5m; no alert can be sent."),
    ("prometheus", "PrometheusNotificationsFailing",
     'rate(prometheus_notifications_errors_total{job="prometheus"}[5m]) > 0', "5m", "warning",
     "Prometheus fails to send alerts to Alertmanager",
     "{{ $value | humanize }} alert notifications per second fail from Prometheus to "
     "{{ $labels.alertmanager }}."),
    ("alertmanager", "AlertmanagerNotificationsFailing",
     'rate(alertmanager_notifications_failed_total{job="alertmanager"}[5m]) > 0', "5m",
     "critical", "Alertmanager fails to send {{ $labels.integration }} notifications",
     "{{ $value | humanize }} {{ $labels.integration }} notifications per second fail; "
     "receivers on that integration are not told about alerts."),
    ("alertmanager", "AlertmanagerConfigReloadFailed",
     'alertmanager_config_last_reload_successful{job="alertmanager"} == 0', "5m", "warning",
     "Alertmanager configuration reload failed",
     "The last reload of the Alertmanager configuration failed; it runs an older configuration."),
)


def stack_scrape_jobs() -> tuple:
    """Jobs of the monitoring stack itself, as scraped in prometheus.yml."""
    return ("prometheus", "alertmanager", "grafana", "cadvisor")


def stack_rules(model: Model) -> list[dict]:
    down = []
    for group in model.groups:
        down.append(target_down_rule(model, group.job, group.target_labels, group.runbook_url,
                                     layout.group_url(model, group), group.target_down))
    for job in stack_scrape_jobs():
        down.append(target_down_rule(model, job, (("service", job),), None, None))
    meta = []
    for job, alert, expr, for_, severity, summary, description in STACK_ALERTS:
        meta.append({
            "alert": alert, "expr": expr, "for": for_,
            "labels": {"severity": severity, "kpi": "stack", "service": job},
            "annotations": {"summary": summary, "description": description},
        })
    groups = [
        {"name": f"{model.stack.name}.targets", "rules": down},
        {"name": f"{model.stack.name}.stack", "rules": meta},
    ]
    if model.alerting and model.alerting.heartbeat:
        groups.append({"name": f"{model.stack.name}.heartbeat",
                       "rules": [heartbeat_rule(model)]})
    return groups


def heartbeat_rule(model: Model) -> dict:
    """Always firing while Prometheus evaluates rules and reaches Alertmanager (kube-prometheus
    calls it Watchdog): an external dead man's switch raises the alarm when it stops."""
    hb = model.alerting.heartbeat
    return {
        "alert": "Heartbeat", "expr": "vector(1)",
        "labels": {"severity": "none", "kpi": "heartbeat", "service": "prometheus"},
        "annotations": {
            "summary": f"Heartbeat of the {model.stack.name} monitoring stack (always firing)",
            "description": f"This alert always fires; it is sent to {hb.receiver} every "
                           f"{hb.repeat_interval}. When the dead man's switch behind that "
                           "receiver stops hearing it, Prometheus, Alertmanager or the path "
                           "between them is down.",
        },
    }


_last: tuple = (None, None)  # (model, its rule files): several generators read them


def rule_files(model: Model) -> list[tuple[str, dict]]:
    """(file name, {"groups": [...]}) for every rule file, in a stable order.

    The result is shared by every caller for the same model: treat it as read-only."""
    global _last
    if _last[0] is model:
        return _last[1]
    files = _rule_files(model)
    _last = (model, files)
    return files


def release(model: Model) -> None:
    """Let go of the rule files' data of `model` (a later call computes it again)."""
    global _last
    if _last[0] is model:
        _last = (None, None)


def _rule_files(model: Model) -> list[tuple[str, dict]]:
    from stackgen.generators import slo_rules

    files = []
    for group in model.groups:
        rules = group_rules(model, group)
        if rules["rules"]:  # a group that is only scraped has no rule (its TargetDown is in stack.yml)
            files.append((f"{group.kind}-{group.name}.yml", {"groups": [rules]}))
        slo = slo_rules.rule_groups(model, group)
        if slo:
            files.append((f"slo-{group.name}.yml", {"groups": slo}))
    files.append(("stack.yml", {"groups": stack_rules(model)}))
    return files


@per_model
def generate(model: Model) -> list[Artifact]:
    return [Artifact(f"{RULES_DIR}/{name}", to_yaml(data, model.spec_name))
            for name, data in rule_files(model)]
