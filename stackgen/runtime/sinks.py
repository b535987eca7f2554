"""Local stand-ins for notification services, on 127.0.0.1, recording what arrives.

- WebhookSink: one HTTP server for Slack (incoming webhooks), generic webhooks and PagerDuty
  (Events API v2); the path tells receivers apart (/slack/<receiver>/<n>, ...).
- SmtpSink: a minimal SMTP server (EHLO/HELO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP,
  QUIT; STARTTLS is refused), written on socketserver since smtpd is gone from Python 3.12.

Every delivery becomes a `Delivery` with its time, integration, receiver and content.
"""

from __future__ import annotations

import base64
import email
import email.policy
import html
import json
import socketserver
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    at: float
    integration: str  # slack | webhook | pagerduty | email
    receiver: str  # from the path or the recipient
    status: str  # firing | resolved (as far as the payload tells)
    text: str  # searchable text: titles, bodies, summaries (HTML unescaped)
    raw: object = None  # the JSON payload or the email.message.EmailMessage
    meta: dict = field(default_factory=dict)
    index: int = 0  # which config of that integration in the receiver (n in the path)

    @property
    def endpoint(self) -> tuple:
        return (self.integration, self.receiver, self.index)


class _Recorder:
    """A server on its own thread that records deliveries."""

    def __init__(self, server, thread_name: str):
        self.deliveries: list[Delivery] = []
        self._cond = threading.Condition()
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever,
                                       kwargs={"poll_interval": 0.2}, daemon=True,
                                       name=thread_name)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def add(self, d: Delivery):
        with self._cond:
            self.deliveries.append(d)
            self._cond.notify_all()

    def snapshot(self) -> list[Delivery]:
        with self._cond:
            return list(self.deliveries)


# -- HTTP: Slack, webhook, PagerDuty ------------------------------------------------------
def _slack(payload: dict) -> tuple[str, str]:
    parts, status = [], "firing"
    for key in ("text",):
        if isinstance(payload.get(key), str):
            parts.append(payload[key])
    for att in payload.get("attachments") or []:
        for key in ("title", "pretext", "text", "fallback", "footer"):
            if isinstance(att.get(key), str):
                parts.append(att[key])
        if att.get("color") == "good" or str(att.get("title", "")).startswith("[RESOLVED"):
            status = "resolved"
    return status, "\n".join(parts)


def _strings(data) -> list[str]:
    """Every string in a JSON document (decoded: Go escapes & < > in JSON)."""
    if isinstance(data, dict):
        return [s for k, v in sorted(data.items()) for s in [f"{k}:"] + _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return [data] if isinstance(data, str) else []


def _webhook(payload: dict) -> tuple[str, str]:
    return payload.get("status", "firing"), "\n".join(_strings(payload))


def _pagerduty(payload: dict) -> tuple[str, str]:
    status = "resolved" if payload.get("event_action") == "resolve" else "firing"
    return status, "\n".join(_strings(payload))


PARSERS = {"slack": _slack, "webhook": _webhook, "pagerduty": _pagerduty}


class _HttpHandler(BaseHTTPRequestHandler):
    server_version = "stackgen-sink"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        integration = parts[0] if parts else ""
        receiver = parts[1] if len(parts) > 1 else ""
        index = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
        code, reply = 200, b"ok"
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = None
        if integration not in PARSERS or payload is None:
            code, reply = 400, b"unknown path or not JSON"
        else:
            status, text = PARSERS[integration](payload)
            self.server.recorder.add(Delivery(time.time(), integration, receiver, status, text,
                                              payload, {"path": self.path}, index))
            if integration == "pagerduty":
                code, reply = 202, b'{"status":"success","message":"Event processed"}'
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class WebhookSink(_Recorder):
    """POST /slack/<receiver>/<n>, /webhook/<receiver>/<n>, /pagerduty/<receiver>/<n>."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(_HttpServer((host, port), _HttpHandler), "webhook-sink")
        self.server.recorder = self

    def url(self, integration: str, receiver: str, index: int = 0) -> str:
        return f"http://{self.address}/{integration}/{receiver}/{index}"


# -- SMTP ---------------------------------------------------------------------------------
class _SmtpHandler(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, line: str):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def readline(self) -> str | None:
        raw = self.rfile.readline(65536)
        if not raw:
            return None
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self):
        sink: SmtpSink = self.server.sink
        self.reply(f"220 {sink.hostname} ESMTP stackgen smoke sink")
        mail_from, rcpts, authed = None, [], None
        while True:
            line = self.readline()
            if line is None:
                return
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                caps = [sink.hostname, "8BITMIME", "SIZE 10485760"]
                if sink.username is not None:
                    caps.append("AUTH PLAIN LOGIN")
                for i, cap in enumerate(caps):
                    self.reply(f"250{'-' if i < len(caps) - 1 else ' '}{cap}")
            elif verb == "HELO":
                self.reply(f"250 {sink.hostname}")
            elif verb == "STARTTLS":
                self.reply("454 4.7.0 TLS not available")
            elif verb == "AUTH":
                authed = self._auth(arg, sink)
                if authed is None:
                    return
            elif verb == "MAIL":
                if sink.username is not None and not authed:
                    self.reply("530 5.7.0 Authentication required")
                    continue
                mail_from, rcpts = arg.partition(":")[2].strip().split(" ")[0].strip("<>"), []
                self.reply("250 2.1.0 OK")
            elif verb == "RCPT":
                if mail_from is None:
                    self.reply("503 5.5.1 MAIL first")
                    continue
                rcpts.append(arg.partition(":")[2].strip().split(" ")[0].strip("<>"))
                self.reply("250 2.1.5 OK")
            elif verb == "DATA":
                if not rcpts:
                    self.reply("503 5.5.1 RCPT first")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    raw = self.rfile.readline(1 << 20)
                    if not raw:
                        return
                    if raw in (b".\r\n", b".\n"):
                        break
                    lines.append(raw[1:] if raw.startswith(b"..") else raw)
                sink.deliver(mail_from, rcpts, b"".join(lines), authed)
                mail_from, rcpts = None, []
                self.reply("250 2.0.0 OK: queued")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.reply("250 2.0.0 OK")
            elif verb == "NOOP":
                self.reply("250 2.0.0 OK")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Command not implemented")

    def _auth(self, arg: str, sink) -> str | None | bool:
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        try:
            if mech == "PLAIN":
                if not initial:
                    self.reply("334 ")
                    initial = self.readline() or ""
                _, user, password = base64.b64decode(initial).decode().split("\0", 2)
            elif mech == "LOGIN":
                self.reply("334 " + base64.b64encode(b"Username:").decode())
                user = base64.b64decode(self.readline() or "").decode()
                self.reply("334 " + base64.b64encode(b"Password:").decode())
                password = base64.b64decode(self.readline() or "").decode()
            else:
                self.reply("504 5.5.4 Unrecognized authentication type")
                return False
        except (ValueError, UnicodeDecodeError):
            self.reply("501 5.5.2 Cannot decode response")
            return False
        sink.auth_attempts.append((user, password))
        if user == sink.username and password == sink.password:
            self.reply("235 2.7.0 Authentication successful")
            return user
        self.reply("535 5.7.8 Authentication credentials invalid")
        return False


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink(_Recorder):
    """Accepts mail on 127.0.0.1; `username`/`password` set: AUTH is offered and required."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, username: str | None = None,
                 password: str | None = None, rcpt_receivers: dict | None = None):
        super().__init__(_SmtpServer((host, port), _SmtpHandler), "smtp-sink")
        self.hostname = "smoke.stackgen.invalid"
        self.username, self.password = username, password
        self.rcpt_receivers = rcpt_receivers or {}  # address -> (receiver, index)
        self.auth_attempts: list = []
        self.server.sink = self

    def deliver(self, mail_from: str, rcpts: list, data: bytes, authed):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        subject = str(msg.get("Subject", ""))
        body = msg.get_body(preferencelist=("html", "plain"))
        content = body.get_content() if body is not None else ""
        text = html.unescape(f"{subject}\n{content}")
        status = "resolved" if subject.startswith("[RESOLVED") else "firing"
        for rcpt in rcpts:
            receiver, index = self.rcpt_receivers.get(rcpt.lower(), (rcpt, 0))
            self.add(Delivery(time.time(), "email", receiver, status, text, msg,
                              {"from": mail_from, "to": rcpt, "subject": subject,
                               "authenticated_as": authed or None}, index))

