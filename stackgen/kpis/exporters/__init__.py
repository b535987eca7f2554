"""What the exporters expose beyond the KPIs: their dashboards' panels and the demo series.

One module per exporter, the one home of its metric names (tests/test_kpis.py checks that):
`node` (node_exporter: a host group's USE panels), `dcgm` (NVIDIA's DCGM exporter: a GPU
group's panels), `cadvisor` (the Compose stack's container panels), `stack` (Prometheus' and
Alertmanager's own metrics). Each gives `panels(...)`: `Panel`s that
generators/grafana_expert.py renders (the only module that knows Grafana's JSON); `node`,
`dcgm` and `cadvisor` also give `demo_samples(...)`: the "background" series the demo
exporter serves for them, healthy and alive (the KPI kinds serve what their KPIs read).

Panel ids are `slot`s (1 and up): fixed per panel here, so a panel keeps its id whatever the
spec says (stackgen.layout adds the base of a group dashboard).
"""

from __future__ import annotations

from dataclasses import dataclass

from stackgen.model import GPUS, HOSTS

RATE = "$__rate_interval"  # Grafana's rate window: at least four scrape intervals


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    """A panel of an exporter's section. type: timeseries | stat | row (a section header)."""

    slot: int
    title: str
    description: str = ""
    unit: str = "short"
    queries: tuple = ()
    type: str = "timeseries"
    width: int = 8
    stack: bool = False
    min: float | None = None
    max: float | None = None
    thresholds: tuple = ()  # ((value, colour), ...) above a green base
    draw: str = "line"  # line | bars | points
    unless: str = ""  # a KPI kind that shows the same: no panel where the group has that KPI


def row(slot: int, title: str) -> Panel:
    return Panel(slot, title, type="row", width=24)


def background(group_kind: str) -> tuple:
    """The demo_samples(sim, i, p, wobble, add) functions of a group kind's exporter."""
    from stackgen.kpis.exporters import dcgm, node

    return {HOSTS: (node.demo_samples,), GPUS: (dcgm.demo_samples,)}.get(group_kind, ())


def group_panels(group_kind: str, sel: str) -> tuple:
    """The exporter's panels of a host or GPU group; `sel`: the matchers of its series."""
    from stackgen.kpis.exporters import dcgm, node

    module = {HOSTS: node, GPUS: dcgm}.get(group_kind)
    return module.panels(sel) if module else ()
