"""Read a YAML spec into plain data and an index of where every value stands.

We read the parser's events (libyaml when available) and build the Python values ourselves,
so that each path (a tuple of keys and indexes) maps to the position of its key and of its
value, and so that hostile or careless YAML is an error at its line, never a hang or a
traceback:

- a duplicated key is an error instead of a silent overwrite;
- aliases are expanded to at most `MAX_ALIAS_VALUES` values in all (a "billion laughs"
  alias bomb is 13 lines that expand to billions of values), and an alias inside its own anchor (a
  recursive structure) is an error; values that come from an alias are placed at the alias;
- nesting is bounded at `MAX_DEPTH` (600 nested brackets would exhaust Python's stack in
  the schema validator); the deepest real spec (routes within routes) is far below;
- `<<:` must merge mappings, and only the YAML tags a spec can use are accepted;
- positions are lines as an editor counts them: YAML also breaks lines at U+0085, U+2028
  and U+2029 (even inside a quoted string), which would shift every later line number, so
  marks are mapped back to real lines; a position past the end names the last line.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field

import yaml

from stackgen.problems import ERROR, Position, Problem

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"

MAX_DEPTH = 64  # nesting of mappings and lists; the reference spec nests 6 deep
MAX_ALIAS_VALUES = 100_000  # values brought in by aliases; the reference spec has 400 values

_T = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_T + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_SEQ_TAGS = {_T + "seq"}
_MAP_TAGS = {_T + "map"}

# Characters YAML forbids in a stream (YAML 1.1 "printable"): C0 controls but tab and
# line breaks, DEL, C1 controls but NEL, surrogates, U+FFFE/U+FFFF.
_UNPRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_REAL_BREAK = re.compile("\r\n|[\r\n]")


@dataclass
class Source:
    """A loaded spec: its data, its file name, and where each path stands in it."""

    file: str
    data: object
    values: dict = field(default_factory=dict)  # path -> Position of the value
    keys: dict = field(default_factory=dict)  # path -> Position of the mapping key
    sha256: str = ""  # of the bytes read (a spec may be a pipe that reads only once)

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


class Lines:
    """Maps a YAML mark (line and column in YAML's own line count) or a character index to
    the line and column an editor shows."""

    def __init__(self, text: str):
        self.text = text
        self.yaml_starts = [0] + [m.end() for m in _YAML_BREAK.finditer(text)]
        self.real_starts = [0] + [m.end() for m in _REAL_BREAK.finditer(text)]

    def index(self, mark) -> int:
        line = min(max(mark.line, 0), len(self.yaml_starts) - 1)
        return self.yaml_starts[line] + max(mark.column, 0)

    def raw_at(self, index: int) -> Position:
        index = min(max(index, 0), len(self.text))
        line = bisect.bisect_right(self.real_starts, index) - 1
        return Position(line + 1, index - self.real_starts[line] + 1)

    def at(self, index: int) -> Position:
        """The position of a character; past the final line break, the end of the last line
        (a parser's end-of-file mark names a line that does not exist)."""
        index = min(max(index, 0), len(self.text))
        if index == len(self.text) and len(self.real_starts) > 1 and \
                self.real_starts[-1] == len(self.text):
            index = len(self.text) - (2 if self.text.endswith("\r\n") else 1)
        return self.raw_at(index)

    def pos(self, mark) -> Position:
        return self.at(self.index(mark))

    def char(self, mark) -> str:
        i = self.index(mark)
        return self.text[i] if 0 <= i < len(self.text) else ""


class _Stop(Exception):
    """Raised to abandon a document (too deep, too big): the problem is already recorded."""


class _Builder:
    def __init__(self, src: Source, lines: Lines, events):
        self.src = src
        self.lines = lines
        self.events = events
        self.problems: list[Problem] = []
        self.loader = yaml.SafeLoader("")  # resolves and constructs scalars
        self.anchors: dict = {}  # name -> (value, node count)
        self.open_anchors: set = set()
        self.count = 0  # values built so far (an anchor's size is the difference)
        self.expanded = 0  # values brought in by aliases

    def error(self, check, message, mark) -> None:
        self.problems.append(Problem(ERROR, check, message, self.src.file, self.lines.pos(mark)))

    def _expand(self, n, mark) -> None:
        self.count += n
        self.expanded += n
        if self.expanded > MAX_ALIAS_VALUES:
            self.error("yaml/too-big", f"aliases expand to more than {MAX_ALIAS_VALUES} values "
                       "(aliases of aliases?); refused so that a small file cannot make "
                       "stackgen run out of time or memory", mark)
            raise _Stop

    def node(self, ev, path, depth):
        """Build the value that starts with event `ev` at `path`."""
        pos = self.lines.pos(ev.start_mark)
        if isinstance(ev, yaml.AliasEvent):
            return self.alias(ev, path, pos)
        self.src.values[path] = pos
        anchor = getattr(ev, "anchor", None)
        before = self.count
        self.count += 1
        if anchor is not None:
            self.open_anchors.add(anchor)
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if depth >= MAX_DEPTH:
                self.error("yaml/too-deep", f"the spec nests deeper than {MAX_DEPTH} levels of "
                           "mappings and lists; no spec needs that many", ev.start_mark)
                raise _Stop
            self.check_tag(ev, _MAP_TAGS if isinstance(ev, yaml.MappingStartEvent)
                           else _SEQ_TAGS)
            if isinstance(ev, yaml.MappingStartEvent):
                value = self.mapping(path, depth + 1)
            else:
                value = []
                for ev2 in self.items(yaml.SequenceEndEvent):
                    value.append(self.node(ev2, path + (len(value),), depth + 1))
        else:
            value = self.scalar(ev)
        if anchor is not None:
            self.open_anchors.discard(anchor)
            self.anchors[anchor] = (value, self.count - before)
        return value

    def items(self, end):
        while True:
            ev = next(self.events)
            if isinstance(ev, end):
                return
            yield ev

    def check_tag(self, ev, allowed) -> bool:
        tag = ev.tag
        if tag is None or tag == "!" or tag in allowed:
            return True
        self.error("yaml/tag", f"unsupported YAML tag {tag!r}; a spec uses plain values "
                   "(remove the tag)", ev.start_mark)
        return False

    def scalar(self, ev):
        tag = ev.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, ev.value, ev.implicit)
        elif not self.check_tag(ev, _SCALAR_TAGS):
            return ev.value
        if tag == _MERGE_TAG:
            return ev.value  # `<<` as a key is handled in mapping(); as a value it is text
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)
        construct = self.loader.yaml_constructors.get(tag)
        if construct is None:
            return ev.value
        try:
            return construct(self.loader, node)
        except (ValueError, KeyError, TypeError, OverflowError, yaml.YAMLError) as exc:
            what = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
            self.error("yaml/value", f"cannot read value {ev.value!r} as "
                       f"{tag.rsplit(':', 1)[-1]}: {what}", ev.start_mark)
            return ev.value

    def alias(self, ev, path, pos):
        name = ev.anchor
        if name in self.open_anchors:
            self.error("yaml/alias", f"alias *{name} is inside its own anchor &{name} (a "
                       "recursive structure); a spec must be a tree", ev.start_mark)
            self.src.values[path] = pos
            return None
        if name not in self.anchors:  # the parser reports this first; kept for safety
            self.error("yaml/alias", f"alias *{name} names no anchor", ev.start_mark)
            self.src.values[path] = pos
            return None
        value, size = self.anchors[name]
        self._expand(size, ev.start_mark)
        self.place(value, path, pos)  # every value that came from the alias is at the alias
        return value

    def place(self, value, path, pos) -> None:
        stack = [(value, path)]
        while stack:
            v, p = stack.pop()
            self.src.values[p] = pos
            if isinstance(v, dict):
                for k, x in v.items():
                    self.src.keys[p + (k,)] = pos
                    stack.append((x, p + (k,)))
            elif isinstance(v, list):
                stack.extend((x, p + (i,)) for i, x in enumerate(v))

    def mapping(self, path, depth):
        out: dict = {}
        first_seen: dict = {}
        merged: dict = {}
        for key_ev in self.items(yaml.MappingEndEvent):
            if not isinstance(key_ev, (yaml.ScalarEvent, yaml.AliasEvent)):
                self.error("yaml/key", "a mapping key must be a plain scalar", key_ev.start_mark)
                self.node(key_ev, path + (object(),), depth)  # read past the key
                self.node(next(self.events), path + (object(),), depth)  # and its value
                continue
            value_ev = next(self.events)
            if isinstance(key_ev, yaml.ScalarEvent) and key_ev.tag is None and \
                    key_ev.value == "<<" and key_ev.implicit[0]:
                self.merge(value_ev, path, depth, merged)
                continue
            kpos = self.lines.pos(key_ev.start_mark)
            if isinstance(key_ev, yaml.AliasEvent):
                self.error("yaml/key", "a mapping key must be a plain scalar, not an alias",
                           key_ev.start_mark)
                self.node(value_ev, path + (object(),), depth)
                continue
            key = self.scalar(key_ev)
            if key_ev.anchor is not None:
                self.anchors[key_ev.anchor] = (key, 1)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = str(key)
            if key in first_seen:
                prev = first_seen[key]
                self.error("yaml/duplicate-key",
                           f"duplicate key {key!r} (first defined at line {prev.line}, "
                           f"column {prev.col}); a key may appear once per mapping",
                           key_ev.start_mark)
                self.node(value_ev, path + (object(),), depth)  # read past it
                continue
            first_seen[key] = kpos
            child = path + (key,)
            self.src.keys[child] = kpos
            out[key] = self.node(value_ev, child, depth)
        for k, v in merged.items():
            out.setdefault(k, v)
        return out

    def merge(self, ev, path, depth, merged: dict) -> None:
        """`<<: *a` or `<<: [*a, *b]`: keys of the mapping(s), unless the mapping has them."""
        tmp = path + ("<<",)
        value = self.node(ev, tmp, depth)
        sources = value if isinstance(ev, yaml.SequenceStartEvent) else [value]
        if not all(isinstance(m, dict) for m in sources):
            self.error("yaml/merge", "`<<:` merges a mapping (or a list of mappings) into this "
                       "one; this value is not a mapping", ev.start_mark)
            return
        for m in sources:
            for k, v in m.items():
                merged.setdefault(k, v)
        # the merged values stand where they were written (or at the alias that brought them)
        cut = len(tmp) + (1 if isinstance(ev, yaml.SequenceStartEvent) else 0)
        for table in (self.src.values, self.src.keys):
            for p in [p for p in table if p[:len(tmp)] == tmp]:
                pos = table.pop(p)
                if len(p) > cut:
                    table.setdefault(path + p[cut:], pos)


def _syntax_problem(exc, lines: Lines, file: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or "invalid YAML"
    ch = lines.char(mark) if mark else ""
    if what == "found character that cannot start any token" and ch:
        what = ("found a tab character; YAML must be indented with spaces, not tabs"
                if ch == "\t" else
                f"found character {ch!r} that cannot start a value; put the value in quotes")
    elif exc.context:
        cm = exc.context_mark
        if cm and mark and (cm.line, cm.column) != (mark.line, mark.column):
            c = lines.pos(cm)
            what = f"{what} ({exc.context} that starts at line {c.line}, column {c.col})"
        else:
            what = f"{what} ({exc.context})"
    return Problem(ERROR, "yaml/syntax", f"YAML syntax error: {what}", file,
                   lines.pos(mark) if mark else Position(1, 1))


def _unprintable(text: str, lines: Lines, file: str) -> list[Problem]:
    out = []
    for m in _UNPRINTABLE.finditer(text):
        c = m.group()
        out.append(Problem(ERROR, "yaml/character",
                           f"character U+{ord(c):04X} is not allowed in YAML (a control "
                           "character or a broken encoding); remove it", file, lines.at(m.start())))
        if len(out) == 20:
            break
    return out


def load_text(text: str, file: str) -> tuple[Source, list[Problem]]:
    """Parse `text`; return the Source and any YAML-level problems (syntax, duplicate keys)."""
    src = Source(file=file, data=None)
    lines = Lines(text)
    bad = _unprintable(text, lines, file)
    if bad:
        return src, bad
    events = yaml.parse(text, Loader=_Loader)
    builder = _Builder(src, lines, events)
    try:
        next(events)  # stream start
        ev = next(events)
        root = None
        if isinstance(ev, yaml.DocumentStartEvent):
            root = builder.node(next(events), (), 0)
            next(events)  # document end
            ev = next(events)
            if isinstance(ev, yaml.DocumentStartEvent):
                builder.error("yaml/documents", "a second YAML document (after `---`); the spec "
                              "must be a single document", ev.start_mark)
    except yaml.MarkedYAMLError as exc:
        return Source(file=file, data=None), [_syntax_problem(exc, lines, file)]
    except yaml.YAMLError as exc:  # e.g. a reader error
        where = lines.at(getattr(exc, "position", 0) or 0)
        return Source(file=file, data=None), [
            Problem(ERROR, "yaml/syntax", f"YAML error: {str(exc).splitlines()[0]}", file, where)]
    except _Stop:
        return Source(file=file, data=None), builder.problems
    if root is None and not builder.problems:
        # an empty file, only comments, or a document that is just `---` or `null`
        return src, [Problem(ERROR, "yaml/empty", "the spec is empty; expected a mapping "
                             "with at least `version: 1` and `stack:`", file, Position(1, 1))]
    src.data = root
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
        good = raw[:exc.start].decode("utf-8")
        pos = Lines(good).raw_at(len(good))
        return Source(file=path, data=None), [
            Problem(ERROR, "spec/encoding", f"byte 0x{raw[exc.start]:02X} is not UTF-8 "
                    f"({exc.reason}); save the spec as UTF-8", path, pos)]
    src, problems = load_text(text, path)
    src.sha256 = hashlib.sha256(raw).hexdigest()
    return src, problems
