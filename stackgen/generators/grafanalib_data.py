"""grafanalib objects as plain JSON data, without a JSON round trip.

grafanalib's objects turn into JSON through `to_json_data()` (what its DashboardEncoder
calls); dashboards used to be encoded and decoded again for every panel and target, a
quarter of the build time of a large stack. `plain` walks them once instead.
"""

from __future__ import annotations


_LEAF = frozenset((str, int, float, bool, type(None)))


def plain(obj):
    """grafanalib objects (nested anywhere) as plain JSON data: what a JSON round trip through
    grafanalib's DashboardEncoder gives, without the round trip. Leaves (most of the data)
    are kept where they are found, without a call each."""
    t = type(obj)
    if t is dict:
        return {(k if type(k) is str else _json_key(k)):
                (v if type(v) in _LEAF else plain(v)) for k, v in obj.items()}
    if t is list or t is tuple:
        return [v if type(v) in _LEAF else plain(v) for v in obj]
    if t in _LEAF:
        return obj
    to_json_data = getattr(obj, "to_json_data", None)
    if to_json_data is not None:
        return plain(to_json_data())
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int.__int__(obj)
    if isinstance(obj, float):
        return float.__float__(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON data")


def _json_key(key) -> str:
    """A mapping key as JSON writes it."""
    import json

    return next(iter(json.loads(json.dumps({key: 0}))))
