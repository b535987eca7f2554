"""services.<name>.kpis.drift: the highest data-drift score any target reports."""

from __future__ import annotations

from stackgen.kpis.base import ABOVE, GaugeKind
from stackgen.spec import units as U


class Drift(GaugeKind):
    kind, key, order = "drift", "drift", 40
    parse = staticmethod(U.number)
    default_for = "15m"
    title, record_suffix, aggregation = "Data drift score", "max", "max"
    unit, panel, alert = "short", "timeseries", "DataDrift"

    healthy = 0.05
    incidents = {"drift-rise": ABOVE}
    default_incident = "drift-rise"


KIND = Drift()
