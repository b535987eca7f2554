"""The KPI kinds: one module each, found here by their module-level `KIND` object.

Each module's docstring says which spec key it reads and what its value is (host_cpu,
host_memory, host_disk, gpu_utilization, gpu_memory, response_time, throughput, error_rate,
drift, accuracy, custom). `base` says what a kind declares; `synth` writes the series
values its promtool test inputs use. Adding a kind: a new module here with a `KIND`, its
entry in spec/schema.json and its docs (docs/adding-a-kpi-kind.md walks through it).
Outside this package only the SLOs (which read the error_rate and response_time KPIs'
series) and the smoke test's override (which shortens custom expressions' ranges) name a
kind.
"""

from __future__ import annotations

import importlib
import pkgutil

from stackgen.kpis.base import KpiKind
from stackgen.model import GPUS, HOSTS, SERVICES

GROUP_ORDER = (HOSTS, GPUS, SERVICES)

_kinds: tuple | None = None


def all_kinds() -> tuple:
    """Every registered kind, by group kind (hosts, gpus, services), then `order`."""
    global _kinds
    if _kinds is None:
        found = []
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
            module = importlib.import_module(f"{__name__}.{info.name}")
            kind = getattr(module, "KIND", None)
            if isinstance(kind, KpiKind):
                found.append(kind)
        found.sort(key=lambda k: (GROUP_ORDER.index(k.group), k.order, k.kind))
        seen: dict = {}
        for k in found:
            for ident in (k.kind, (k.group, k.key)):
                if ident in seen:
                    raise RuntimeError(f"KPI kinds {seen[ident]!r} and {k!r} share {ident}")
                seen[ident] = k
        _kinds = tuple(found)
    return _kinds


def kinds_of(group_kind: str) -> tuple:
    """The kinds of one group kind, in output order."""
    return tuple(k for k in all_kinds() if k.group == group_kind)


def kind(name: str) -> KpiKind:
    """The kind whose `Kpi.kind` is `name`."""
    for k in all_kinds():
        if k.kind == name:
            return k
    raise KeyError(f"no KPI kind {name!r}")


def of(kpi) -> KpiKind:
    """The kind of a `model.Kpi`."""
    return kind(kpi.kind)


def incident_kinds() -> dict:
    """{demo incident kind: (KPI kind, side)} of every kind, in registry order."""
    return {name: (k.kind, side) for k in all_kinds() for name, side in k.incidents.items()}
