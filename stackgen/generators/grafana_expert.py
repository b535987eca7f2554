"""The dashboards' expert depth, in Grafana's current JSON: the exporters' panels
(stackgen.kpis.exporters: USE for hosts, DCGM for GPUs, cAdvisor's containers, the stack's
own health), the KPIs per instance (RED for services), and what every dashboard carries:
a datasource variable, alert annotations, an alert list (overview) and relative links.

Plain dicts, no grafanalib; grafana_dashboards places these beside the KPI panels. Panel ids
come from stackgen.layout (`DETAIL_BASE + slot`, `KPI_DETAIL_BASE + i`), apart from the ids
the alerts' `viewPanel=` links use.
"""

from __future__ import annotations

from stackgen import kpis as K
from stackgen import layout
from stackgen.generators.grafana_provisioning import DATASOURCE_UID
from stackgen.kpis import exporters as E
from stackgen.model import Group, Model

# Every panel, target, variable and annotation queries the datasource the variable selects;
# its default is the provisioned Prometheus (uid DATASOURCE_UID, the Helm chart's
# dashboards.datasourceUid).
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
ALERT_LIST_HEIGHT = 6
LEGEND = {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True}
TOOLTIP = {"mode": "multi", "sort": "desc"}
REDUCE = {"calcs": ["lastNotNull"], "fields": "", "values": False}
RED = {"throughput": 0, "error_rate": 1, "response_time": 2}  # rate, errors, duration


# -- on every dashboard --------------------------------------------------------------------
def datasource_variable() -> dict:
    """`${datasource}`: any Prometheus datasource, the provisioned one by default."""
    return {"current": {"selected": False, "text": "Prometheus", "value": DATASOURCE_UID},
            "hide": 0, "includeAll": False, "label": "Data source", "multi": False,
            "name": "datasource", "options": [], "query": "prometheus", "refresh": 1,
            "regex": "", "skipUrlSync": False, "type": "datasource"}


def annotations(matchers: str = "") -> dict:
    """Grafana's built-in "Annotations & Alerts", and the Prometheus alerts that fired
    (`ALERTS`) with `matchers` (those of the dashboard's group)."""
    labels = ",".join(m for m in ('alertstate="firing"', matchers) if m)
    return {"list": [
        {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
         "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
         "name": "Annotations & Alerts", "type": "dashboard"},
        {"datasource": DATASOURCE, "enable": True, "expr": f"ALERTS{{{labels}}}",
         "iconColor": "red", "name": "Firing alerts", "step": "1m",
         "tagKeys": "severity,alertname", "textFormat": "{{alertname}} ({{severity}})",
         "titleFormat": "{{alertname}}", "useValueForTime": False},
    ]}


def links(model: Model, own_uid: str) -> list:
    """Relative links to the overview, containers and stack dashboards (keeping time range
    and variables), and a drop-down of all of the stack's dashboards."""
    targets = []
    if model.dashboards_overview:
        targets.append((layout.overview_uid(model), layout.overview_title(model)))
    if model.dashboards_per_group:
        targets += [(layout.containers_uid(model), layout.containers_title(model)),
                    (layout.stack_uid(model), layout.stack_title(model))]
    out = [link(title, layout.relative_url(uid, title)) for uid, title in targets
           if uid != own_uid]
    if model.dashboards_per_group:
        out.append(link("Dashboards", tags=("stackgen", model.stack.name)))
    return out


def link(title: str, url: str = "", tags: tuple = ()) -> dict:
    """A link to `url` keeps the variables (the overview, containers and stack dashboards have
    no `instance`); the drop-down does not: one group's instances are no other group's."""
    return {"asDropdown": not url, "icon": "dashboard" if url else "external link",
            "includeVars": bool(url), "keepTime": True, "tags": list(tags), "targetBlank": False,
            "title": title, "tooltip": "", "type": "link" if url else "dashboards", "url": url}


def alert_list(grid) -> dict:
    """The alerts Prometheus fires now (Grafana reads its rules through the datasource)."""
    return {
        "datasource": DATASOURCE, "description": "Alerts firing or pending now, worst first.",
        "gridPos": grid.full_width(ALERT_LIST_HEIGHT), "id": layout.ALERT_LIST_ID,
        "options": {"alertInstanceLabelFilter": "", "alertName": "", "dashboardAlerts": False,
                    "datasource": "Prometheus", "groupBy": [], "groupMode": "default",
                    "maxItems": 20, "sortOrder": 1,
                    "stateFilter": {"error": True, "firing": True, "noData": False,
                                    "normal": False, "pending": True},
                    "viewMode": "list"},
        "title": "Alerts", "type": "alertlist"}


# -- panels ---------------------------------------------------------------------------------
def steps(panel: E.Panel) -> list:
    return [{"color": "green", "value": None}] + \
        [{"color": color, "value": value} for value, color in panel.thresholds]


def render(panel: E.Panel, pid: int, grid) -> dict:
    if panel.type == "row":
        return {"collapsed": False, "datasource": DATASOURCE, "gridPos": grid.full_width(),
                "id": pid, "panels": [], "title": panel.title, "type": "row"}
    stat = panel.type == "stat"
    defaults = {"color": {"mode": "thresholds" if stat else "palette-classic"},
                "mappings": [], "thresholds": {"mode": "absolute", "steps": steps(panel)},
                "unit": panel.unit}
    for key in ("min", "max"):
        if getattr(panel, key) is not None:
            defaults[key] = getattr(panel, key)
    if stat:
        options = {"colorMode": "value", "graphMode": "none", "justifyMode": "auto",
                   "orientation": "auto", "reduceOptions": REDUCE, "textMode": "value_and_name"}
    else:
        defaults["custom"] = {
            "drawStyle": panel.draw, "fillOpacity": 30 if panel.stack else 10, "lineWidth": 1,
            "showPoints": "never", "spanNulls": False,
            "stacking": {"group": "A", "mode": "normal" if panel.stack else "none"},
            "thresholdsStyle": {"mode": "dashed" if panel.thresholds else "off"}}
        options = {"legend": LEGEND, "tooltip": TOOLTIP}
    targets = [{"datasource": DATASOURCE, "editorMode": "code", "expr": q.expr,
                "format": "time_series", "instant": stat, "legendFormat": q.legend,
                "range": not stat, "refId": chr(ord("A") + n)}
               for n, q in enumerate(panel.queries)]
    return {"datasource": DATASOURCE, "description": panel.description,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "gridPos": grid.place(panel.width), "id": pid, "links": [], "options": options,
            "targets": targets, "title": panel.title, "transformations": [],
            "type": panel.type}


def group_panels(group: Group, grid) -> list:
    """A group dashboard's depth: its KPIs per instance, then its exporter's sections."""
    sel = f'job="{group.job}",instance=~"$instance"'
    details = [(i, K.of(kpi).detail(kpi, ",".join(filter(None, [sel, kpi.filter]))))
               for i, kpi in enumerate(group.kpis)]
    details = sorted(((RED.get(group.kpis[i].kind, len(RED)), i, d) for i, d in details
                      if d is not None), key=lambda x: x[:2])
    out = [render(E.row(0, "Per instance: rate, errors, duration"), layout.KPI_DETAIL_ROW,
                  grid)] if details else []
    for _, i, detail in details:
        out.append(render(detail, layout.kpi_detail_panel_id(i), grid))
    kinds = {kpi.kind for kpi in group.kpis}
    for panel in E.group_panels(group.kind, sel):
        if panel.unless in kinds:
            continue  # the KPI's own panel shows it
        out.append(render(panel, layout.detail_panel_id(panel.slot), grid))
    return out


def instance_variable_query(group: Group) -> str:
    """The instances of a group whose KPIs have none (services): its scrape targets."""
    return f'label_values(up{{job="{group.job}"}}, instance)'


def containers_panels(grid) -> list:
    from stackgen.kpis.exporters import cadvisor

    return [render(p, p.slot, grid) for p in cadvisor.panels()]


def stack_panels(grid) -> list:
    from stackgen.kpis.exporters import stack

    return [render(p, p.slot, grid) for p in stack.panels()]
