"""Alertmanager matchers (`severity="critical"`, `team=~"ml-.*"`): parse, check, normalise."""

from __future__ import annotations

import re
from dataclasses import dataclass

_MATCHER = re.compile(
    r'^\s*(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^"\s,{}]*)\s*$'
)


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'

    def matches(self, labels: dict) -> bool:
        v = labels.get(self.name, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        hit = re.fullmatch(self.value, v) is not None
        return hit if self.op == "=~" else not hit


def parse(text: str) -> Matcher:
    """Parse one matcher; raise ValueError with a message that says what was expected."""
    m = _MATCHER.match(text)
    if not m:
        raise ValueError(
            f"invalid matcher {text!r}: expected label, operator (=, !=, =~, !~) and value, "
            'e.g. severity="critical"')
    value = m.group("value")
    if value.startswith('"'):
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    if m.group("op") in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression in matcher {text!r}: {exc}") from None
    return Matcher(m.group("name"), m.group("op"), value)
