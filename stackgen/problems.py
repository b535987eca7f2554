"""Findings: one type for every error and warning, and the reporters that print them.

Every check, from the YAML parser to `stackgen lint`, reports a `Problem`. They are sorted by
position and printed by one of the reporters (text, json, github).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, order=True)
class Position:
    """A 1-based line and column in a file."""

    line: int = 0
    col: int = 0


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" | "warning"
    check: str  # id such as "yaml/syntax", "schema/enum", "routes/receiver"
    message: str
    file: str = ""
    pos: Position = field(default_factory=Position)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def sort_key(self):
        return (self.file, self.pos.line, self.pos.col, self.check, self.message)

    def __str__(self) -> str:
        return f"{self.location()}: {self.severity}: {self.message} [{self.check}]"

    def location(self) -> str:
        if not self.file:
            return "stackgen"
        if self.pos.line:
            return f"{self.file}:{self.pos.line}:{self.pos.col}"
        return self.file


class SpecError(Exception):
    """Raised when a spec cannot be used; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__(f"{sum(p.is_error for p in self.problems)} error(s) in spec")


def _source_line(file: str, line: int, cache: dict) -> str | None:
    if not file or line < 1:
        return None
    if file not in cache:
        try:
            with open(file, encoding="utf-8", errors="replace") as fh:
                cache[file] = fh.read().split("\n")  # YAML breaks at U+2028 too; editors do not
        except OSError:
            cache[file] = []
    lines = cache[file]
    return lines[line - 1] if line <= len(lines) else None


def render_text(problems: Iterable[Problem], show_source: bool = True) -> str:
    """`file:line:col: severity: message [check]`, then the source line with a caret."""
    cache: dict = {}
    out = []
    for p in problems:
        out.append(str(p))
        src = _source_line(p.file, p.pos.line, cache) if show_source else None
        if src is not None:
            out.append(f"    {src}")
            out.append("    " + " " * max(p.pos.col - 1, 0) + "^")
    return "\n".join(out) + ("\n" if out else "")


def render_json(problems: Iterable[Problem]) -> str:
    rows = [
        {
            "severity": p.severity,
            "check": p.check,
            "message": p.message,
            "file": p.file,
            "line": p.pos.line,
            "column": p.pos.col,
        }
        for p in problems
    ]
    return json.dumps(rows, indent=2) + "\n"


def _gh_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def render_github(problems: Iterable[Problem]) -> str:
    """GitHub Actions workflow commands: `::error file=F,line=L,col=C::message`."""
    out = []
    for p in problems:
        props = []
        if p.file:
            props.append(f"file={p.file}")
            if p.pos.line:
                props.append(f"line={p.pos.line}")
                props.append(f"col={p.pos.col}")
        props.append(f"title=stackgen {p.check}")
        out.append(f"::{p.severity} {','.join(props)}::{_gh_escape(p.message)}")
    return "\n".join(out) + ("\n" if out else "")


RENDERERS = {"text": render_text, "json": render_json, "github": render_github}
