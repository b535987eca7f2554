"""grafana/dashboards/<uid>.json: the stack overview and one dashboard per monitored group.

Built with grafanalib (imported by this module only), then brought up to date: grafanalib's
defaults predate Grafana 8 (schemaVersion 12, `rows`, datasources by name, Angular options),
so each panel's `fieldConfig` and `options` are written here in the current schema and the
legacy keys grafanalib adds are dropped. Uids, titles and panel ids come from
`stackgen.layout`, which the alert rules' `dashboard_url` annotations also use.
"""

from __future__ import annotations

from grafanalib import core as gl

from stackgen import kpis as K
from stackgen import layout
from stackgen.generators.grafanalib_data import plain as _plain
from stackgen.artifact import Artifact, per_model, to_json
from stackgen.generators import grafana_expert as X
from stackgen.generators import slo_rules
from stackgen.model import GPUS, HOSTS, Group, Kpi, Model, Slo
from stackgen.spec.units import fmt_number

SCHEMA_VERSION = 41
DATASOURCE = X.DATASOURCE  # the `${datasource}` variable's choice
DIR = "grafana/dashboards"

GRID_COLUMNS, PANEL_HEIGHT = 24, 8
GROUP_PANEL_WIDTH, OVERVIEW_PANEL_WIDTH = 12, 8
SLO_STAT_WIDTH, SLO_BURN_WIDTH = 4, 12  # three stats and the burn-rate graph fill one line
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

def _target(expr: str, legend: str, fmt: str = "time_series", instant: bool = False,
            ref_id: str = "A") -> dict:
    data = _plain(gl.Target(expr=expr, legendFormat=legend, refId=ref_id, format=fmt,
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


def _dashboard(model: Model, *, uid: str, title: str, tag: str, panels: list,
               variables: tuple = (), links: tuple = (), description: str = "",
               alerts: str = "") -> dict:
    """`alerts`: the matchers of the alerts shown as annotations (default: all)."""
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
    data["templating"]["list"].insert(0, X.datasource_variable())
    data["annotations"] = X.annotations(alerts)
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
        # a disk share (15%) is per filesystem: no absolute colour step on a bytes panel
        "thresholds": {"mode": "absolute", "steps": threshold_steps(
            tuple(t for t in kpi.thresholds if not t.share))},
        "unit": kpi.unit,
    }
    if kpi.unit == "percentunit":
        defaults.update(min=0, max=1)
    if kind == "timeseries":
        bars = K.of(kpi).draw == "bars"
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


def companion_panel(c, *, pid: int, grid: dict) -> dict:
    """A KPI kind's companion panel (`kpis.base.Companion`): so far a heatmap, such as the
    response-time one: request rate per histogram bucket, seconds on the y axis."""
    if c.type != "heatmap":
        raise ValueError(f"no renderer for a {c.type!r} companion panel")
    defaults = {
        "color": {"mode": "thresholds"}, "mappings": [],
        "custom": {"hideFrom": {"legend": False, "tooltip": False, "viz": False},
                   "scaleDistribution": {"type": "linear"}},
        "thresholds": {"mode": "absolute", "steps": threshold_steps(())},
        "unit": c.unit,
    }
    opts = {
        "calculate": False, "cellGap": 1, "cellValues": {"unit": c.unit},
        "color": {"exponent": 0.5, "fill": "dark-orange", "mode": "scheme", "reverse": False,
                  "scale": "exponential", "scheme": "Oranges", "steps": 64},
        "filterValues": {"le": 1e-9}, "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": True},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": c.axis_unit},
    }
    return _panel("heatmap", id=pid, title=c.title, description=c.description,
                  gridPos=gl.GridPos(**grid), targets=[_target(c.expr, c.legend, fmt="heatmap")],
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
    if not model.dashboards_per_group:
        return ()
    url = layout.relative_url(layout.group_uid(model, group), layout.group_title(model, group))
    return ({"targetBlank": False, "title": f"Open {group.name} dashboard",
             "url": url + "?${__url_time_range}&${datasource:queryparam}"},)


def overview(model: Model) -> dict:
    grid = Grid()
    panels = [X.alert_list(grid)]
    for g, group in enumerate(model.groups):
        panels.append(_panel("row", id=layout.overview_row_id(g),
                             title=f"{layout.KIND_TITLE[group.kind]} / {group.name}",
                             gridPos=gl.GridPos(**grid.full_width()), collapsed=False, panels=[]))
        for i, kpi in enumerate(group.kpis):
            panels.append(kpi_panel(group, kpi, pid=layout.overview_panel_id(g, i),
                                    title=f"{group.name} · {kpi.title}",
                                    grid=grid.place(OVERVIEW_PANEL_WIDTH),
                                    links=overview_links(model, group)))
    uid = layout.overview_uid(model)
    return _dashboard(model, uid=uid, title=layout.overview_title(model),
                      tag="overview", panels=panels, links=tuple(X.links(model, uid)),
                      description=f"Every KPI of every group of the {model.stack.name} stack.")


def kpi_panels(group: Group, grid: Grid) -> list[dict]:
    by_instance = has_instance_variable(group)
    panels = []
    for i, kpi in enumerate(group.kpis):
        panels.append(kpi_panel(group, kpi, pid=layout.kpi_panel_id(i), title=kpi.title,
                                grid=grid.place(GROUP_PANEL_WIDTH), by_instance=by_instance))
        companions = K.of(kpi).companions(kpi)
        if len(companions) > 1:  # stackgen.layout has one companion panel id per KPI
            raise ValueError(f"{kpi.kind}: at most one companion panel per KPI")
        for companion in companions:
            panels.append(companion_panel(companion, pid=layout.companion_panel_id(i),
                                          grid=grid.place(GROUP_PANEL_WIDTH)))
    return panels


# --- SLO panels: Sloth's recordings, as slo_rules writes them ------------------------------

SLO_KIND_TITLE = {"availability": "Availability", "latency": "Latency"}
BUDGET_STEPS = [{"color": "red", "value": None}, {"color": "orange", "value": 0},
                {"color": "green", "value": 0.25}]


def slo_target_text(slo: Slo) -> str:
    """"99.9% over 30d", "99% < 500ms over 30d"."""
    under = f" < {slo.threshold_text}" if slo.kind == "latency" and slo.threshold_text else ""
    return f"{slo.objective_text}{under} over {slo.window}"


def slo_title(slo: Slo, what: str) -> str:
    """Complete on its own, since alerts open the burn-rate panel alone (viewPanel)."""
    return f"{SLO_KIND_TITLE.get(slo.kind, slo.kind.capitalize())} SLO · {what} " \
           f"({slo_target_text(slo)})"


def slo_good(slo: Slo) -> str:
    if slo.kind == "latency" and slo.threshold_text:
        return f"requests faster than {slo.threshold_text}"
    return "requests without error"


def slo_query(record: str, group: Group, slo: Slo) -> str:
    return f'{record}{{sloth_id="{slo_rules.sloth_id(group, slo)}"}}'


def slo_decimals(slo: Slo, extra: int = 1) -> int:
    """Decimals of a percentage of `slo`, at least 2: one more than the objective has (to tell
    the SLI from its objective), or `extra=0` the objective's own (99.95% reads 99.95%)."""
    text = fmt_number(round(slo.objective * 100, 9))
    return max(2, len(text.partition(".")[2]) + extra)


def slo_field_config(unit: str, steps: list, decimals: int | None = None, **extra) -> dict:
    defaults = {"color": {"mode": "thresholds"}, "mappings": [],
                "thresholds": {"mode": "absolute", "steps": steps}, "unit": unit, **extra}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {"defaults": defaults, "overrides": []}


def burn_rate_steps(slo: Slo) -> list[dict]:
    """A dashed line at each tier's burn-rate factor, coloured by the alert it belongs to."""
    worst: dict[float, str] = {}
    for tier in slo_rules.tiers(slo):
        severity = slo_rules.SEVERITY[tier.severity]
        if RANK[severity] > RANK[worst.get(tier.factor)]:
            worst[tier.factor] = severity
    return [{"color": "green", "value": None}] + \
        [{"color": COLORS[worst[f]], "value": f} for f in sorted(worst)]


def slo_panel(group: Group, i: int, slo: Slo, name: str, grid: dict) -> dict:
    pid = layout.slo_panel_id(i, name)
    budget = slo_rules.error_budget(slo)
    shortest = slo_rules.windows(slo)[0]
    if name == "objective":
        return _panel(
            "stat", id=pid, title=slo_title(slo, "objective"), gridPos=gl.GridPos(**grid),
            description=f"Share of {slo_good(slo)} the SLO promises over {slo.window}; "
                        f"the error budget is the rest ({budget}).\n\n"
                        "Recording rule: `slo:objective:ratio`",
            targets=[_target(slo_query("slo:objective:ratio", group, slo), "objective")],
            field_config=slo_field_config("percentunit", [{"color": "text", "value": None}],
                                          slo_decimals(slo, extra=0)),
            options={**options("stat"), "colorMode": "none", "graphMode": "none"})
    if name == "sli":
        record = f"slo:sli_error:ratio_rate{slo.period}"
        return _panel(
            "stat", id=pid, title=slo_title(slo, "SLI"),
            gridPos=gl.GridPos(**grid),
            description=f"Share of {slo_good(slo)} over the last {slo.window}: red below "
                        f"the objective of {slo.objective_text}.\n\n"
                        f"Recording rule: `{record}`",
            targets=[_target(f"1 - {slo_query(record, group, slo)}", "SLI")],
            field_config=slo_field_config(
                "percentunit", [{"color": "red", "value": None},
                                {"color": "green", "value": slo.objective}],
                slo_decimals(slo)),
            options=options("stat"))
    if name == "budget_remaining":
        record = "slo:period_error_budget_remaining:ratio"
        return _panel(
            "gauge", id=pid, title=slo_title(slo, "error budget left"),
            gridPos=gl.GridPos(**grid),
            description=f"Share of the {slo.window} error budget ({budget} of requests) not yet "
                        "spent; below 0% once it is overspent (the gauge then shows empty, the "
                        f"value stays negative).\n\nRecording rule: `{record}`",
            targets=[_target(slo_query(record, group, slo), "budget left", instant=True)],
            field_config=slo_field_config("percentunit", BUDGET_STEPS, 1, min=0, max=1),
            options=options("gauge"))
    if name == "burn_rate":
        factors = ", ".join(f"{t.severity} {fmt_number(t.factor)}x over {t.long} and {t.short}"
                            for t in slo_rules.tiers(slo))
        defaults_custom = {
            "drawStyle": "line", "fillOpacity": 10, "lineWidth": 1, "showPoints": "never",
            "spanNulls": False, "thresholdsStyle": {"mode": "dashed"},
        }
        return _panel(
            "timeseries", id=pid, title=slo_title(slo, "burn rate"), gridPos=gl.GridPos(**grid),
            description=f"How fast the error budget burns: the error ratio divided by the budget "
                        f"({budget}); 1x spends exactly the budget over {slo.window}. Dashed "
                        f"lines: the alert tiers ({factors}); a tier fires when both of its "
                        "windows burn faster than its factor.\n\n"
                        "Recording rules: `slo:current_burn_rate:ratio`, "
                        "`slo:period_burn_rate:ratio`",
            targets=[
                _target(slo_query("slo:current_burn_rate:ratio", group, slo),
                        f"current ({shortest})"),
                _target(slo_query("slo:period_burn_rate:ratio", group, slo),
                        f"over {slo.window}", ref_id="B"),
            ],
            field_config={"defaults": {
                "color": {"mode": "palette-classic"}, "custom": defaults_custom, "mappings": [],
                "min": 0, "thresholds": {"mode": "absolute", "steps": burn_rate_steps(slo)},
                "unit": "suffix:x", "decimals": 2,
            }, "overrides": []},
            options=options("timeseries"))
    raise ValueError(f"unknown SLO panel {name!r}")


def slo_panels(model: Model, group: Group, grid: Grid) -> list[dict]:
    """Per SLO of the group, a row header and its layout.SLO_PANELS on one line."""
    panels = []
    for i, slo in enumerate(group.slos):
        panels.append(_panel("row", id=layout.slo_row_id(i),
                             title=f"{SLO_KIND_TITLE.get(slo.kind, slo.kind.capitalize())} SLO: "
                                   f"{slo_target_text(slo)}",
                             gridPos=gl.GridPos(**grid.full_width()), collapsed=False, panels=[]))
        for name in layout.SLO_PANELS:
            width = SLO_BURN_WIDTH if name == "burn_rate" else SLO_STAT_WIDTH
            panels.append(slo_panel(group, i, slo, name, grid.place(width)))
    return panels


def instance_variables(group: Group) -> tuple:
    if not has_instance_variable(group):
        return (_variable("instance", "Instance", X.instance_variable_query(group)),)
    metric = group.kpis[0].record if group.kpis else "up"
    selector = f'{metric}{{{group.group_label}="{group.name}"}}'
    return (_variable("instance", "Instance", f"label_values({selector}, instance)"),)


def group_dashboard(model: Model, group: Group) -> dict:
    grid = Grid()
    panels = kpi_panels(group, grid) + X.group_panels(group, grid)
    panels += slo_panels(model, group, grid)
    uid = layout.group_uid(model, group)
    return _dashboard(model, uid=uid, title=layout.group_title(model, group), tag=group.kind,
                      panels=panels, variables=instance_variables(group),
                      links=tuple(X.links(model, uid)), description=group.description,
                      alerts=f'{group.group_label}="{group.name}"')


def stack_dashboards(model: Model) -> list[dict]:
    """The containers (cAdvisor) and the monitoring stack's own health."""
    out = []
    for uid, title, tag, panels, what in (
            (layout.containers_uid(model), layout.containers_title(model), "containers",
             X.containers_panels, "The Compose stack's containers, as cAdvisor sees them"),
            (layout.stack_uid(model), layout.stack_title(model), "stack", X.stack_panels,
             "Prometheus and Alertmanager, from their own metrics")):
        out.append(_dashboard(model, uid=uid, title=title, tag=tag, panels=panels(Grid()),
                              links=tuple(X.links(model, uid)), description=f"{what}."))
    return out


def iter_dashboards(model: Model):
    """Each dashboard in turn (the caller serialises one before the next is built)."""
    if model.dashboards_overview:
        yield overview(model)
    if model.dashboards_per_group:
        for group in model.groups:
            yield group_dashboard(model, group)
        yield from stack_dashboards(model)


def dashboards(model: Model) -> list[dict]:
    return list(iter_dashboards(model))


def paths(model: Model) -> list[str]:
    """The dashboards' paths, in the order of `generate`, without building them."""
    return [f"{DIR}/{uid}.json" for uid in layout.dashboard_uids(model)]


@per_model
def generate(model: Model) -> list[Artifact]:
    return [Artifact(f"{DIR}/{board['uid']}.json", to_json(board))
            for board in iter_dashboards(model)]
