"""services.<name>.kpis.custom[]: any PromQL expression the user writes, with a name, unit and
panel of their choice. The demo exporter serves its inputs and solves for their values."""

from __future__ import annotations

from stackgen.kpis import base as B
from stackgen.kpis.base import ABOVE, BELOW, KpiKind, KpiShape
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import SERVICES
from stackgen.spec import units as U
from stackgen.spec.annotations import template_problem

THRESHOLDS = ("warning", "critical", "warning_below", "critical_below")


class Custom(KpiKind):
    kind, key, group, order = "custom", "custom", SERVICES, 90
    parse = staticmethod(U.parse_any)
    default_for = "5m"

    def kpis(self, m, path, kd, job, window, group_labels):
        from stackgen import kpis as registry

        builtin = [k.key for k in registry.kinds_of(SERVICES) if k is not self]
        out, seen = [], {}
        for i, c in enumerate(kd.get(self.key, [])):
            cp = path + (self.key, i)
            cname = c["name"]
            if cname in builtin:
                m.error(cp + ("name",), "kpis/custom-name",
                        f"custom KPI name {cname!r} is the name of a built-in KPI; choose "
                        "another so that the `kpi` label stays unambiguous")
                continue
            if cname in seen:
                m.error(cp + ("name",), "kpis/duplicate",
                        f"custom KPI {cname!r} is defined twice in this service (first at "
                        f"custom[{seen[cname]}])")
                continue
            seen[cname] = i
            if not m.promql(cp + ("expr",), c["expr"], f"custom KPI {cname!r} expr",
                            instant=True):
                continue
            if not checked(m, cp, c):
                continue
            out.append(m.kpi(cp, self.kind, cname, c, self.shape(m, cp, c, job, window),
                             group_labels))
        return out

    def shape(self, m, path, d, job, window):
        name = d["name"]
        return KpiShape(
            title=name,  # the description goes to the panel's description
            record=f"service:{name}:custom",
            expr=d["expr"],
            unit=B.grafana_unit(d["unit"]) if "unit" in d else "short",
            panel=d.get("panel") or "timeseries", alert=B.camel(name), aggregated=True,
            user_expr=d["expr"], alert_exact=d.get("alert"), summary=d.get("summary"),
            runbook_url=d.get("runbook_url"),
        )

    def test_inputs(self, kpi, base, levels):
        """Fed through its own recorded series (its expression is the user's own)."""
        return [(series_text(kpi.record, dict(kpi.record_labels)), gauge(levels))]

    # The demo exporter drives it by solving for its inputs (no parameter of its own).
    incidents = {"custom-crossing": None, "custom-high": ABOVE, "custom-low": BELOW}
    default_incident = "custom-crossing"


def checked(m, path, c: dict) -> bool:
    """A custom KPI's `alert`, `summary` and thresholds read as meant (else errors)."""
    ok = True
    for key in ("summary", "runbook_url"):
        why = template_problem(c[key]) if key in c else None
        if why:
            m.error(path + (key,), "kpis/template", f"custom KPI {c['name']!r} {key}: {why}")
            ok = False
    sides = {key.endswith("_below") for key in THRESHOLDS if key in c}
    if "alert" in c and len(sides) == 2:
        m.error(path + ("alert",), "kpis/alert-name",
                f"custom KPI {c['name']!r} has thresholds above and below, which would give "
                f"two different alerts the one name {c['alert']!r}; keep thresholds on one "
                "side, or drop `alert` (the alerts are then named <Name>High and <Name>Low)",
                at_key=True)
        ok = False
    unit = c.get("unit")
    for key in THRESHOLDS:
        if key not in c or unit is None:
            continue
        raw, where = c[key], f"custom KPI {c['name']!r} {key}"
        percent = isinstance(raw, str) and raw.strip().endswith("%")
        n = U.number(raw)
        if unit == "percentunit" and n is not None and n > 1:
            m.error(path + (key,), "values/percent-unit",
                    f"{where}: {raw} with unit percentunit is the ratio {U.fmt_number(n)} "
                    f"({U.fmt_number(n * 100)}%), which a ratio never reaches; percentunit "
                    f"values are ratios (1 = 100%); did you mean {U.fmt_number(n)}%?")
            ok = False
        elif percent and unit != "percentunit":
            value = U.parse_ratio(raw)
            hint = (f"; did you mean {U.fmt_number(value * 100)} (unit percent shows 0-100)?"
                    if unit == "percent" and value is not None else
                    "; write the threshold in the unit's own terms, or use unit percentunit "
                    "for a ratio")
            m.error(path + (key,), "values/percent-unit",
                    f"{where}: {raw} is read as the ratio {U.fmt_number(value or 0)}, but unit "
                    f"{unit} does not show ratios{hint}")
            ok = False
    return ok


KIND = Custom()
