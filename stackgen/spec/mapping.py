"""The one explicit mapping from a schema-valid spec to the model, with the semantic checks.

Every problem found on the way is collected (never raised one at a time), placed at the
line and column of the value it is about.
"""

from __future__ import annotations

import os
import re

from stackgen import images as I
from stackgen import kpis as K
from stackgen.kpis import error_rate, response_time
from stackgen.kpis.base import humanizer
from stackgen import matchers
from stackgen.model import (
    GPUS, HOSTS, SERVICES, Alerting, EmailConfig, Group, Images, Kpi, KubernetesTarget, Model,
    PagerdutyConfig, Receiver, Route, Secret, Series, SlackConfig, Slo, Smtp, Stack, Threshold,
    WebhookConfig,
)
from stackgen.problems import ERROR, WARNING, Problem
from stackgen.spec import time_intervals as TI
from stackgen.spec import alerting_extras as X
from stackgen.spec import units as U
from stackgen.spec.schema import _path_text, did_you_mean
from stackgen.spec.source import Source


# Scrape jobs stackgen always adds for the stack itself; no group may take their names.
STACK_JOBS = ("prometheus", "alertmanager", "grafana", "cadvisor")

SEVERITIES = (("warning", False), ("critical", False), ("warning_below", True),
              ("critical_below", True))


class _Mapper:
    def __init__(self, src: Source, spec_path: str, out_dir: str, strict: bool):
        self.src = src
        self.spec_dir = os.path.dirname(os.path.abspath(spec_path))
        self.out_dir = out_dir
        self.strict = strict
        self.problems: list[Problem] = []
        self.secrets: dict[str, Secret] = {}  # by source path
        self.interval_names: list = []  # alerting.time_intervals, for the routes' references

    # -- problems -------------------------------------------------------------------------
    def error(self, path, check, message, at_key=False):
        self.problems.append(self.src.problem(path, check, message, ERROR, at_key))

    def warn(self, path, check, message, at_key=False):
        self.problems.append(self.src.problem(path, check, message, WARNING, at_key))

    # -- secrets --------------------------------------------------------------------------
    def secret(self, path, source: str) -> Secret:
        if source in self.secrets:
            return self.secrets[source]
        if os.path.isabs(source) or ".." in source.replace("\\", "/").split("/"):
            self.error(path, "secrets/path", f"secret file {source!r} must be a path inside the "
                       "spec's folder (relative, without '..'), so that it can be mounted")
            bad_path = True
        else:
            bad_path = False
        full = os.path.normpath(os.path.join(self.spec_dir, source))
        if not bad_path and os.path.isdir(full):
            self.error(path, "secrets/path", f"secret file {source!r} is a folder; expected a "
                       "file holding the secret value")
        elif not bad_path and os.path.isfile(full) and os.path.commonpath(
                [os.path.realpath(full), os.path.realpath(self.spec_dir)]) != \
                os.path.realpath(self.spec_dir):
            self.warn(path, "secrets/outside", f"secret file {source!r} is a symbolic link to "
                      f"{os.path.realpath(full)}, outside the spec's folder; Compose mounts "
                      "whatever it points to")
        elif not bad_path and not os.path.isfile(full):
            msg = (f"secret file {source!r} does not exist (looked for {full}); "
                   "`stackgen build` creates a random placeholder, or write the real value there")
            (self.error if self.strict else self.warn)(path, "secrets/missing", msg)
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(source)) or "secret"
        taken = {s.name for s in self.secrets.values()}
        name = stem = base if base not in taken else re.sub(r"[^A-Za-z0-9_.-]", "_", source)
        n = 1
        while name in taken:  # b/token and b_token normalise alike: keep them apart
            n += 1
            name = f"{stem}_{n}"
        sec = Secret(name=name, source=source, path=full)
        self.secrets[source] = sec
        return sec

    # -- stack ----------------------------------------------------------------------------
    def stack(self, d: dict) -> Stack:
        s = d.get("stack", {})
        g = s.get("grafana", {})
        password = None
        if "admin_password_file" in g:
            password = self.secret(("stack", "grafana", "admin_password_file"),
                                   g["admin_password_file"])
        scrape = s.get("scrape_interval", "15s")
        timeout = s.get("scrape_timeout", "10s")
        if U.is_duration(scrape) and U.is_duration(timeout):
            if U.duration_seconds(timeout) > U.duration_seconds(scrape):
                if "scrape_timeout" in s:
                    self.error(("stack", "scrape_timeout"), "stack/scrape-timeout",
                               f"stack.scrape_timeout: {timeout} is longer than scrape_interval "
                               f"{scrape}; Prometheus refuses a timeout longer than the interval")
                else:
                    timeout = scrape
        for key in ("scrape_interval", "evaluation_interval", "retention", "rate_window",
                    "scrape_timeout"):
            if key in s and not U.is_duration(s[key]):
                self.error(("stack", key), "values/duration", f"stack.{key}: {s[key]!r} is a zero "
                           "duration; expected a positive duration such as 15s")
        images = I.checked(s.get("images", {}), self.error)
        return Stack(
            name=s["name"],
            environment=s.get("environment", "production"),
            scrape_interval=scrape,
            evaluation_interval=s.get("evaluation_interval", scrape),
            scrape_timeout=timeout,
            retention=s.get("retention", "15d"),
            rate_window=s.get("rate_window", "5m"),
            grafana_admin_user=g.get("admin_user", "admin"),
            grafana_admin_password=password,
            grafana_url=g.get("url", "http://localhost:3000").rstrip("/"),
            images=Images(**images),
            external_labels=tuple(sorted(s.get("external_labels", {}).items())),
            outputs=tuple(o for o in ("compose", "helm") if o in s.get("outputs",
                                                                        ("compose", "helm"))),
        )

    # -- KPIs -----------------------------------------------------------------------------
    def thresholds(self, path, kind: str, d: dict) -> tuple:
        parse = K.kind(kind).parse
        out = []
        for key, below in SEVERITIES:
            if key not in d:
                continue
            raw = d[key]
            value = parse(raw)
            where = _path_text(path + (key,))
            if value is None:
                self.error(path + (key,), "values/threshold", f"{where}: cannot read {raw!r}")
                continue
            if K.kind(kind).ratio and value > 1:
                if isinstance(raw, str):  # a percentage such as 150%
                    msg = f"{where}: {raw} is above 100%, which this ratio can never reach"
                else:
                    msg = (f"{where}: {raw} is read as a ratio (1 = 100%), which this KPI can "
                           f"never exceed; did you mean {U.fmt_number(value)}% "
                           f"(a ratio of {U.fmt_number(value / 100)})?")
                self.error(path + (key,), "values/ratio", msg)
                continue
            out.append(Threshold(key.split("_")[0], below, value, str(raw),
                                 K.kind(kind).inclusive))
        by = {(t.severity, t.below): t for t in out}
        for below in (False, True):
            w, c = by.get(("warning", below)), by.get(("critical", below))
            if w and c and ((w.value >= c.value) if not below else (w.value <= c.value)):
                side = "below" if below else "above"
                self.warn(path + (("critical_below" if below else "critical"),),
                          "values/threshold-order",
                          f"critical threshold {c.text} is not beyond warning {w.text} "
                          f"(both fire {side}); the warning alert will never be the first to fire")
        return tuple(out)

    def kpi(self, path, kind, name, d, shape, group_labels) -> Kpi:
        """A KPI of `kind` written `d` at `path`: its kind's shape, thresholds and `for`."""
        return Kpi(
            kind=kind, name=name, **shape.kpi_fields(),
            record_labels=tuple(group_labels) if shape.aggregated else (),
            thresholds=U.mark_shares(kind, self.thresholds(path, kind, d)),
            for_=d.get("for", K.kind(kind).default_for),
            description=d.get("description", ""), humanize=humanizer(shape.unit),
            fills_within=d.get("fills_within"),
        )

    def promql(self, path, expr: str, what: str, instant: bool = False) -> bool:
        """Whether `expr` parses (and, with `instant`, gives an instant vector or a scalar,
        as a recording rule and an alert need)."""
        try:
            import promql_parser

            node = promql_parser.parse(expr)
        except ValueError as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
            self.error(path, "promql/parse", f"{what} is not valid PromQL: {detail}")
            return False
        while type(node).__name__ == "ParenExpr":
            node = node.expr
        kind = type(node).__name__
        if instant and kind in ("MatrixSelector", "SubqueryExpr"):
            self.error(path, "promql/type", f"{what} is a range vector; a recording rule and an "
                       "alert need an instant vector or a scalar (wrap it in a function such as "
                       "rate(...) or max_over_time(...))")
            return False
        if instant and kind == "StringLiteral":
            self.error(path, "promql/type", f"{what} is a string; a recording rule and an alert "
                       "need an instant vector or a scalar")
            return False
        return True

    def group(self, kind: str, name: str, d: dict, window: str) -> Group:
        path = (kind, name)
        labels = tuple(sorted(d.get("labels", {}).items()))
        label_key = {HOSTS: "host_group", GPUS: "gpu_group", SERVICES: "service"}[kind]
        for lname, _ in labels:
            if lname in ("job", "instance", label_key, "severity", "kpi", "alertname") or \
                    lname.startswith("__"):
                self.error(path + ("labels", lname), "labels/reserved",
                           f"label {lname!r} is set by stackgen or Prometheus; choose another name",
                           at_key=True)
        group_labels = ((label_key, name),) + labels
        kd = d.get("kpis", {})
        out = []
        job = name
        for kpi_kind in K.kinds_of(kind):
            out.extend(kpi_kind.kpis(self, path + ("kpis",), kd, job, window, group_labels))
        slos = self.slos(path, d.get("slos", {}), kd, {k.kind: k for k in out})
        metrics_path, scheme = d.get("metrics_path", "/metrics"), d.get("scheme", "http")
        kubernetes = None
        if "kubernetes" in d:
            k = d["kubernetes"]
            kubernetes = KubernetesTarget(
                namespace=k["namespace"], match_labels=tuple(sorted(
                    k["selector"]["matchLabels"].items())),
                port=k["port"], path=metrics_path, scheme=scheme)
        return Group(
            kind=kind, name=name, job=job, targets=tuple(d.get("targets", ())),
            metrics_path=metrics_path, scheme=scheme,
            labels=labels, description=d.get("description", ""),
            runbook_url=d.get("runbook_url"), kpis=tuple(out), slos=slos, kubernetes=kubernetes,
            target_down=X.target_down(d),
        )

    def slos(self, path, d: dict, kd: dict, kpis: dict) -> tuple:
        out = []
        needs = {"availability": "error_rate", "latency": "response_time"}
        for kind in ("availability", "latency"):
            if kind not in d:
                continue
            s = d[kind]
            sp = path + ("slos", kind)
            if needs[kind] not in kd:
                self.error(sp, "slos/source", f"a {kind} SLO reads its good and total events "
                           f"from the service's `{needs[kind]}` KPI, which is missing", at_key=True)
                continue
            if kind == "latency" and "summary" in kd["response_time"]:
                self.error(sp, "slos/summary", "a latency SLO counts the requests faster than "
                           "its threshold, and a summary cannot say how many those are (it "
                           "exposes only quantiles, which cannot be added up or averaged "
                           "across instances); read a histogram in response_time, or alert on "
                           "the summary's quantile with response_time's thresholds", at_key=True)
                continue
            if kind == "latency" and "histogram" not in kd["response_time"]:
                continue  # response_time names no source: reported at the KPI
            flt = kpis[needs[kind]].filter if needs[kind] in kpis else None  # else: an error
            objective = U.parse_ratio(s["objective"])
            window = s.get("window", "30d")
            if not U.is_duration(window):
                self.error(sp + ("window",), "values/duration",
                           f"{_path_text(sp + ('window',))}: {window!r} is a zero duration; "
                           "expected a positive duration such as 30d")
                continue
            threshold = U.parse_seconds(s["threshold"]) if kind == "latency" else None
            if kind == "latency" and threshold is None:  # e.g. .inf (values.py reports it)
                self.error(sp + ("threshold",), "values/threshold",
                           f"{_path_text(sp + ('threshold',))}: cannot read {s['threshold']!r}")
                continue
            job = path[1]
            if kind == "availability":
                er = kd["error_rate"]
                errors = error_rate.errors_matchers(er["errors"])
                ratio = error_rate.availability_error_ratio(job, er["counter"], errors,
                                                            Slo.WINDOW, flt)
                inputs = (Series(er["counter"], "counter"),)
            else:
                rt = kd["response_time"]
                self.check_bucket(sp + ("threshold",), threshold, s["threshold"], rt)
                ratio = response_time.latency_error_ratio(job, rt["histogram"], threshold,
                                                          Slo.WINDOW, flt)
                inputs = (Series(rt["histogram"], "histogram"),)
            if objective is None or not 0 < objective < 1:
                self.error(sp + ("objective",), "slos/objective",
                           f"objective {s['objective']!r} must be above 0% and below 100%")
                continue
            out.append(Slo(kind=kind, objective=objective, objective_text=s["objective"],
                           window=window, threshold=threshold,
                           threshold_text=str(s["threshold"]) if kind == "latency" else None,
                           description=s.get("description", ""), error_ratio=ratio,
                           inputs=inputs, name=s.get("name", ""),
                           alert=s.get("alert", "ErrorBudgetBurn")))
        return tuple(out)

    def check_bucket(self, path, threshold, raw, rt: dict) -> None:
        """A latency SLO counts requests in the bucket whose `le` is the threshold."""
        if "buckets" not in rt:
            self.warn(path, "slos/bucket-unknown",
                      f"latency threshold {raw!r} must be a bucket boundary (le) of "
                      f"{rt['histogram']}; list the histogram's `buckets:` in its response_time "
                      "KPI so that stackgen can check it")
            return
        buckets = [U.parse_seconds(b) for b in rt["buckets"]]
        if not any(b is not None and abs(b - threshold) < 1e-9 for b in buckets):
            shown = ", ".join(str(b) for b in rt["buckets"])
            self.error(path, "slos/bucket", f"latency threshold {raw!r} is not a bucket "
                       f"boundary of {rt['histogram']}; choose one of: {shown}")

    # -- alerting -------------------------------------------------------------------------
    def alerting(self, a: dict) -> Alerting:
        receivers = []
        for name, r in a.get("receivers", {}).items():
            rp = ("alerting", "receivers", name)
            if not r:
                self.error(rp, "receivers/empty", f"receiver {name!r} has no integration; "
                           "expected at least one of slack, email, webhook, pagerduty", at_key=True)

            def many(key):
                v = r.get(key, [])
                return [(rp + (key,), v)] if isinstance(v, dict) else \
                    [(rp + (key, i), x) for i, x in enumerate(v)]

            receivers.append(Receiver(
                name=name,
                slack=tuple(SlackConfig(c["channel"], self.secret(p + ("api_url_file",),
                                                                  c["api_url_file"]),
                                        c.get("title"), c.get("text"), c.get("send_resolved", True))
                            for p, c in many("slack")),
                email=tuple(EmailConfig(c["to"], c.get("send_resolved", True))
                            for p, c in many("email")),
                webhook=tuple(WebhookConfig(self.secret(p + ("url_file",), c["url_file"]),
                                            c.get("max_alerts", 0), c.get("send_resolved", True))
                              for p, c in many("webhook")),
                pagerduty=tuple(PagerdutyConfig(self.secret(p + ("routing_key_file",),
                                                            c["routing_key_file"]),
                                                c.get("severity"), c.get("send_resolved", True))
                                for p, c in many("pagerduty")),
            ))
        names = [r.name for r in receivers]
        smtp = None
        if "smtp" in a:
            s = a["smtp"]
            smtp = Smtp(
                smarthost=s["smarthost"], from_=s["from"], hello=s.get("hello"),
                auth_username=s.get("auth_username"),
                auth_password=self.secret(("alerting", "smtp", "auth_password_file"),
                                          s["auth_password_file"])
                if "auth_password_file" in s else None,
                require_tls=s.get("require_tls"),
            )
        if smtp is None:
            for r in receivers:
                if r.email:
                    self.error(("alerting", "receivers", r.name, "email"), "receivers/smtp",
                               f"receiver {r.name!r} sends email but `alerting.smtp` is not "
                               "set; expected smtp.smarthost and smtp.from", at_key=True)
        default = a["default_receiver"]
        if default not in names:
            self.error(("alerting", "default_receiver"), "routes/receiver",
                       f"default_receiver {default!r} is not a receiver{did_you_mean(default, names)}"
                       f" (receivers: {', '.join(names) or 'none'})")
        self.positive_intervals(a, ("alerting",))
        used = {default}
        intervals = TI.check(a, self.error, self.warn)
        self.interval_names, used_intervals = [i.name for i in intervals], set()
        routes = self.routes(a.get("routes", []), ("alerting", "routes"), names, used,
                             used_intervals=used_intervals)
        TI.warn_unused(self.interval_names, used_intervals, self.warn)
        heartbeat = X.heartbeat(self, a, names, used)
        if heartbeat:
            routes = (X.heartbeat_route(heartbeat),) + routes
        unknown = used - set(names)  # already reported: a typo there makes its target look unused
        for name in names:
            if name not in used and not unknown:
                self.warn(("alerting", "receivers", name), "receivers/unused",
                          f"receiver {name!r} is not used by any route", at_key=True)
        return Alerting(
            default_receiver=default, receivers=tuple(receivers), routes=routes,
            group_by=tuple(a.get("group_by", ["alertname"])),
            group_wait=a.get("group_wait", "30s"), group_interval=a.get("group_interval", "5m"),
            repeat_interval=a.get("repeat_interval", "4h"),
            resolve_timeout=a.get("resolve_timeout", "5m"), smtp=smtp,
            time_intervals=intervals, heartbeat=heartbeat,
        )

    def positive_intervals(self, d: dict, path: tuple) -> None:
        """Alertmanager refuses a zero group_interval or repeat_interval."""
        for key, example in (("group_interval", "5m"), ("repeat_interval", "4h")):
            if key in d and not U.is_duration(d[key]):
                self.error(path + (key,), "values/duration",
                           f"{_path_text(path + (key,))}: {d[key]!r} is a zero duration; "
                           f"Alertmanager refuses it; expected a positive duration such as "
                           f"{example}")

    def routes(self, items, path, names, used, prefix="routes", used_intervals=None) -> tuple:
        out = []
        used_intervals = set() if used_intervals is None else used_intervals
        for i, r in enumerate(items):
            rp = path + (i,)
            label = f"{prefix}[{i}]"
            self.positive_intervals(r, rp)
            when = TI.check_route_refs(r, rp, label, self.interval_names, self.error,
                                       used_intervals)
            if r["receiver"] not in names:
                self.error(rp + ("receiver",), "routes/receiver",
                           f"alerting.{label} sends to unknown receiver {r['receiver']!r}"
                           f"{did_you_mean(r['receiver'], names)} (receivers: {', '.join(names)})")
            used.add(r["receiver"])
            ms = []
            for j, text in enumerate(r.get("matchers", [])):
                try:
                    ms.append(str(matchers.parse(text)))
                except ValueError as exc:
                    self.error(rp + ("matchers", j), "routes/matcher", f"alerting.{label}: {exc}")
            out.append(Route(
                receiver=r["receiver"], matchers=tuple(ms), continue_=r.get("continue", False),
                group_by=tuple(r["group_by"]) if "group_by" in r else None,
                group_wait=r.get("group_wait"), group_interval=r.get("group_interval"),
                repeat_interval=r.get("repeat_interval"),
                routes=self.routes(r.get("routes", []), rp + ("routes",), names, used,
                                   f"{label}.routes", used_intervals),
                path=label, **when,
            ))
        return tuple(out)

    # -- all ------------------------------------------------------------------------------
    def model(self, d: dict, spec_sha: str, env: str | None) -> Model:
        from stackgen.spec import source_label

        if isinstance(d.get("version"), float):
            self.error(("version",), "schema/const", f"version: {d['version']} is not allowed; "
                       "expected 1 (the only supported version)")
        stack = self.stack(d)
        groups = []
        jobs: dict = {j: None for j in STACK_JOBS}
        for kind in (HOSTS, GPUS, SERVICES):
            for name, g in d.get(kind, {}).items():
                if name in jobs:
                    other = jobs[name]
                    where = f"{other[0]}.{other[1]}" if other else "stackgen's own scrape job"
                    self.error((kind, name), "groups/job-name",
                               f"{kind}.{name}: the scrape job name {name!r} is already taken by "
                               f"{where}; names must be unique across hosts, gpus and services",
                               at_key=True)
                    continue
                jobs[name] = (kind, name)
                groups.append(self.group(kind, name, g, stack.rate_window))
        alerting = self.alerting(d["alerting"]) if "alerting" in d else None
        if alerting is None:
            self.error((), "alerting/missing", "the spec has no `alerting` section; expected "
                       "at least alerting.receivers and alerting.default_receiver")
        dash = d.get("dashboards", {})
        model = Model(
            stack=stack, groups=tuple(groups), alerting=alerting,
            dashboards_overview=dash.get("overview", True),
            dashboards_per_group=dash.get("per_service", True),
            spec_sha256=spec_sha, spec_name=source_label(stack.name, env), env=env,
            spec_dir=os.path.relpath(self.spec_dir, os.path.abspath(self.out_dir)).replace(
                os.sep, "/"),
            secrets=tuple(sorted(self.secrets.values(), key=lambda s: s.name)),
        )
        from stackgen.spec import value_checks

        value_checks.check(self, model, d)
        if alerting is not None and not any(p.is_error for p in self.problems):
            from stackgen.spec import routing_check  # needs a whole model: after the rest

            routing_check.check(self, model, d["alerting"])
        return model


def to_model(src: Source, spec_path: str, out_dir: str, spec_sha: str, strict=False,
             env: str | None = None):
    """Map a schema-valid spec (of environment `env`) to the model; returns (model,
    problems). The model is final: the routing check's rule files (prometheus_rules keeps
    them for the model) are those the generators use."""
    m = _Mapper(src, spec_path, out_dir, strict)
    model = m.model(src.data, spec_sha, env)
    return model, m.problems
