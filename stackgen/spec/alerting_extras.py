"""Spec -> model for `target_down` (per host/GPU group and service) and `alerting.heartbeat`.

Kept out of `mapping.py`: each function reads one key, reports its problems through the
mapper, and returns the model value.
"""

from __future__ import annotations

from stackgen.model import Heartbeat, Route, TargetDown
from stackgen.spec.schema import did_you_mean

HEARTBEAT_ALERT = "Heartbeat"


def target_down(d: dict) -> TargetDown:
    """A group's `target_down: {severity, for}`; critical after 2m when not given."""
    t = d.get("target_down") or {}
    return TargetDown(severity=t.get("severity", "critical"), for_=t.get("for", "2m"))


def heartbeat(mapper, a: dict, names: list, used: set) -> Heartbeat | None:
    if "heartbeat" not in a:
        return None
    h = a["heartbeat"]
    receiver = h["receiver"]
    if receiver not in names:
        mapper.error(("alerting", "heartbeat", "receiver"), "routes/receiver",
                     f"alerting.heartbeat sends to unknown receiver {receiver!r}"
                     f"{did_you_mean(receiver, names)} (receivers: {', '.join(names)})")
    used.add(receiver)
    return Heartbeat(receiver=receiver, repeat_interval=h.get("repeat_interval", "1m"))


def heartbeat_route(hb: Heartbeat) -> Route:
    """The first route of the tree: the heartbeat reaches its receiver and no other, and
    is sent again every `repeat_interval` (what a dead man's switch expects)."""
    return Route(receiver=hb.receiver, matchers=(f'alertname="{HEARTBEAT_ALERT}"',),
                 group_by=("alertname",), group_wait="0s", group_interval=hb.repeat_interval,
                 repeat_interval=hb.repeat_interval, path="heartbeat")
