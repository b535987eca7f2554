"""Where things live in Grafana: dashboard uids, titles, panel ids, and links to panels.

Shared by the dashboard generator (which places the panels) and the rule generator (whose
`dashboard_url` annotations point at them), so the two can never disagree. No grafanalib here.
"""

from __future__ import annotations

import hashlib
import re

from stackgen.model import GPUS, HOSTS, SERVICES, Group, Model

UID_MAX = 40  # Grafana's limit for a dashboard uid

# Words for a group kind in dashboard titles. Uids use `group.kind` itself, never these words,
# so a title may be reworded without breaking a bookmarked /d/<uid> link (Grafana resolves the
# uid; the title slug after it is cosmetic).
KIND_TITLE = {HOSTS: "Hosts", GPUS: "GPUs", SERVICES: "Service"}

# Panel ids in a group dashboard: KPI i is the panel `KPI_BASE + i`; its companion panel
# (the response-time heatmap) is `COMPANION_BASE + i`; SLO panels start at `SLO_BASE`.
KPI_BASE = 1
COMPANION_BASE = 100
SLO_BASE = 200
# In the overview, KPI i of group g is the panel `OVERVIEW_BASE * (g + 1) + i`; the row header
# of group g is `g + 1`, below OVERVIEW_BASE, so it never meets a KPI panel's id.
OVERVIEW_BASE = 1000
# The exporter's own panels of a host or GPU group (rows and panels of stackgen.kpis.exporters)
# are `DETAIL_BASE + slot`; a KPI's per-instance panel (a service's RED panels) is
# `KPI_DETAIL_BASE + i`; the overview's alert list is ALERT_LIST_ID. All below OVERVIEW_BASE
# and above the SLO panels, so no id that an alert's `viewPanel=` names ever moves.
DETAIL_BASE = 500
KPI_DETAIL_BASE = 700
KPI_DETAIL_ROW = 699  # the row header above the KPIs per instance
ALERT_LIST_ID = 900


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def uid(*parts: str) -> str:
    """A stable uid from names; long ones keep a readable prefix and a hash suffix."""
    text = slug("-".join(parts))
    if len(text) <= UID_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[:UID_MAX - 9].rstrip('-')}-{digest}"


def _title_base(model: Model) -> str:
    return model.stack.name + (f" ({model.env})" if model.env else "")


def overview_uid(model: Model) -> str:
    return uid(model.deployment, "overview")


def overview_title(model: Model) -> str:
    return f"{_title_base(model)} / Overview"


def group_uid(model: Model, group: Group) -> str:
    return uid(model.deployment, group.kind, group.name)


def group_title(model: Model, group: Group) -> str:
    return f"{_title_base(model)} / {KIND_TITLE[group.kind]} / {group.name}"


def containers_uid(model: Model) -> str:
    return uid(model.deployment, "containers")


def containers_title(model: Model) -> str:
    return f"{_title_base(model)} / Containers"


def stack_uid(model: Model) -> str:
    return uid(model.deployment, "stack")


def stack_title(model: Model) -> str:
    return f"{_title_base(model)} / Monitoring stack"


def dashboard_uids(model: Model) -> list[str]:
    """Every dashboard's uid, in the order grafana_dashboards makes them (the Helm chart's
    README lists them without building them; helm_chart.generate checks that they agree)."""
    uids = [overview_uid(model)] if model.dashboards_overview else []
    if model.dashboards_per_group:
        uids += [group_uid(model, g) for g in model.groups]
        uids += [containers_uid(model), stack_uid(model)]
    return uids


def relative_url(uid_: str, title: str) -> str:
    """A link between dashboards: relative, so it works under any Grafana address."""
    return f"/d/{uid_}/{slug(title)}"


def detail_panel_id(slot: int) -> int:
    return DETAIL_BASE + slot


def kpi_detail_panel_id(index: int) -> int:
    return KPI_DETAIL_BASE + index


def kpi_panel_id(index: int) -> int:
    return KPI_BASE + index


def companion_panel_id(index: int) -> int:
    return COMPANION_BASE + index


def overview_panel_id(group_index: int, kpi_index: int) -> int:
    return OVERVIEW_BASE * (group_index + 1) + kpi_index


def overview_row_id(group_index: int) -> int:
    return group_index + 1


def dashboard_url(model: Model, uid_: str, title: str, panel_id: int | None = None) -> str:
    url = f"{model.stack.grafana_url}/d/{uid_}/{slug(title)}"
    return url + (f"?viewPanel={panel_id}" if panel_id is not None else "")


def kpi_url(model: Model, group: Group, kpi_index: int) -> str | None:
    """The panel that shows a KPI: its group's dashboard, else the overview, else none."""
    if model.dashboards_per_group:
        return dashboard_url(model, group_uid(model, group), group_title(model, group),
                             kpi_panel_id(kpi_index))
    if model.dashboards_overview:
        g = model.groups.index(group)
        return dashboard_url(model, overview_uid(model), overview_title(model),
                             overview_panel_id(g, kpi_index))
    return None


def group_url(model: Model, group: Group) -> str | None:
    if model.dashboards_per_group:
        return dashboard_url(model, group_uid(model, group), group_title(model, group))
    if model.dashboards_overview:
        return dashboard_url(model, overview_uid(model), overview_title(model))
    return None


# The panels of SLO i in its group dashboard, in this order: SLO_BASE + 10 * i + k; the row
# header above them is SLO_BASE + 10 * i + 9, so new panels may be appended to SLO_PANELS
# without moving it.
SLO_PANELS = ("objective", "sli", "budget_remaining", "burn_rate")
SLO_ROW = 9


def slo_panel_id(slo_index: int, panel: str) -> int:
    return SLO_BASE + 10 * slo_index + SLO_PANELS.index(panel)


def slo_row_id(slo_index: int) -> int:
    return SLO_BASE + 10 * slo_index + SLO_ROW


def slo_url(model: Model, group: Group, slo_index: int) -> str | None:
    """The burn-rate panel of an SLO (SLO panels live in the group dashboards only)."""
    if model.dashboards_per_group:
        return dashboard_url(model, group_uid(model, group), group_title(model, group),
                             slo_panel_id(slo_index, "burn_rate"))
    return group_url(model, group)
