"""The fast serialisers write the very bytes of the reference ones (PyYAML, Python's json)."""

import json
import os

import pytest

from conftest import ROOT
from stackgen.artifact import pyyaml_dump, to_json, to_yaml

TRICKY = ["", " ", "a", "yes", "Yes", "no", "on", "OFF", "null", "Null", "~", "true", "y", "n",
          "=", "<<", "-", "- a", "-a", "?", "? a", ":", "a:", "a: b", "a:b", "a #b", "a#b",
          "#a", "&a", "*a", "!a", "|a", "'a", '"a', "%a", "@a", "`a", "[a]", "{a}", ",a", "a,",
          "1", "1.5", "1e5", "0x1F", "0o17", "1_000", "1:30", "2001-12-14", "2001-12-14 21:59",
          "1 - x", "1 -", "1 2", "12 x", "1e5 x", "1000+0x229 1002.25+2.25x1450",
          "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-1-1 1:1:1", "1000 -", ".5", ".inf", "+1", "a ", " a", "a\tb",
          "é", "café: x", "\u2028", "a\u0085b", "x" * 99, "x" * 101, "x" * 130,
          "(a)", "/path", "_x", "{{ $labels.x }}", 'sum(rate(x{job="a"}[5m])) > 0.5',
          "a\nb", "a\nb\n", "a\nb\n\n", "\na", " a\nb", "a \nb", "a\n b", "a\n\nb", "a\nb ",
          "a\n\tb", "é\nb", "line one\n  indented\nlast\n",
          # single-quoted by libyaml: a ": " or " #" inside, or a final ":"
          "a: 'b'", "x: y:", "a: b ", "a #b: c", "It's: x", "(x): y", "_a: b", "/a: b",
          "ResponseTimeHigh warning (svc-1): fires after 5m past 500ms, silent before",
          "a: b\tc", "a: é", "a:  b", "a: ''", "yes: no", "a:b:", "a : b", "a: b\x7f"]
KEYS = ["k", "yes", "1", "a b", "a: b", "", "x" * 101, "é", "-", "a\nb"]


def _docs():
    yield {"v": TRICKY, "m": {s: s for s in TRICKY}}
    for s in TRICKY:
        yield {"top": s}
        yield [s, [s, [s]], {"k": s, "n": [{"k": s}]}]
        yield {"a": [{"b": {"c": [s, {"d": s}]}}]}
    for k in KEYS:
        yield {k: 1, "x": {k: [k]}}
    yield {"ints": [0, -1, 10 ** 20], "floats": [0.0, -0.0, 1.5, 1e-9, 1e20, float("inf"),
                                                 float("-inf")],
           "bools": [True, False], "none": None, "empty": {}, "list": [], "nested": [[], {}],
           1: "int key", True: "bool key", None: "null key", 2.5: "float key"}
    yield [[["deep"]], [{}], {"a": {}}]
    yield {"kept": "a\nb\n\n", "after": 1, "more": ["a\n\n", "b"]}


@pytest.mark.parametrize("doc", list(_docs()), ids=lambda d: repr(d)[:40])
def test_to_yaml_writes_pyyaml_bytes(doc):
    assert to_yaml(doc) == pyyaml_dump(doc)


def test_to_yaml_writes_pyyaml_bytes_for_every_generated_file():
    """Each YAML file of the committed generated/ (the default spec) read back and written
    again gives PyYAML's bytes."""
    import yaml

    out = os.path.join(ROOT, "generated")
    n = 0
    for folder, _, files in os.walk(out):
        for name in files:
            if name.endswith((".yml", ".yaml")) and "/templates" not in folder:
                with open(os.path.join(folder, name), encoding="utf-8") as fh:
                    text = fh.read()
                if "{{" in text and "/helm/" in folder:
                    continue  # a Helm template, not YAML
                data = yaml.safe_load(text)
                if isinstance(data, (dict, list)) and data:
                    assert to_yaml(data) == pyyaml_dump(data), name
                    n += 1
    assert n > 20


def test_to_yaml_writes_pyyaml_bytes_for_any_short_string():
    """Random strings over the characters that decide YAML's scalar styles."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    alphabet = st.sampled_from(list("ab1_-./(): #'\"{}[]?!&*|>%@`,=~\t\né") + ["\u2028"])

    @settings(max_examples=int(os.environ.get("STACKGEN_YAML_EXAMPLES", "400")), derandomize=True, deadline=None, database=None)
    @given(st.text(alphabet, max_size=12))
    def same(s):
        for doc in ({"k": s}, [s], {"k": [{"n": s}]}):
            assert to_yaml(doc) == pyyaml_dump(doc), repr(s)

    same()


@pytest.mark.parametrize("value", [1e-05, 1.5e-07, 1e-9, 1e16, 2.5e20, 0.1, 100.0, -0.0, 0,
                                   float("inf"), float("-inf"), 123456789.123, "é \u2028 \x01",
                                   "\"\\/", [], {}, {"b": 1, "a": [1.0, {"z": 1e-30}]}])
def test_to_json_writes_pythons_json_bytes(value):
    doc = {"x": value, "list": [value, [value]]}
    assert to_json(doc) == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
