"""JSON Schema validation of a spec, with every error mapped back to file:line:col."""

from __future__ import annotations

import datetime
import difflib
import json
from functools import lru_cache
from importlib import resources

from stackgen.problems import Problem
from stackgen.spec.source import Source


@lru_cache(maxsize=1)
def schema_text() -> str:
    return resources.files("stackgen.spec").joinpath("schema.json").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(schema_text())


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def did_you_mean(word, choices) -> str:
    """`; did you mean 'x'?` for a close choice (a typo, or a prefix such as prod ->
    production), else ''. The cutoff is high enough that a merely similar-looking name is
    not offered (time_intervals is no typo of repeat_interval: ratio 0.69)."""
    if not isinstance(word, str):
        return ""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.75)
    if not close:  # a short name with one slip: opz -> ops (ratio 0.67)
        limit = max(1, len(word) // 4)
        close = sorted((d, c) for c in choices if (d := _edits(word, c)) <= limit)[:1]
        close = [c for _, c in close]
    if not close and len(word) >= 3:
        close = [c for c in choices if c.startswith(word)][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def _edits(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute, swap two neighbours)."""
    if abs(len(a) - len(b)) > 2:
        return 3
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            if prev2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _path_text(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the spec"


def _type_name(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null (an empty value)"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"  # YAML reads an unquoted 2024-01-01 as a date
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


# JSON Schema's type names, as a YAML author calls them
_YAML_TYPES = {"object": "mapping", "array": "list", "integer": "whole number", "null": "null"}


def _expected(err) -> str | None:
    """The human description of what a schema position accepts (`x-expected`)."""
    for e in [err, *(err.context or [])]:
        if isinstance(e.schema, dict):
            if "x-expected" in e.schema:
                return e.schema["x-expected"]
            ref = e.schema.get("$ref")
            if ref and ref.startswith("#/$defs/"):
                target = schema()["$defs"].get(ref.rsplit("/", 1)[1], {})
                if "x-expected" in target:
                    return target["x-expected"]
    return None


def _one(src: Source, err) -> Problem:
    path = tuple(err.absolute_path)
    where = _path_text(path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
        key = extra[0] if extra else "?"
        hint = did_you_mean(key, allowed)
        expected = f"; expected one of: {', '.join(allowed)}" if allowed and not hint else ""
        parent = f" in {where}" if path else ""
        return src.problem(path + (key,), "schema/unknown-key",
                           f"unknown key {key!r}{parent}{hint}{expected}", at_key=True)
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return src.problem(path, "schema/required", f"{where}: missing required key {missing!r}",
                           at_key=True)
    if v == "anyOf" and _required_choices(err.validator_value):
        keys = " or ".join(repr(k) for k in _required_choices(err.validator_value))
        return src.problem(path, "schema/required", f"{where}: missing required key: expected "
                           f"{keys} (or both)", at_key=True)
    if "propertyNames" in err.schema_path:
        name = err.instance
        expected = _expected(err) or "a name matching [a-z][a-z0-9-]*"
        return src.problem(path + (name,), "schema/name",
                           f"invalid name {name!r} in {where}: expected {expected}", at_key=True)
    if v in ("enum", "const"):
        choices = err.validator_value if v == "enum" else [err.validator_value]
        hint = did_you_mean(err.instance, choices)
        same = [c for c in choices if not isinstance(c, str) and isinstance(err.instance, str)
                and str(c) == err.instance]
        if same:  # version: '1' -> the quotes make it a string
            hint = f"; write {same[0]} without quotes (quoted, it is a string)"
        return src.problem(path, f"schema/{v}",
                           f"{where}: {err.instance!r} is not allowed; expected "
                           f"{_expected(err) or ' or '.join(repr(c) for c in choices)}{hint}")
    if v == "not" and isinstance(err.instance, str) and err.instance.endswith(":latest"):
        return src.problem(path, "schema/image-latest",
                           f"{where}: {err.instance!r} uses the moving tag 'latest'; pin a version "
                           "so that every machine runs the same stack")
    expected = _expected(err)
    if v in ("pattern", "anyOf", "oneOf", "type", "not") and expected:
        if v == "oneOf" and isinstance(err.instance, (dict, list)):
            best = _best_in_context(err)
            if best is not None:
                return _one(src, best)
        return src.problem(path, f"schema/{v}",
                           f"{where}: {_show(err.instance)} is not valid; expected {expected}")
    if v == "type":
        want = err.validator_value
        want = [_YAML_TYPES.get(w, w) for w in (want if isinstance(want, list) else [want])]
        want = " or ".join(want)
        article = "an" if str(want)[0] in "aeiou" else "a"
        return src.problem(path, "schema/type",
                           f"{where}: expected {article} {want}, got {_type_name(err.instance)}")
    if v == "oneOf":
        best = _best_in_context(err)
        if best is not None:
            return _one(src, best)
    if v == "minItems" and isinstance(err.instance, list):
        n = err.validator_value
        return src.problem(path, "schema/minItems",
                           f"{where}: expected at least {n} item{'s' if n != 1 else ''}, "
                           f"got {'an empty list' if not err.instance else len(err.instance)}")
    return src.problem(path, f"schema/{v}", f"{where}: {err.message}")


def _required_choices(branches) -> list:
    """The keys of an `anyOf` whose every branch only requires keys ("at least one of")."""
    if not isinstance(branches, list) or not all(
            isinstance(b, dict) and list(b) == ["required"] for b in branches):
        return []
    return [k for b in branches for k in b["required"]]


def _best_in_context(err):
    from jsonschema.exceptions import best_match

    if not err.context:
        return None
    # prefer the branch whose type matches the value (a mapping given where a mapping is allowed):
    # drop the branches that refuse the value's own type, keep errors inside it
    same_type = [e for e in err.context if e.validator != "type" or e.relative_path]
    return best_match(same_type or err.context)


def _show(value) -> str:
    if isinstance(value, str):
        return repr(value)
    shown = value.isoformat() if isinstance(value, datetime.date) else repr(value)
    return f"{_type_name(value)} {shown}"


def validate(src: Source) -> list[Problem]:
    """Every schema problem of `src.data`, each placed at its line and column (data the
    schema passed before is not validated again: stackgen.spec.schema_cache)."""
    from stackgen.spec import schema_cache

    if schema_cache.known_valid(src.data, schema_text()):
        return []
    problems = []
    for err in _validator().iter_errors(src.data):
        problems.append(_one(src, err))
    if not problems:
        schema_cache.remember_valid(src.data, schema_text())
    return problems
