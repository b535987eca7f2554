"""The live stack's HTTP APIs, as `stackgen smoke` polls them: Prometheus (queries, alerts,
targets, rules) and Alertmanager (alerts), with short caches for concurrent pollers."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

from stackgen.runtime.native import NativeStack
from stackgen.runtime.procs import http_get

POLL = 0.25


class LiveError(RuntimeError):
    pass


class Live:
    """Prometheus and Alertmanager HTTP APIs, with short caches for concurrent pollers."""

    def __init__(self, stack: NativeStack):
        self.stack = stack
        self._lock = threading.Lock()
        self._cache: dict = {}

    def _get(self, url: str) -> dict:
        status, body = http_get(url, timeout=5)
        if status == 0:
            raise LiveError(f"no answer from {url}")
        try:
            data = json.loads(body)
        except ValueError:
            raise LiveError(f"{url}: HTTP {status}, not JSON: {body[:200]!r}") from None
        if status != 200 and not (isinstance(data, dict) and "error" in data):
            raise LiveError(f"{url}: HTTP {status}")
        return data

    def prom(self, path: str, **params) -> dict:
        url = self.stack.prom(path) + ("?" + urllib.parse.urlencode(params) if params else "")
        data = self._get(url)
        if data.get("status") != "success":
            raise LiveError(data.get("error") or f"{path}: {data}")
        return data["data"]

    def query(self, q: str) -> tuple[list, str | None]:
        try:
            data = self.prom("/api/v1/query", query=q)
        except LiveError as exc:
            return [], str(exc)
        return data.get("result") or [], None

    def _cached(self, key, fetch, ttl=0.2):
        with self._lock:
            hit = self._cache.get(key)
            if hit and time.time() - hit[0] < ttl:
                return hit[1]
        value = fetch()
        with self._lock:
            self._cache[key] = (time.time(), value)
        return value

    def prom_alerts(self) -> list:
        return self._cached("prom", lambda: self.prom("/api/v1/alerts").get("alerts", []))

    def am_alerts(self) -> list:
        url = self.stack.am("/api/v2/alerts?active=true&silenced=true&inhibited=true"
                            "&unprocessed=true")
        return self._cached("am", lambda: self._get(url))


def _matches(labels: dict, subset: dict) -> bool:
    return all(labels.get(k) == v for k, v in subset.items())


def find_prom(alerts: list, subset: dict, states=("pending", "firing")) -> dict | None:
    for a in alerts:
        if a.get("state") in states and _matches(a.get("labels", {}), subset):
            return a
    return None


def find_am(alerts: list, subset: dict) -> dict | None:
    for a in alerts:
        if _matches(a.get("labels", {}), subset):
            return a
    return None


class Aborted(Exception):
    """The run is being interrupted: incident threads stop waiting at once."""


def wait_for(fn, deadline: float, poll: float = POLL, abort: threading.Event | None = None):
    """fn() until it returns something truthy or the deadline passes (then None)."""
    while True:
        if abort is not None and abort.is_set():
            raise Aborted()
        try:
            value = fn()
        except LiveError:
            value = None
        if value:
            return value
        if time.time() >= deadline:
            return None
        time.sleep(poll)
