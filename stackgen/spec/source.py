"""Read a YAML spec into plain data and an index of where every value stands.

`yaml.compose` gives the node tree with marks; we build the Python values ourselves so that
each path (a tuple of keys and indexes) maps to the position of its key and of its value, and
so that a duplicated key is an error instead of a silent overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from stackgen.problems import ERROR, Position, Problem

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Source:
    """A loaded spec: its data, its file name, and where each path stands in it."""

    file: str
    data: object
    values: dict = field(default_factory=dict)  # path -> Position of the value
    keys: dict = field(default_factory=dict)  # path -> Position of the mapping key

    def pos(self, path) -> Position:
        """Position of the value at `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Position(1, 1))

    def key_pos(self, path) -> Position:
        path = tuple(path)
        return self.keys.get(path) or self.pos(path)

    def problem(self, path, check: str, message: str, severity: str = ERROR, at_key=False):
        pos = self.key_pos(path) if at_key else self.pos(path)
        return Problem(severity, check, message, self.file, pos)


def _mark(mark) -> Position:
    return Position(mark.line + 1, mark.column + 1)


class _Builder:
    def __init__(self, src: Source):
        self.src = src
        self.problems: list[Problem] = []
        self._scalar = yaml.SafeLoader("")  # used only to construct scalars

    def build(self, node, path=()):
        self.src.values[path] = _mark(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar.construct_object(node, deep=True)

    def _mapping(self, node, path):
        out: dict = {}
        first_seen: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged = self.build(value_node, path)
                for item in merged if isinstance(merged, list) else [merged]:
                    if isinstance(item, dict):
                        for k, v in item.items():
                            out.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(
                    Problem(ERROR, "yaml/key", "a mapping key must be a plain scalar",
                            self.src.file, _mark(key_node.start_mark)))
                continue
            key = self._scalar.construct_object(key_node)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = str(key)
            kpos = _mark(key_node.start_mark)
            if key in first_seen:
                prev = first_seen[key]
                self.problems.append(
                    Problem(ERROR, "yaml/duplicate-key",
                            f"duplicate key {key!r} (first defined at line {prev.line}, "
                            f"column {prev.col}); a key may appear once per mapping",
                            self.src.file, kpos))
                continue
            first_seen[key] = kpos
            child = path + (key,)
            self.src.keys[child] = kpos
            out[key] = self.build(value_node, child)
        return out


def _char_at(text: str, mark) -> str:
    """The character a YAML error mark points at ('' when the mark is past the text)."""
    if mark is None:
        return ""
    lines = text.splitlines()
    if mark.line < len(lines) and mark.column < len(lines[mark.line]):
        return lines[mark.line][mark.column]
    return ""


def load_text(text: str, file: str) -> tuple[Source, list[Problem]]:
    """Parse `text`; return the Source and any YAML-level problems (syntax, duplicate keys)."""
    src = Source(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or "invalid YAML"
        ch = _char_at(text, mark)
        if what == "found character that cannot start any token" and ch:
            what = ("found a tab character; YAML must be indented with spaces, not tabs"
                    if ch == "\t" else
                    f"found character {ch!r} that cannot start a value; put the value in quotes")
        elif exc.context:
            cm = exc.context_mark
            if cm and mark and (cm.line, cm.column) != (mark.line, mark.column):
                what = (f"{what} ({exc.context} that starts at line {cm.line + 1}, "
                        f"column {cm.column + 1})")
            else:
                what = f"{what} ({exc.context})"
        return src, [Problem(ERROR, "yaml/syntax", f"YAML syntax error: {what}", file,
                             _mark(mark) if mark else Position(1, 1))]
    except yaml.YAMLError as exc:  # e.g. a reader error on a control character
        return src, [Problem(ERROR, "yaml/syntax", f"YAML error: {exc}", file, Position(1, 1))]
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
        # an empty file, only comments, or a document that is just `---` or `null`
        return src, [Problem(ERROR, "yaml/empty", "the spec is empty; expected a mapping "
                             "with at least `version: 1` and `stack:`", file, Position(1, 1))]
    builder = _Builder(src)
    try:
        src.data = builder.build(node)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        builder.problems.append(Problem(ERROR, "yaml/value", f"cannot read value: {exc.problem}",
                                        file, _mark(mark) if mark else Position(1, 1)))
    return src, builder.problems


def load_file(path: str) -> tuple[Source, list[Problem]]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        return Source(file=path, data=None), [
            Problem(ERROR, "spec/read", f"cannot read spec: {exc.strerror}", path)]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Source(file=path, data=None), [
            Problem(ERROR, "spec/encoding", f"spec is not UTF-8 ({exc.reason} at byte {exc.start})", path)]
    return load_text(text, path)
