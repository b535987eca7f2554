"""`stackgen up --demo`: notifications go to local sinks, not to the spec's real receivers.

A demo's incidents are synthetic (and a healthy demo can still cross a threshold): they must
not page the real on-call. Unless `--real-receivers` is given, `up --demo` starts a local
HTTP sink (Slack, webhook, PagerDuty) and a local SMTP sink on 127.0.0.1 and points every
receiver of the runtime copy of alertmanager.yml at them; the generated files are not
touched. Each notification the sinks receive is printed.
"""

from __future__ import annotations

from stackgen.runtime.sinks import SmtpSink, WebhookSink

HTTP_INTEGRATIONS = (("slack_configs", "slack", ("api_url", "api_url_file")),
                     ("webhook_configs", "webhook", ("url", "url_file")),
                     ("pagerduty_configs", "pagerduty", ("url",)))


class LocalReceivers:
    def __init__(self):
        self.http = WebhookSink().start()
        self.smtp = SmtpSink().start()
        self._seen = 0
        self._http_seen = 0

    def am_extra(self, cfg: dict, notes: list) -> None:
        """Point every receiver of the runtime Alertmanager config at the local sinks."""
        emails = {}
        for rec in cfg.get("receivers", []):
            name = rec.get("name", "")
            for key, integration, fields in HTTP_INTEGRATIONS:
                for i, conf in enumerate(rec.get(key, [])):
                    for f in fields:
                        conf.pop(f, None)
                    conf[fields[0]] = self.http.url(integration, name, i)
            for i, conf in enumerate(rec.get("email_configs", [])):
                conf["smarthost"] = self.smtp.address
                conf["require_tls"] = False
                emails[str(conf.get("to", "")).lower()] = (name, i)
        glob = cfg.get("global") or {}
        if "smtp_smarthost" in glob:
            glob["smtp_smarthost"] = self.smtp.address
            glob["smtp_require_tls"] = False
        self.smtp.rcpt_receivers = emails
        notes.append("demo: every receiver of the runtime alertmanager.yml points at the local "
                     "sinks (the generated files are unchanged)")

    def where(self) -> str:
        return (f"notifications -> local sinks only: http://{self.http.address} (Slack, "
                f"webhook, PagerDuty), smtp {self.smtp.address} (email); the spec's receivers "
                "are not contacted (--real-receivers to use them)")

    def new_lines(self) -> list[str]:
        """One line per notification received since the last call."""
        out = []
        for sink, attr in ((self.http, "_http_seen"), (self.smtp, "_seen")):
            got = sink.snapshot()
            for d in got[getattr(self, attr):]:
                first = d.text.strip().splitlines()[0] if d.text.strip() else ""
                out.append(f"notified {d.integration} {d.receiver}: {first}")
            setattr(self, attr, len(got))
        return out

    def stop(self) -> None:
        for sink in (self.http, self.smtp):
            try:
                sink.stop()
            except OSError:
                pass


def describe_real(model) -> str:
    """Where notifications go with the spec's own receivers."""
    parts = []
    for r in model.alerting.receivers:
        ways = [f"slack {c.channel}" for c in r.slack] + [f"email {c.to}" for c in r.email] + \
            ["webhook" for _ in r.webhook] + ["pagerduty" for _ in r.pagerduty]
        parts.append(f"{r.name} ({', '.join(ways)})")
    return "notifications -> the spec's real receivers: " + "; ".join(parts)
