"""Values the real tools accept: the checks between the JSON Schema and the model.

The schema says what shape a value has; this module makes sure that every value which
reaches a generator is one that Prometheus, Alertmanager, promtool and amtool accept, and
that nothing in the spec can change the meaning of what is generated around it:

- durations follow Prometheus' grammar (units in descending order, each once, at most
  2^63-1 ns: `1m1h`, `1y2y` and `99999999999999h` are refused by Prometheus);
- numbers are finite (`.inf`, `.nan`, `1e309`) and in range; latencies are not negative;
- ports are 1-65535 and an IPv6 host is bracketed (`[::1]:9100`);
- text that becomes a Prometheus or Alertmanager template (label values, descriptions,
  runbook and Grafana URLs) holds no `{{` or `}}`: stackgen refuses it rather than escaping
  it, so that what you write is what the alert shows;
- an `errors:` selector is a plain list of label matchers (nothing after it can be smuggled
  into the PromQL) and does not match on `job`;
- `for:`, `rate_window` and SLO windows have upper bounds (`MAX`), so that the generated
  promtool tests stay small;
- group_by lists, external labels and secret paths are ones the tools read as meant.

Every check reports at the value's line; warnings flag specs that build but do not do what
they seem to (a first route that catches everything, duplicate targets, a group label that
hides a scraped label the `errors:` selector needs).
"""

from __future__ import annotations

import ipaddress
import math
import re

from stackgen.problems import ERROR, WARNING, Position, Problem
from stackgen.spec.source import Source
from stackgen.spec.selectors import matcher_list

# Upper bounds that keep the generated promtool tests finishable: they sample once a minute
# past `for`, past the rate window and over an SLO's window (three KPIs at `for: 1d` take
# promtool about 12 s; an availability SLO over 90d about 9 s, over 3650d more than 2 min).
MAX = {"for": ("1d", 86400), "rate_window": ("1h", 3600), "window": ("90d", 90 * 86400)}
MAX_FOR = MAX["for"][0]
MAX_NS = 2**63 - 1  # Prometheus keeps durations in an int64 of nanoseconds
_MAX_INT = 2**63 - 1

_UNIT_MS = {"y": 31536000000, "w": 604800000, "d": 86400000, "h": 3600000, "m": 60000,
            "s": 1000, "ms": 1}
_PROM_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_LOOSE_DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")

DURATION_KEYS = {"scrape_interval", "evaluation_interval", "scrape_timeout", "retention",
                 "rate_window", "for", "window", "group_wait", "group_interval",
                 "repeat_interval", "resolve_timeout"}
THRESHOLD_KEYS = ("warning", "critical", "warning_below", "critical_below")
GROUP_KINDS = ("hosts", "gpus", "services")
# KPIs whose thresholds cannot be negative (a ratio, a size, a rate, a latency)
_NON_NEGATIVE = {"cpu", "memory", "disk", "utilization", "response_time", "throughput",
                 "error_rate", "accuracy"}
_TEMPLATE = ("{{", "}}")
_FREE_KEYS = {"labels", "external_labels", "kubernetes"}  # user-chosen keys below these

# one PromQL label matcher: name, operator, quoted value ("...", '...' or `...`)


def prometheus_duration_ms(text: str) -> int | None:
    """Milliseconds of a duration as Prometheus reads it, or None when Prometheus refuses it
    (units out of order or repeated, or longer than an int64 of nanoseconds)."""
    if not isinstance(text, str) or not text:
        return None
    m = _PROM_DURATION.match(text)
    if not m:
        return None
    total = sum(int(n) * _UNIT_MS[u] for n, u in zip(m.groups(), _UNIT_MS) if n)
    return total if total * 1_000_000 <= MAX_NS else None


class _Checker:
    def __init__(self, src: Source):
        self.src = src
        self.problems: list[Problem] = []

    def error(self, path, check, message, at_key=False):
        self.problems.append(self.src.problem(path, check, message, ERROR, at_key))

    def warn(self, path, check, message, at_key=False):
        self.problems.append(self.src.problem(path, check, message, WARNING, at_key))

    # -- every value ----------------------------------------------------------------------
    def walk(self, value, path=()):
        """Numbers anywhere, durations and template text by their key."""
        stack = [(value, path)]
        while stack:
            v, p = stack.pop()
            if isinstance(v, dict):
                stack.extend((x, p + (k,)) for k, x in v.items())
            elif isinstance(v, list):
                stack.extend((x, p + (i,)) for i, x in enumerate(v))
            elif isinstance(v, bool) or v is None:
                continue
            elif isinstance(v, float) and not math.isfinite(v):
                self.error(p, "values/number", f"{_where(p)}: {_yaml_number(v)} is not a "
                           "number Prometheus can compare with; expected a finite number")
            elif isinstance(v, int) and abs(v) > _MAX_INT:
                self.error(p, "values/number", f"{_where(p)}: {v} is out of range; expected "
                           f"a number below {_MAX_INT}")
            elif isinstance(v, str) and not _FREE_KEYS.intersection(
                    x for x in p if isinstance(x, str)):
                key = _last_key(p)
                if key in DURATION_KEYS or (
                        (key in THRESHOLD_KEYS + ("threshold", "buckets")) and
                        _LOOSE_DURATION.match(v)):
                    self.duration(p, v)
                elif isinstance(key, str) and key.endswith("_file") and "$" in v:
                    self.error(p, "values/secret-path",
                               f"{_where(p)}: {v!r} contains '$', which Docker Compose reads "
                               "as a variable; rename the file without '$'")

    def duration(self, path, text) -> None:
        if prometheus_duration_ms(text) is not None:
            return
        where = _where(path)
        if _LOOSE_DURATION.match(text) and _PROM_DURATION.match(text):
            msg = (f"{where}: {text!r} is longer than Prometheus can hold (about 292 years); "
                   "expected a shorter duration")
        else:
            units = re.findall(r"\d+(ms|s|m|h|d|w|y)", text)
            msg = (f"{where}: {text!r} is not a Prometheus duration: "
                   + ("a unit appears twice" if len(set(units)) < len(units) else
                      "units must go from the largest to the smallest") +
                   "; expected e.g. 1h30m (units y, w, d, h, m, s, ms, each once, in that order)")
        self.error(path, "values/duration", msg)

    def template_text(self, path, text, what) -> None:
        if isinstance(text, str) and any(t in text for t in _TEMPLATE):
            self.error(path, "values/template",
                       f"{_where(path)}: {what} contains {{{{ or }}}}, which Prometheus and "
                       "Alertmanager read as a template; remove the braces (stackgen does not "
                       "pass templates through)")

    def endpoint(self, path, text, what) -> tuple | None:
        """host:port with port 1-65535 and an IPv6 host in brackets; (host, port) or None."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            return None  # the schema reports it
        bad = None
        if host.startswith("["):
            inner = host[1:-1] if host.endswith("]") else None
            try:
                ipaddress.IPv6Address(inner or "")
            except ValueError:
                bad = f"{host!r} is not an IPv6 address in brackets"
        elif ":" in host or "[" in host or "]" in host:
            bad = (f"an IPv6 host must be in brackets, e.g. [::1]:{port}"
                   if _is_ipv6(host) else f"host {host!r} is not a host name or address")
        elif not host:
            bad = "the host is empty"
        if bad:
            self.error(path, "values/host", f"{_where(path)}: {text!r}: {bad}; expected {what}")
            return None
        if not 1 <= int(port) <= 65535:
            self.error(path, "values/port", f"{_where(path)}: port {int(port)} in {text!r} is "
                       "out of range; expected a port from 1 to 65535")
            return None
        return host, int(port)

    # -- the spec -------------------------------------------------------------------------
    def spec(self, d: dict) -> None:
        self.walk(d)
        s = d.get("stack", {})
        self.at_most(("stack",), s, "rate_window", "the generated tests replay the window")
        labels = s.get("external_labels", {})
        for name in ("stack", "env"):
            if name in labels:
                self.error(("stack", "external_labels", name), "labels/reserved",
                           f"external label {name!r} is set from stack."
                           f"{'name' if name == 'stack' else 'environment'}; set that instead",
                           at_key=True)
        self.template_text(("stack", "grafana", "url"), s.get("grafana", {}).get("url"),
                           "the Grafana URL")
        for kind in GROUP_KINDS:
            for name, g in d.get(kind, {}).items():
                self.group((kind, name), g)
        if "alerting" in d:
            self.alerting(d["alerting"])

    def group(self, path, g: dict) -> None:
        seen: dict = {}
        for i, t in enumerate(g.get("targets", [])):
            tp = path + ("targets", i)
            hp = self.endpoint(tp, t, "host:port, e.g. node-exporter:9100 or [::1]:9100")
            if hp is None:
                continue
            if hp in seen:
                self.warn(tp, "targets/duplicate", f"{_where(tp)}: {t!r} is listed twice "
                          f"(also {_where(path + ('targets', seen[hp]))}); Prometheus scrapes "
                          "it once and the duplicate is dropped")
            else:
                seen[hp] = i
        for lname, value in g.get("labels", {}).items():
            self.template_text(path + ("labels", lname), value, "the label value")
        self.template_text(path + ("description",), g.get("description"), "the description")
        self.template_text(path + ("runbook_url",), g.get("runbook_url"), "the runbook URL")
        kpis = g.get("kpis", {})
        for key, k in kpis.items():
            for item_path, item in ([(path + ("kpis", key, i), c) for i, c in enumerate(k)]
                                    if isinstance(k, list) else [(path + ("kpis", key), k)]):
                self.kpi(item_path, key, item)
        for kind, slo in g.get("slos", {}).items():
            sp = path + ("slos", kind)
            self.at_most(sp, slo, "window", "the generated SLO tests replay the whole window")
            self.template_text(sp + ("description",), slo.get("description"), "the description")
            if _negative(slo.get("threshold")):
                self.error(sp + ("threshold",), "values/negative", f"{_where(sp + ('threshold',))}"
                           f": {slo['threshold']} is a negative latency; expected a duration")
        er = kpis.get("error_rate")
        if isinstance(er, dict) and isinstance(er.get("errors"), str):
            self.errors_selector(path, er["errors"], g.get("labels", {}))

    def kpi(self, path, key, k) -> None:
        if not isinstance(k, dict):  # a default alert switched on (true) or off (false, null)
            return
        self.template_text(path + ("description",), k.get("description"), "the description")
        if key in _NON_NEGATIVE:
            for t in THRESHOLD_KEYS:
                if _negative(k.get(t)):
                    self.error(path + (t,), "values/negative",
                               f"{_where(path + (t,))}: {k[t]} is negative, which this KPI "
                               "(a ratio, size, rate or latency) never is; expected 0 or more")
            for i, b in enumerate(k.get("buckets", [])):
                if _negative(b):
                    self.error(path + ("buckets", i), "values/negative",
                               f"{_where(path + ('buckets', i))}: {b} is a negative latency")
        self.at_most(path, k, "for", "a condition that must hold longer is a trend: alert on "
                     "an aggregate over time instead")

    def at_most(self, path, d: dict, key: str, why: str) -> None:
        if key not in d:
            return
        text, limit_s = MAX[key]
        ms = prometheus_duration_ms(d[key])
        if ms is not None and ms > limit_s * 1000:
            check = "values/for-too-long" if key == "for" else "values/too-long"
            self.error(path + (key,), check, f"{_where(path + (key,))}: {d[key]} is longer than "
                       f"{text}; expected at most {text} ({why})")

    def errors_selector(self, path, text, group_labels) -> None:
        ep = path + ("kpis", "error_rate", "errors")
        ms = matcher_list(text)
        if ms is None:
            self.error(ep, "values/selector",
                       f"{_where(ep)}: {text!r} is not a list of label matchers; expected "
                       'matchers separated by commas, each with a quoted value, e.g. '
                       'status=~"5.." or code="500",method!="GET" (nothing else: no braces '
                       "inside, no `or`, no comment)")
            return
        names = [n for n, _, _ in ms]
        for bad in ("job", "__name__"):
            if bad in names:
                self.error(ep, "values/selector",
                           f"{_where(ep)}: the selector matches on {bad!r}, which stackgen sets "
                           f"(the service's own {'scrape job' if bad == 'job' else 'counter'}); "
                           "remove that matcher")
        for n in sorted(set(names) & set(group_labels)):
            self.warn(path + ("labels", n), "labels/hides-scraped",
                      f"group label {n!r} replaces the scraped label {n!r} on every series "
                      "(Prometheus renames the scraped one to exported_" + n + "), so the "
                      "errors selector that matches on it never sees the service's value; "
                      "rename this label", at_key=True)

    # -- alerting -------------------------------------------------------------------------
    def alerting(self, a: dict) -> None:
        self.group_by(("alerting", "group_by"), a.get("group_by"))
        smarthost = a.get("smtp", {}).get("smarthost")
        if isinstance(smarthost, str):
            self.endpoint(("alerting", "smtp", "smarthost"), smarthost,
                          "host:port, e.g. smtp.example.com:587 or [2001:db8::25]:587")
        self.routes(a.get("routes", []), ("alerting", "routes"))

    def routes(self, routes, path) -> None:
        for i, r in enumerate(routes):
            rp = path + (i,)
            self.group_by(rp + ("group_by",), r.get("group_by"))
            self.routes(r.get("routes", []), rp + ("routes",))
        if len(routes) > 1 and not routes[0].get("continue") and \
                _matches_all(routes[0].get("matchers", [])):
            self.warn(path + (0,), "routes/shadowing",
                      f"{_where(path + (0,))} matches every alert and does not `continue`, so "
                      f"the {len(routes) - 1} route(s) after it never receive an alert; add "
                      "matchers, `continue: true`, or move it last")

    def group_by(self, path, labels) -> None:
        if not isinstance(labels, list):
            return
        seen: dict = {}
        for i, name in enumerate(labels):
            if name == "..." and len(labels) > 1:
                self.error(path + (i,), "values/group-by",
                           f"{_where(path + (i,))}: '...' (group by every label) cannot be "
                           "combined with other labels; expected either ['...'] alone or label "
                           "names")
            elif name != "..." and not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", name):
                self.error(path + (i,), "values/group-by",
                           f"{_where(path + (i,))}: {name!r} is not a label name; expected "
                           "letters, digits and '_', not starting with a digit")
            if name in seen:
                self.error(path + (i,), "values/group-by",
                           f"{_where(path + (i,))}: label {name!r} is listed twice (first at "
                           f"{_where(path + (seen[name],))}); Alertmanager refuses duplicates")
            else:
                seen[name] = i


def _matches_all(texts) -> bool:
    """Whether a list of matchers matches every alert (none, or each matches anything)."""
    from stackgen import matchers

    for t in texts:
        try:
            m = matchers.parse(t)
        except ValueError:
            return False
        if not ((m.op == "=~" and m.value in (".*", "(.*)")) or
                (m.op == "!~" and m.value in ("", "()"))):
            return False
    return True


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
        return True
    except ValueError:
        return False


def _negative(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return v < 0
    return isinstance(v, str) and v.strip().startswith("-")


def _yaml_number(v: float) -> str:
    return ".nan" if math.isnan(v) else (".inf" if v > 0 else "-.inf")


def _last_key(path):
    for p in reversed(path):
        if isinstance(p, str):
            return p
    return None


def _where(path) -> str:
    from stackgen.spec.schema import _path_text

    return _path_text(path)


def check(src: Source) -> list[Problem]:
    """Every value problem of a schema-valid spec (errors and warnings)."""
    c = _Checker(src)
    if isinstance(src.data, dict):
        c.spec(src.data)
    return c.problems


_UNSAFE_NAME = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def check_spec_path(path: str) -> list[Problem]:
    """A spec file name goes into every generated header: no control characters."""
    import os

    name = os.path.basename(path)
    m = _UNSAFE_NAME.search(name)
    if m:
        shown = path.encode("unicode_escape").decode("ascii")
        return [Problem(ERROR, "spec/name", f"the spec's file name {name!r} contains the "
                        f"control character U+{ord(m.group()):04X} (a line break?); rename the "
                        "file", shown, Position())]
    return []
