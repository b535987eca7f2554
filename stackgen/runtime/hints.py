"""What `stackgen up` says about where to look: the Prometheus UI as the running binary
serves it, and how to query Alertmanager with amtool.

Debian's Prometheus 2.42 is built without the React UI: `/` redirects to `/classic/graph`,
and `/graph`, `/alerts`, `/targets` are 404 or a redirect (checked with the binary on
2026-11-29); upstream builds redirect `/` to `/graph`. So the UI path is read from the running
server's own redirect instead of assumed.
"""

from __future__ import annotations

import http.client
import urllib.parse


def prometheus_ui(base_url: str, timeout: float = 2.0) -> str:
    """The UI page `base_url` redirects `/` to (its /graph page if it does not say)."""
    u = urllib.parse.urlsplit(base_url)
    try:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        conn.request("GET", "/")
        resp = conn.getresponse()
        location = resp.getheader("Location") or ""
        conn.close()
    except OSError:
        location = ""
    path = urllib.parse.urlsplit(location).path or "/graph"
    return f"{base_url.rstrip('/')}{path}"


def lines(urls: dict) -> list[str]:
    """Hint lines for the running components (`urls`: component -> base URL)."""
    out = []
    if "prometheus" in urls:
        ui = prometheus_ui(urls["prometheus"])
        base = ui[:-len("/graph")] if ui.endswith("/graph") else urls["prometheus"]
        out.append(f"Prometheus UI: {ui} (alerts: {base}/alerts, targets: {base}/targets)")
    if "alertmanager" in urls:
        am = urls["alertmanager"].rstrip("/")
        out.append(f"Alertmanager: amtool --alertmanager.url={am} alert query  (silences: "
                   f"amtool --alertmanager.url={am} silence query; UI: {am}/#/alerts)")
    return out
