"""A fast block-style YAML writer whose bytes are PyYAML's (libyaml's) for the same call.

`artifact.to_yaml` used to hand every document to PyYAML: a Python representer builds a node
per value and libyaml asks Python back for the implicit tag of every scalar, about 3 MB/s.
Generated documents are plain dicts, lists and scalars in block style, and most of their
strings are names, PromQL expressions and sentences that any YAML writer leaves plain. This
module writes the structure itself and decides those common strings by a cheap character
check; every other scalar (anything that may need quotes, a literal block, a YAML 1.1
boolean word, a number-like string) is rendered by PyYAML itself, once per distinct value,
and reused. A document it cannot write (a non-string top level, a key that is not simple)
raises `Unsupported`, and the caller lets PyYAML write it whole.

tests/test_build.py proves the bytes equal PyYAML's on every generated file and on
documents made to hit each rule below.
"""

from __future__ import annotations

import string


class Unsupported(Exception):
    """A document this writer leaves to PyYAML."""


# A string that starts with one of these, is printable ASCII, and holds no ": ", " #", no
# trailing space or colon is written plain by libyaml in block context (no indicator can
# start it), and PyYAML resolves it to a string unless it is one of the words below.
_PLAIN_FIRST = frozenset(string.ascii_letters + "_/(")
_NOT_STR_WORDS = frozenset(("yes", "no", "true", "false", "on", "off", "null"))
_BREAKS = frozenset("\n\r\x85\u2028\u2029")  # what libyaml takes for line breaks
_OTHER_BREAKS = _BREAKS - {"\n"}
_SIMPLE_KEY_MAX = 100
# Caches keep short strings (names, label values, durations: they repeat) and only so many:
# long strings are mostly unique (expressions, series), and memory must not grow with them.
_CACHED_LEN, _CACHE_MAX = 40, 50_000  # libyaml writes longer keys as `? key`: leave those to PyYAML


def _plain_ok(s: str) -> bool:
    first = s[:1]
    if first in _PLAIN_FIRST:
        if len(s) <= 5 and s.lower() in _NOT_STR_WORDS:
            return False
    # a digit first and a space somewhere: no number of YAML 1.1 or 1.2 has a space, and a
    # date with a time ("2001-12-14 21:59") has its "-" fifth ("1 - x", "1000+0x9 1010+1x5")
    elif not (first.isdigit() and " " in s and s[4:5] != "-"):
        return False
    return (s.isascii() and s.isprintable() and s[-1] not in " :"
            and ": " not in s and " #" not in s)


def _single_quoted(s: str) -> bool:
    """True for a string libyaml writes single-quoted and PyYAML reads back as a string: one
    that would be plain but for a ": " or " #" inside or a ":" at its end (names of test
    cases: `'ErrorRateHigh warning (svc): fires after 5m past 1%, silent before'`)."""
    return (s[:1] in _PLAIN_FIRST and s.isascii() and s.isprintable() and s[-1] != " "
            and (": " in s or " #" in s or s[-1] == ":"))


def _literal(s: str, indent: int) -> str | None:
    """libyaml's literal block (`|` or `|-`) for a multi-line string, or None where libyaml
    would do something else (indentation indicator, keep chomping, quotes)."""
    if s[0] in " \n" or s.endswith("\n\n") or " \n" in s or s[-1] == " " \
            or not s.isascii() or not s.replace("\n", "").isprintable():
        return None
    if s[-1] == "\n":
        head, body = " |\n", s[:-1]
    else:
        head, body = " |-\n", s
    pad = " " * (indent + 2)
    return head + "".join(f"{pad}{line}\n" if line else "\n" for line in body.split("\n"))


class Writer:
    """One writer per dumper configuration; `render(value, ctx)` is PyYAML's own text."""

    def __init__(self, dump):
        self._dump = dump  # data -> YAML text, the reference writer
        self._memo: dict = {}  # (type, value, ctx) -> PyYAML's text
        self._plain: dict = {}  # string -> " string\n", for strings written plain
        self._keys: dict = {}  # string key -> its text

    def _slow(self, value, ctx: str) -> str:
        """PyYAML's rendering of a scalar: ctx "v" after `key:` (" text" or a literal block,
        its lines relative to column 0), "i" after `-`, "k" as a mapping key ("text")."""
        key = (type(value), repr(value) if type(value) is float else value, ctx)
        try:
            return self._memo[key]
        except KeyError:
            pass
        if ctx == "k":
            out = self._dump({value: 0})
            if out.startswith("? ") or not out.endswith(": 0\n"):
                raise Unsupported("complex key")
            frag = out[:-len(": 0\n")]
            if "\n" in frag:
                raise Unsupported("multi-line key")
        elif ctx == "v":
            out = self._dump({"k": value})
            if not out.startswith("k:"):
                raise Unsupported("odd scalar")
            frag = out[len("k:"):]
        else:
            out = self._dump([value])
            if not out.startswith("-"):
                raise Unsupported("odd scalar")
            frag = out[len("-"):]
        if len(self._memo) < _CACHE_MAX and (type(value) is not str or len(value) <= 200):
            self._memo[key] = frag
        return frag

    def _scalar(self, value, ctx: str, indent: int) -> str:
        """The text after `key:` or `-` (with its leading space and final newline)."""
        t = type(value)
        if t is str and value:
            text = self._plain.get(value)
            if text is not None:
                return text
            if "\n" in value:
                text = _literal(value, indent)
                if text is not None:
                    return text
            elif _plain_ok(value):
                text = f" {value}\n"
                if len(value) <= _CACHED_LEN and len(self._plain) < _CACHE_MAX:
                    self._plain[value] = text
                return text
            elif _single_quoted(value):
                return " '" + value.replace("'", "''") + "'\n"
        if t is bool:
            return " true\n" if value else " false\n"
        if t is int:
            return f" {value}\n"
        if value is None:
            return " null\n"
        frag = self._slow(value, ctx)
        if frag.endswith("...\n") and frag[-5:-4] in _BREAKS:  # a kept final break (any of
            # libyaml's line breaks): libyaml ends the document there
            raise Unsupported("document end marker")
        if indent and (frag.count("\n") > 1 or not frag.isascii()):
            if frag.startswith(" ") and not frag.startswith((" |", " >")) \
                    and not _BREAKS.intersection(frag[:-1]):
                return frag  # one line after all (non-ASCII text)
            if not frag.startswith(" |"):
                raise Unsupported("a quoted scalar over several lines")
            if _OTHER_BREAKS.intersection(frag):  # lines this split would not see
                raise Unsupported("a literal block with other line breaks")
            # a literal block: its lines move with the indent
            pad = " " * indent
            head, _, body = frag.partition("\n")
            lines = body.split("\n")
            frag = head + "\n" + "\n".join(pad + ln if ln else ln for ln in lines)
        return frag

    def _key(self, key) -> str:
        text = self._keys.get(key) if type(key) is str else None
        if text is not None:
            return text
        if type(key) is str and key and len(key) <= _SIMPLE_KEY_MAX and _plain_ok(key):
            text = key
        elif type(key) is str and len(key) > _SIMPLE_KEY_MAX:
            raise Unsupported("long key")
        else:
            return self._slow(key, "k")
        if len(self._keys) < _CACHE_MAX:
            self._keys[key] = text
        return text

    def _mapping(self, data: dict, indent: int, out: list, first_inline: bool) -> None:
        pad = " " * indent
        first = True
        for k, v in data.items():
            if not (first and first_inline):
                out.append(pad)
            first = False
            out.append(self._key(k))
            out.append(":")
            t = type(v)
            if t is dict:
                if v:
                    out.append("\n")
                    self._mapping(v, indent + 2, out, False)
                else:
                    out.append(" {}\n")
            elif t is list:
                if v:
                    out.append("\n")
                    self._sequence(v, indent, out, False)
                else:
                    out.append(" []\n")
            else:
                out.append(self._scalar(v, "v", indent))

    def _sequence(self, data: list, indent: int, out: list, first_inline: bool) -> None:
        pad = " " * indent
        first = True
        for v in data:
            if not (first and first_inline):
                out.append(pad)
            first = False
            out.append("-")
            t = type(v)
            if t is dict:
                if v:
                    out.append(" ")
                    self._mapping(v, indent + 2, out, True)
                else:
                    out.append(" {}\n")
            elif t is list:
                if v:
                    out.append(" ")
                    self._sequence(v, indent + 2, out, True)
                else:
                    out.append(" []\n")
            else:
                out.append(self._scalar(v, "i", indent))

    def dump(self, data) -> str:
        t = type(data)
        if t is dict and data:
            out: list = []
            self._mapping(data, 0, out, False)
        elif t is list and data:
            out = []
            self._sequence(data, 0, out, False)
        else:
            raise Unsupported("top level")
        return "".join(out)
