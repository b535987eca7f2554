"""services.<name>.kpis.accuracy: the lowest model accuracy any target reports."""

from __future__ import annotations

from stackgen.kpis.base import BELOW, GaugeKind


class Accuracy(GaugeKind):
    kind, key, order = "accuracy", "accuracy", 50
    ratio = True
    default_for = "10m"
    title, record_suffix, aggregation = "Model accuracy", "min", "min"
    unit, panel, alert = "percentunit", "stat", "ModelAccuracy"

    healthy = 0.93
    incidents = {"accuracy-drop": BELOW}
    default_incident = "accuracy-drop"


KIND = Accuracy()
