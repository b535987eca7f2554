"""Annotation text a spec may write as a template (a custom KPI's `summary`).

Prometheus reads an alert's annotations as Go templates; promtool refuses one that does not
parse, and stackgen's generated promtool tests predict every annotation exactly. So a spec's
template may use just the actions stackgen can expand the way Prometheus does
(`stackgen.humanize.expand`): `{{ $labels.NAME }}`, `{{ $value }}` and
`{{ $value | FUNC }}` with FUNC one of humanize, humanize1024, humanizePercentage,
humanizeDuration. Anything else between braces is an error at the line, with the reason.
"""

from __future__ import annotations

import re

from stackgen.humanize import FUNCS

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_LABEL = re.compile(r"\$labels\.[a-zA-Z_][a-zA-Z0-9_]*")
_VALUE = re.compile(r"\$value(?:\s*\|\s*([A-Za-z0-9_]+))?")
ALLOWED = ("{{ $labels.NAME }}", "{{ $value }}", "{{ $value | " + " / ".join(FUNCS) + " }}")


def template_problem(text: str) -> str | None:
    """Why `text` is not a template stackgen can pass on and predict, or None."""
    for m in _ACTION.finditer(text):
        inner = m.group(1).strip()
        if _LABEL.fullmatch(inner):
            continue
        v = _VALUE.fullmatch(inner)
        if v and (v.group(1) is None or v.group(1) in FUNCS):
            continue
        if v:
            return (f"{m.group(0)!r} uses {v.group(1)!r}, which is not one of Prometheus' "
                    f"humanize functions stackgen knows ({', '.join(FUNCS)})")
        return (f"{m.group(0)!r} is not one of the template actions stackgen can check and "
                f"predict in its tests; expected {', '.join(ALLOWED)}")
    rest = _ACTION.sub("", text)
    for brace in ("{{", "}}"):
        if brace in rest:
            return (f"it has a {brace!r} without its pair, which Prometheus reads as a broken "
                    "template; expected {{ ... }} around each action")
    return None
