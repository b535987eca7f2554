"""services.<name>.kpis.custom[]: any PromQL expression the user writes, with a name, unit and
panel of their choice. The demo exporter serves its inputs and solves for their values."""

from __future__ import annotations

from stackgen.kpis import base as B
from stackgen.kpis.base import ABOVE, BELOW, KpiKind, KpiShape
from stackgen.kpis.synth import gauge, series_text
from stackgen.model import SERVICES
from stackgen.spec import units as U


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
            out.append(m.kpi(cp, self.kind, cname, c, self.shape(m, cp, c, job, window),
                             group_labels))
        return out

    def shape(self, m, path, d, job, window):
        name = d["name"]
        return KpiShape(
            title=d.get("description") or name.replace("_", " ").capitalize(),
            record=f"service:{name}:custom",
            expr=d["expr"],
            unit=B.grafana_unit(d["unit"]) if "unit" in d else "short",
            panel=d.get("panel") or "timeseries", alert=B.camel(name), aggregated=True,
            user_expr=d["expr"],
        )

    def test_inputs(self, kpi, base, levels):
        """Fed through its own recorded series (its expression is the user's own)."""
        return [(series_text(kpi.record, dict(kpi.record_labels)), gauge(levels))]

    # The demo exporter drives it by solving for its inputs (no parameter of its own).
    incidents = {"custom-crossing": None, "custom-high": ABOVE, "custom-low": BELOW}
    default_incident = "custom-crossing"


KIND = Custom()
