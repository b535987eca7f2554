"""grafana/dashboards/<uid>.json: the stack overview and one dashboard per monitored group.

Built with grafanalib (imported by this module only), then brought up to date: grafanalib's
defaults predate Grafana 8 (schemaVersion 12, `rows`, datasources by name, Angular options),
so each panel's `fieldConfig` and `options` are written here in the current schema and the
legacy keys grafanalib adds are dropped. Uids, titles and panel ids come from
`stackgen.layout`, which the alert rules' `dashboard_url` annotations also use.
"""

from __future__ import annotations

import json

from grafanalib import core as gl
from grafanalib._gen import DashboardEncoder

from stackgen import layout
from stackgen.artifact import Artifact, to_json
from stackgen.generators.grafana_provisioning import DATASOURCE_UID
from stackgen.model import GPUS, HOSTS, Group, Kpi, Model

SCHEMA_VERSION = 41
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
DIR = "grafana/dashboards"

GRID_COLUMNS, PANEL_HEIGHT = 24, 8
GROUP_PANEL_WIDTH, OVERVIEW_PANEL_WIDTH = 12, 8
REFRESH_INTERVALS = ["30s", "1m", "5m", "15m", "30m", "1h"]

PANEL_CLASSES = {
    "timeseries": gl.TimeSeries, "stat": gl.Stat, "gauge": gl.GaugePanel,
    "bargauge": gl.BarGauge, "heatmap": gl.Heatmap, "barchart": gl.BarChart, "row": gl.RowPanel,
}
# What survives of grafanalib's panel, target, variable and dashboard JSON; the rest is legacy.
PANEL_KEYS = ("collapsed", "datasource", "description", "gridPos", "id", "links", "panels",
              "targets", "title", "transformations", "type")
TARGET_KEYS = ("datasource", "expr", "format", "instant", "legendFormat", "refId")
VARIABLE_DROP = ("auto", "auto_count", "auto_min", "tagValuesQuery", "tagsQuery", "useTags")
DASHBOARD_DROP = ("__inputs", "gnetId", "hideControls", "id", "rows", "sharedCrosshair",
                  "style", "version")
INSTANT_PANELS = ("gauge", "bargauge", "barchart")  # they show the latest value only

COLORS = {None: "green", "warning": "orange", "critical": "red"}
RANK = {None: 0, "warning": 1, "critical": 2}
LEGEND_BY_LABEL = {"gpu": "GPU {{gpu}}"}  # labels shown with a word before the value


# --- grafanalib in, plain current-schema dicts out ----------------------------------------

def _plain(obj):
    """grafanalib objects (nested anywhere) as plain JSON data."""
    return json.loads(json.dumps(obj, cls=DashboardEncoder, sort_keys=True))


def _target(expr: str, legend: str, fmt: str = "time_series", instant: bool = False) -> dict:
    data = _plain(gl.Target(expr=expr, legendFormat=legend, refId="A", format=fmt,
                            instant=instant, datasource=DATASOURCE))
    data = {k: data[k] for k in TARGET_KEYS}
    data.update(editorMode="code", range=not instant)
    return data


def _panel(kind: str, *, field_config: dict | None = None, options: dict | None = None,
           **fields) -> dict:
    """A panel of type `kind`; its fieldConfig and options replace grafanalib's."""
    data = _plain(PANEL_CLASSES[kind](dataSource=DATASOURCE, **fields))
    data = {k: data[k] for k in PANEL_KEYS if data.get(k) is not None}
    if kind != "row":
        data.update(fieldConfig=field_config, options=options)
    return data


def _variable(name: str, label: str, query: str) -> dict:
    """A multi-value query variable whose "All" matches everything by regex."""
    data = _plain(gl.Template(name=name, label=label, query=query, dataSource=DATASOURCE,
                              default="$__all", allValue=".*", includeAll=True, multi=True,
                              refresh=gl.REFRESH_ON_TIME_RANGE_CHANGE, sort=gl.SORT_ALPHA_ASC))
    for key in VARIABLE_DROP:
        data.pop(key, None)
    data.update(current={"selected": True, "text": "All", "value": "$__all"}, definition=query,
                regex="",
                query={"qryType": 1, "query": query,
                       "refId": "PrometheusVariableQueryEditor-VariableQuery"})
    return data


def _link(title: str, url: str = "", tags: tuple = ()) -> dict:
    """A dashboard header link: to `url`, or a drop-down of the dashboards with `tags`."""
    link = gl.DashboardLink(title=title, uri=url, type="link" if url else "dashboards",
                            tags=list(tags), asDropdown=not url, keepTime=True,
                            icon="dashboard" if url else "external link")
    return _plain(link)


def _dashboard(model: Model, *, uid: str, title: str, tag: str, panels: list,
               variables: tuple = (), links: tuple = (), description: str = "") -> dict:
    board = gl.Dashboard(
        title=title, uid=uid, description=description,
        tags=list(dict.fromkeys(["stackgen", model.stack.name, tag])),
        timezone="browser", refresh="30s", time=gl.Time("now-6h", "now"), editable=False,
        graphTooltip=gl.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR, schemaVersion=SCHEMA_VERSION,
        panels=panels, templating=gl.Templating(list=list(variables)), links=list(links),
        timePicker=gl.TimePicker(refreshIntervals=REFRESH_INTERVALS, timeOptions=[]),
    )
    data = _plain(board)
    for key in DASHBOARD_DROP:
        data.pop(key, None)
    data["timepicker"] = {"refresh_intervals": REFRESH_INTERVALS}
    return data


# --- what a KPI panel shows -------------------------------------------------------------

def threshold_steps(thresholds: tuple) -> list[dict]:
    """Grafana threshold steps: each band takes the colour of the worst alert firing in it."""
    values = sorted({t.value for t in thresholds})
    steps: list[dict] = []
    for low, high in zip([None, *values], [*values, None]):
        fired = [t.severity for t in thresholds
                 if (not t.below and low is not None and low >= t.value)
                 or (t.below and high is not None and high <= t.value)]
        color = COLORS[max(fired, key=lambda s: RANK.get(s, 1), default=None)]
        if not steps or steps[-1]["color"] != color:
            steps.append({"color": color, "value": low})
    return steps


def threshold_summary(kpi: Kpi) -> str:
    if not kpi.thresholds:
        return "No alert thresholds."
    return ", ".join(f"{t.severity} {t.op} {t.text}" for t in kpi.thresholds) + f"; for {kpi.for_}"


def describe(kpi: Kpi) -> str:
    extra = kpi.description if kpi.description != kpi.title else ""
    return "\n\n".join(p for p in (threshold_summary(kpi), extra,
                                   f"Recording rule: `{kpi.record}`") if p)


def legend(group: Group, kpi: Kpi) -> str:
    if not kpi.per:
        return group.name
    return " ".join(LEGEND_BY_LABEL.get(label, "{{%s}}" % label) for label in kpi.per)


def has_instance_variable(group: Group) -> bool:
    return group.kind in (HOSTS, GPUS)


def query(group: Group, kpi: Kpi, by_instance: bool = False) -> str:
    matchers = [f'{group.group_label}="{group.name}"']
    if by_instance:
        matchers.append('instance=~"$instance"')
    return f"{kpi.record}{{{','.join(matchers)}}}"


def panel_kind(kpi: Kpi) -> str:
    """The KPI panel's type; response time is a quantile line (its heatmap is a companion)."""
    return "timeseries" if kpi.panel == "heatmap" else kpi.panel


def field_config(kpi: Kpi, kind: str) -> dict:
    defaults = {
        "color": {"mode": "palette-classic" if kind in ("timeseries", "barchart")
                  else "thresholds"},
        "mappings": [],
        "thresholds": {"mode": "absolute", "steps": threshold_steps(kpi.thresholds)},
        "unit": kpi.unit,
    }
    if kpi.unit == "percentunit":
        defaults.update(min=0, max=1)
    if kind == "timeseries":
        bars = kpi.kind == "throughput"
        defaults["custom"] = {
            "drawStyle": "bars" if bars else "line", "fillOpacity": 80 if bars else 10,
            "lineWidth": 1, "showPoints": "never", "spanNulls": False,
            "thresholdsStyle": {"mode": "dashed" if kpi.thresholds else "off"},
        }
    elif kind == "barchart":
        defaults["custom"] = {"fillOpacity": 80, "lineWidth": 1}
    return {"defaults": defaults, "overrides": []}


def options(kind: str) -> dict:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    legend_opts = {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True}
    tooltip = {"mode": "multi", "sort": "desc"}
    return {
        "timeseries": {"legend": legend_opts, "tooltip": tooltip},
        "stat": {"colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                 "orientation": "auto", "reduceOptions": reduce, "textMode": "auto"},
        "gauge": {"orientation": "auto", "reduceOptions": reduce, "showThresholdLabels": False,
                  "showThresholdMarkers": True},
        "bargauge": {"displayMode": "gradient", "orientation": "horizontal",
                     "reduceOptions": reduce, "showUnfilled": True, "valueMode": "color"},
        "barchart": {"barWidth": 0.9, "groupWidth": 0.7, "legend": legend_opts,
                     "orientation": "auto", "showValue": "auto", "stacking": "none",
                     "tooltip": tooltip, "xTickLabelRotation": 0},
    }[kind]


def kpi_panel(group: Group, kpi: Kpi, *, pid: int, title: str, grid: dict,
              by_instance: bool = False, links: tuple = ()) -> dict:
    kind = panel_kind(kpi)
    instant = kind in INSTANT_PANELS
    # A bar chart needs one bar per series: reduce each series to its latest value.
    reduce = [{"id": "reduce", "options": {"reducers": ["lastNotNull"]}}]
    return _panel(kind, id=pid, title=title, description=describe(kpi), gridPos=gl.GridPos(**grid),
                  targets=[_target(query(group, kpi, by_instance), legend(group, kpi),
                                   instant=instant)],
                  links=list(links), transformations=reduce if kind == "barchart" else [],
                  field_config=field_config(kpi, kind), options=options(kind))


def heatmap_panel(kpi: Kpi, *, pid: int, grid: dict) -> dict:
    """The response-time companion: request rate per histogram bucket, seconds on the y axis."""
    histogram = kpi.inputs[0].metric if kpi.inputs else "the histogram"
    defaults = {
        "color": {"mode": "thresholds"}, "mappings": [],
        "custom": {"hideFrom": {"legend": False, "tooltip": False, "viz": False},
                   "scaleDistribution": {"type": "linear"}},
        "thresholds": {"mode": "absolute", "steps": threshold_steps(())},
        "unit": "reqps",
    }
    opts = {
        "calculate": False, "cellGap": 1, "cellValues": {"unit": "reqps"},
        "color": {"exponent": 0.5, "fill": "dark-orange", "mode": "scheme", "reverse": False,
                  "scale": "exponential", "scheme": "Oranges", "steps": 64},
        "filterValues": {"le": 1e-9}, "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": True},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": kpi.unit},
    }
    return _panel("heatmap", id=pid, title="Response time distribution",
                  description=f"Requests per second in each `{histogram}` bucket; the y axis "
                              "is the bucket's upper bound (le).",
                  gridPos=gl.GridPos(**grid),
                  targets=[_target(kpi.heatmap_expr, "{{le}}", fmt="heatmap")],
                  field_config={"defaults": defaults, "overrides": []}, options=opts)


# --- layout on the grid -----------------------------------------------------------------

class Grid:
    """Places panels left to right, then top to bottom, on Grafana's 24-column grid."""

    def __init__(self):
        self.x = self.y = self.line_height = 0

    def place(self, width: int, height: int = PANEL_HEIGHT) -> dict:
        if self.x + width > GRID_COLUMNS:
            self.newline()
        pos = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.x += width
        self.line_height = max(self.line_height, height)
        return pos

    def newline(self):
        self.y += self.line_height
        self.x = self.line_height = 0

    def full_width(self, height: int = 1) -> dict:
        self.newline()
        pos = self.place(GRID_COLUMNS, height)
        self.newline()
        return pos


# --- the dashboards ---------------------------------------------------------------------

def overview_links(model: Model, group: Group) -> tuple:
    url = layout.group_url(model, group) if model.dashboards_per_group else None
    if not url:
        return ()
    return ({"targetBlank": False, "title": f"Open {group.name} dashboard", "url": url},)


def overview(model: Model) -> dict:
    grid, panels = Grid(), []
    for g, group in enumerate(model.groups):
        # Row ids sit below layout.OVERVIEW_BASE, so they never meet a KPI panel's id.
        panels.append(_panel("row", id=g + 1, title=f"{layout.KIND_TITLE[group.kind]} / "
                             f"{group.name}", gridPos=gl.GridPos(**grid.full_width()),
                             collapsed=False, panels=[]))
        for i, kpi in enumerate(group.kpis):
            panels.append(kpi_panel(group, kpi, pid=layout.overview_panel_id(g, i),
                                    title=f"{group.name} · {kpi.title}",
                                    grid=grid.place(OVERVIEW_PANEL_WIDTH),
                                    links=overview_links(model, group)))
    links = (_link("Dashboards", tags=("stackgen", model.stack.name)),) \
        if model.dashboards_per_group else ()
    return _dashboard(model, uid=layout.overview_uid(model), title=layout.overview_title(model),
                      tag="overview", panels=panels, links=links,
                      description=f"Every KPI of every group of the {model.stack.name} stack.")


def kpi_panels(group: Group, grid: Grid) -> list[dict]:
    by_instance = has_instance_variable(group)
    panels = []
    for i, kpi in enumerate(group.kpis):
        panels.append(kpi_panel(group, kpi, pid=layout.kpi_panel_id(i), title=kpi.title,
                                grid=grid.place(GROUP_PANEL_WIDTH), by_instance=by_instance))
        if kpi.heatmap_expr:
            panels.append(heatmap_panel(kpi, pid=layout.companion_panel_id(i),
                                        grid=grid.place(GROUP_PANEL_WIDTH)))
    return panels


def slo_panels(model: Model, group: Group, grid: Grid) -> list[dict]:
    """The panels of group.slos (ids from layout.slo_panel_id); not drawn yet."""
    return []


def instance_variables(group: Group) -> tuple:
    if not has_instance_variable(group):
        return ()
    metric = group.kpis[0].record if group.kpis else "up"
    selector = f'{metric}{{{group.group_label}="{group.name}"}}'
    return (_variable("instance", "Instance", f"label_values({selector}, instance)"),)


def group_dashboard(model: Model, group: Group) -> dict:
    grid = Grid()
    panels = kpi_panels(group, grid) + slo_panels(model, group, grid)
    links = []
    if model.dashboards_overview:
        links.append(_link(layout.overview_title(model), url=layout.dashboard_url(
            model, layout.overview_uid(model), layout.overview_title(model))))
    links.append(_link("Dashboards", tags=("stackgen", model.stack.name)))
    return _dashboard(model, uid=layout.group_uid(model, group),
                      title=layout.group_title(model, group), tag=group.kind, panels=panels,
                      variables=instance_variables(group), links=tuple(links),
                      description=group.description)


def dashboards(model: Model) -> list[dict]:
    out = [overview(model)] if model.dashboards_overview else []
    if model.dashboards_per_group:
        out.extend(group_dashboard(model, group) for group in model.groups)
    return out


def generate(model: Model) -> list[Artifact]:
    return [Artifact(f"{DIR}/{board['uid']}.json", to_json(board)) for board in dashboards(model)]
