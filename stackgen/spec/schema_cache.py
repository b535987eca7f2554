"""Specs the JSON Schema has already passed, remembered so that a repeated lint or build of
the same spec skips jsonschema (importing it is about half of a cached `lint`'s time).

A spec's data (its full repr: types and order included) that validated without a problem
is remembered under $XDG_CACHE_HOME/stackgen/schema/ (or ~/.cache/...), keyed by that repr,
the schema's text and the jsonschema version; only a clean result is remembered, so every
problem is still found and placed by the validator itself. STACKGEN_NO_CACHE=1 turns the
cache off (as for lint's file hashes).
"""

from __future__ import annotations

import hashlib
import os


def _path(data, schema_text: str) -> str | None:
    from stackgen import lint_cache

    if not lint_cache._enabled():
        return None
    engine = _engine()
    if engine is None:  # no installed jsonschema found: never trust a remembered result
        return None
    h = hashlib.sha256(f"{engine}|".encode())
    h.update(schema_text.encode("utf-8"))
    h.update(repr(data).encode("utf-8"))
    base = os.path.dirname(lint_cache._folder())
    return os.path.join(base, "schema", h.hexdigest())


def _engine() -> str | None:
    """The installed jsonschema, as the names of its dist-info folders beside it (they hold
    its version), without importing it or importlib.metadata (16 ms of a 0.3 s lint)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("jsonschema")
        site = os.path.dirname(os.path.dirname(spec.origin))
        found = sorted(n for n in os.listdir(site)
                       if n.startswith("jsonschema-") and n.endswith(".dist-info"))
    except (AttributeError, TypeError, ValueError, OSError):
        return None
    return "|".join(found) or None


def known_valid(data, schema_text: str) -> bool:
    path = _path(data, schema_text)
    return bool(path) and os.path.exists(path)


def remember_valid(data, schema_text: str) -> None:
    path = _path(data, schema_text)
    if not path:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("valid\n")
    except OSError:
        pass  # an unwritable cache only costs time
