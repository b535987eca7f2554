"""prometheus/rules/slo-<service>.yml: SLO recording rules and multiwindow, multi-burn-rate alerts.

As in the Google SRE workbook (chapter "Alerting on SLOs") and Sloth's default windows
(`internal/alert/windows/google-30d.yaml` and `google-28d.yaml` in slok/sloth):

| tier | severity | budget spent | long window | short window | factor for 30d | for 28d |
| ---- | -------- | ------------ | ----------- | ------------ | -------------- | ------- |
| 1    | page     | 2%           | 1h          | 5m           | 14.4           | 13.44   |
| 2    | page     | 5%           | 6h          | 30m          | 6              | 5.6     |
| 3    | ticket   | 10%          | 1d          | 2h           | 3              | 2.8     |
| 4    | ticket   | 10%          | 3d          | 6h           | 1              | 0.933   |

For any SLO window (period) P the windows stay and the burn-rate factor is
budget share x P / long window, as Sloth computes it: each tier fires after spending the same
share of the budget, and the recording rules keep Sloth's names (`slo:sli_error:ratio_rate1h`
...), so Sloth's dashboards find them.

Rule and label names are Sloth's (`slo:sli_error:ratio_rate5m`, `sloth_id`, `sloth_service`,
`sloth_slo`, `slo:period_error_budget_remaining:ratio`, ...), so Sloth dashboards work as they are.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from stackgen import layout
from stackgen.model import Group, Model, Slo
from stackgen.spec.units import duration_seconds, fmt_number

BASE_PERIOD = 30 * 86400


@dataclass(frozen=True)
class Tier:
    severity: str  # "page" | "ticket" (Sloth's sloth_severity)
    factor: float
    long: str
    short: str
    budget_percent: float = 0  # share of the period's error budget spent when it fires


# (severity, % of the error budget, long window, short window): Sloth's google-30d/28d windows.
WORKBOOK_WINDOWS = (
    ("page", 2, "1h", "5m"),
    ("page", 5, "6h", "30m"),
    ("ticket", 10, "1d", "2h"),
    ("ticket", 10, "3d", "6h"),
)
def _factor(pct: float, period: float, long: str) -> float | int:
    """Sloth's burn-rate factor: the budget share spent within the long window."""
    f = round(pct / 100 * period / duration_seconds(long), 10)
    return int(f) if f == int(f) else f


WORKBOOK_TIERS = tuple(Tier(sev, _factor(pct, BASE_PERIOD, long), long, short, pct)
                       for sev, pct, long, short in WORKBOOK_WINDOWS)

# SLO severities mapped onto the alert severities every route and inhibition knows.
SEVERITY = {"page": "critical", "ticket": "warning"}
ALERT = "ErrorBudgetBurn"
KPI_OF = {"availability": "error_rate", "latency": "response_time"}  # the KPI an SLI reads


@functools.lru_cache(maxsize=1024)  # asked for by every rule, test and panel of the SLO
def tiers(slo: Slo) -> tuple[Tier, ...]:
    """The four tiers of `slo`: Sloth's windows, factors scaled by its SLO window."""
    period = duration_seconds(slo.window)
    return tuple(Tier(sev, _factor(pct, period, long), long, short, pct)
                 for sev, pct, long, short in WORKBOOK_WINDOWS)


def windows(slo: Slo) -> list[str]:
    """Every window an error ratio is recorded over, shortest first."""
    ws = {w for t in tiers(slo) for w in (t.long, t.short)}
    return sorted(ws, key=duration_seconds)


def sloth_id(group: Group, slo: Slo) -> str:
    return f"{group.name}-{slo.slo_name}"


def slo_labels(group: Group, slo: Slo) -> dict:
    return {"sloth_id": sloth_id(group, slo), "sloth_service": group.name,
            "sloth_slo": slo.slo_name, **dict(group.target_labels)}


def _sel(group: Group, slo: Slo) -> str:
    return (f'{{sloth_id="{sloth_id(group, slo)}", sloth_service="{group.name}", '
            f'sloth_slo="{slo.slo_name}"}}')


def error_budget(slo: Slo) -> str:
    return fmt_number(round(1 - slo.objective, 12))


def sli_recordings(group: Group, slo: Slo) -> list[dict]:
    labels = slo_labels(group, slo)
    rules = [{"record": f"slo:sli_error:ratio_rate{w}", "expr": slo.error_ratio_over(w),
              "labels": {**labels, "sloth_window": w}} for w in windows(slo)]
    shortest = windows(slo)[0]
    sel = _sel(group, slo)
    rules.append({
        "record": f"slo:sli_error:ratio_rate{slo.period}",
        "expr": f"sum_over_time(slo:sli_error:ratio_rate{shortest}{sel}[{slo.period}])\n"
                f"/ ignoring (sloth_window)\n"
                f"count_over_time(slo:sli_error:ratio_rate{shortest}{sel}[{slo.period}])\n",
        "labels": {**labels, "sloth_window": slo.period},
    })
    return rules


def meta_recordings(group: Group, slo: Slo) -> list[dict]:
    labels = slo_labels(group, slo)
    sel = _sel(group, slo)
    on = "on (sloth_id, sloth_slo, sloth_service) group_left"
    shortest = windows(slo)[0]
    days = fmt_number(duration_seconds(slo.window) / 86400)
    rules = [
        {"record": "slo:objective:ratio", "expr": f"vector({fmt_number(slo.objective)})",
         "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector(1 - {fmt_number(slo.objective)})",
         "labels": labels},
        {"record": "slo:time_period:days", "expr": f"vector({days})", "labels": labels},
        {"record": "slo:current_burn_rate:ratio",
         "expr": f"slo:sli_error:ratio_rate{shortest}{sel}\n/ {on}\nslo:error_budget:ratio{sel}\n",
         "labels": labels},
        {"record": "slo:period_burn_rate:ratio",
         "expr": f"slo:sli_error:ratio_rate{slo.period}{sel}\n/ {on}\n"
                 f"slo:error_budget:ratio{sel}\n",
         "labels": labels},
        {"record": "slo:period_error_budget_remaining:ratio",
         "expr": f"1 - slo:period_burn_rate:ratio{sel}", "labels": labels},
        {"record": "sloth_slo_info", "expr": "vector(1)",
         "labels": {**labels, "sloth_mode": "cli-gen-stackgen", "sloth_spec": "stackgen/v1",
                    "sloth_version": "stackgen", "sloth_objective": fmt_number(
                        round(slo.objective * 100, 9))}},
    ]
    return rules


def burn_condition(group: Group, slo: Slo, tier: Tier) -> str:
    sel = _sel(group, slo)
    limit = f"({fmt_number(tier.factor)} * {error_budget(slo)})"
    return (f"(\n"
            f"    max(slo:sli_error:ratio_rate{tier.short}{sel} > {limit}) without (sloth_window)\n"
            f"    and\n"
            f"    max(slo:sli_error:ratio_rate{tier.long}{sel} > {limit}) without (sloth_window)\n"
            f")")


def alert_expr(group: Group, slo: Slo, severity: str) -> str:
    parts = [burn_condition(group, slo, t) for t in tiers(slo) if t.severity == severity]
    return "\nor\n".join(parts) + "\n"


def _what(slo: Slo) -> str:
    if slo.kind == "latency":
        return f"requests faster than {slo.threshold_text}"
    return "requests without error"


def alerts(model: Model, group: Group, index: int, slo: Slo) -> list[dict]:
    out = []
    for severity in ("page", "ticket"):
        ts = [t for t in tiers(slo) if t.severity == severity]
        how = " or ".join(f"{fmt_number(t.factor)}x over {t.long} and {t.short}" for t in ts)
        annotations = {
            "summary": f"{group.name} {slo.kind} SLO ({slo.objective_text} {_what(slo)} over "
                       f"{slo.window}) is burning its error budget too fast",
            "description": f"The error ratio of {group.name} ({slo.kind}) is "
                           "{{ $value | humanizePercentage }} over the short window; the "
                           f"{severity} condition ({how} the sustainable rate of "
                           f"{error_budget(slo)}) holds, so the {slo.window} error budget will be "
                           "spent early." + (f" {slo.description}." if slo.description else ""),
        }
        if group.runbook_url:
            annotations["runbook_url"] = group.runbook_url
        url = layout.slo_url(model, group, index)
        if url:
            annotations["dashboard_url"] = url
        out.append({
            "alert": slo.alert,
            "expr": alert_expr(group, slo, severity),
            "labels": {"severity": SEVERITY[severity], "sloth_severity": severity,
                       "kpi": f"{slo.kind}_slo", **slo_labels(group, slo)},
            "annotations": annotations,
        })
    return out


def rule_groups(model: Model, group: Group) -> list[dict]:
    """One rule group per SLO: SLI recordings, then meta recordings, then alerts. Rules of a
    group run in order, so every alert reads the recordings of the same evaluation (Sloth
    spreads them over three groups, which Prometheus evaluates independently)."""
    groups = []
    for i, slo in enumerate(group.slos):
        rules = sli_recordings(group, slo) + meta_recordings(group, slo) + \
            alerts(model, group, i, slo)
        groups.append({"name": f"sloth-slo-{sloth_id(group, slo)}", "rules": rules})
    return groups
