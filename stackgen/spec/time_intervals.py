"""`alerting.time_intervals` and the routes' `mute_time_intervals` / `active_time_intervals`.

The shapes are Alertmanager's own (`timeinterval/timeinterval.go`, v0.25: what Debian's amtool
accepts, and every later release too): each value is checked here as Alertmanager parses it,
so that a mistake is an error at its line instead of an amtool failure after the build.
"""

from __future__ import annotations

import re
from functools import lru_cache

from stackgen.model import TimeInterval, TimeRange
from stackgen.spec.schema import _path_text, did_you_mean

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
_SEXAGESIMAL = ("unquoted, YAML 1.1 reads a value such as 19:00 or 1:7 as a base-60 number: "
                "write it in quotes ('19:00', '1:7')")
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")  # Alertmanager's validTime


@lru_cache(maxsize=1)
def _zones() -> frozenset:
    try:
        import zoneinfo

        return frozenset(zoneinfo.available_timezones())
    except Exception:  # pragma: no cover - no zone database: leave the check to amtool
        return frozenset()


def _minutes(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


class _Checker:
    def __init__(self, error, warn):
        self.error, self.warn = error, warn

    def _range(self, path, raw, member, what):
        """(begin, end) of `a` or `a:b`, or None after reporting an error."""
        text = str(raw).lower()
        parts = text.split(":")
        if len(parts) > 2:
            self.error(path, "time_intervals/range", f"{_path_text(path)}: cannot read {raw!r}; "
                       f"expected one {what} or a range `first:last`")
            return None
        values = []
        for part in parts:
            v = member(part)
            if isinstance(v, str):  # a message
                if isinstance(raw, int) and not isinstance(raw, bool):
                    v += f"; {_SEXAGESIMAL}"
                self.error(path, "time_intervals/value", f"{_path_text(path)}: {v}")
                return None
            values.append(v)
        return values[0], values[-1]

    def weekday(self, part):
        if part in WEEKDAYS:
            return WEEKDAYS.index(part)
        return (f"{part!r} is not a weekday{did_you_mean(part, WEEKDAYS)} (expected monday ... "
                "sunday, or a range such as monday:friday)")

    def month(self, part):
        if part in MONTHS:
            return MONTHS.index(part) + 1
        if re.fullmatch(r"[0-9]+", part) and 1 <= int(part) <= 12:
            return int(part)
        return (f"{part!r} is not a month{did_you_mean(part, MONTHS)} (expected january ... "
                "december or 1 ... 12, or a range such as june:august)")

    @staticmethod
    def day(part):
        if re.fullmatch(r"-?[0-9]+", part) and int(part) != 0 and -31 <= int(part) <= 31:
            return int(part)
        return (f"{part!r} is not a day of the month (expected 1 ... 31, or -31 ... -1 counting "
                "from the month's end, or a range such as 1:7)")

    @staticmethod
    def year(part):
        if re.fullmatch(r"[0-9]{4}", part):
            return int(part)
        return f"{part!r} is not a year (expected four digits, or a range such as 2026:2027)"

    def entry(self, path, e: dict) -> TimeRange | None:
        ok = True
        times = []
        for i, t in enumerate(e.get("times", [])):
            tp = path + ("times", i)
            bad = [k for k in ("start_time", "end_time")
                   if not isinstance(t.get(k), str) or not _TIME.fullmatch(t[k])]
            for k in bad:
                hint = f"; {_SEXAGESIMAL}" if isinstance(t.get(k), int) else ""
                self.error(tp + (k,), "time_intervals/time",
                           f"{_path_text(tp + (k,))}: {t.get(k)!r} is not a time of day; "
                           f"expected HH:MM from 00:00 to 24:00, in quotes ('19:00'){hint}")
            if bad:
                ok = False
            elif _minutes(t["start_time"]) >= _minutes(t["end_time"]):
                self.error(tp + ("end_time",), "time_intervals/time",
                           f"{_path_text(tp)}: end_time {t['end_time']} is not after start_time "
                           f"{t['start_time']}; a range within one day ends after it starts "
                           "(split one that crosses midnight in two: start..24:00, 00:00..end)")
                ok = False
            else:
                times.append((t["start_time"], t["end_time"]))
        ranges = {}
        for key, member, what, order in (
                ("weekdays", self.weekday, "weekday", "start day cannot be after end day"),
                ("days_of_month", self.day, "day", None),
                ("months", self.month, "month", "the end month is before the start month"),
                ("years", self.year, "year", "the end year is before the start year")):
            out = []
            for i, raw in enumerate(e.get(key, [])):
                ip = path + (key, i)
                r = self._range(ip, raw, member, what)
                if r is None:
                    ok = False
                    continue
                begin, end = r
                if key == "days_of_month":
                    if begin < 0 < end:
                        msg = "the end day must be negative if the start day is negative"
                    elif (28 + begin if begin < 0 else begin) > (28 + end if end < 0 else end):
                        msg = f"end day {end} is always before start day {begin}"
                    else:
                        msg = None
                else:
                    msg = order if begin > end else None
                if msg:
                    self.error(ip, "time_intervals/range", f"{_path_text(ip)}: {raw!r}: {msg}")
                    ok = False
                    continue
                out.append(str(raw).lower())
            ranges[key] = tuple(out)
        loc = e.get("location")
        if loc is not None and _zones() and loc not in _zones() and loc not in ("UTC", "Local"):
            self.error(path + ("location",), "time_intervals/location",
                       f"{_path_text(path + ('location',))}: {loc!r} is not a time zone"
                       f"{did_you_mean(loc, sorted(_zones()))} (expected an IANA name such as "
                       "Europe/Berlin, or UTC or Local)")
            ok = False
        if not ok:
            return None
        return TimeRange(times=tuple(times), location=loc, **ranges)


def check(a: dict, error, warn) -> tuple:
    """The spec's `alerting.time_intervals` as a tuple of TimeInterval; every mistake is
    reported with `error(path, check, message)`."""
    c = _Checker(error, warn)
    out = []
    for name, entries in a.get("time_intervals", {}).items():
        ranges = []
        for i, e in enumerate(entries):
            r = c.entry(("alerting", "time_intervals", name, i), e)
            if r is not None:
                ranges.append(r)
        out.append(TimeInterval(name=name, ranges=tuple(ranges)))
    return tuple(out)


def check_route_refs(r: dict, rp: tuple, label: str, names: list, error, used: set) -> dict:
    """The route's interval names as {key: tuple}; an unknown name is an error at its line."""
    out = {}
    for key in ("mute_time_intervals", "active_time_intervals"):
        refs = r.get(key, [])
        for j, ref in enumerate(refs):
            used.add(ref)
            if ref not in names:
                known = f"time intervals: {', '.join(names)}" if names else \
                    "no alerting.time_intervals are defined"
                error(rp + (key, j), "routes/time-interval",
                      f"alerting.{label}.{key}: unknown time interval {ref!r}"
                      f"{did_you_mean(ref, names)} ({known})")
        out[key] = tuple(refs)
    return out


def warn_unused(names: list, used: set, warn) -> None:
    for name in names:
        if name not in used:
            warn(("alerting", "time_intervals", name), "time_intervals/unused",
                 f"time interval {name!r} is not used by any route's mute_time_intervals or "
                 "active_time_intervals", at_key=True)
