"""The stack, live: `stackgen up`, the demo exporter, the sinks and `stackgen smoke`.

Real Prometheus, Alertmanager and node_exporter binaries; never skipped: a missing binary
fails with how to install it.
"""

import json
import math
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

from conftest import REFERENCE, SPEC, read_until, same_bytes, stackgen_cmd
from stackgen import kpis as K
from stackgen.build import compile_spec
from stackgen.runtime import native, override, procs, smoke, steady
from stackgen.runtime.demo_exporter import DemoExporter, IncidentError, Sim
from stackgen.runtime.sinks import SmtpSink, WebhookSink
from stackgen.spec import load
from stackgen.spec.source import load_file

SECRETS = ("grafana_admin_password", "smtp_password", "slack_webhook_url")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
FREE_PORTS = ("--prometheus-port", "0", "--alertmanager-port", "0", "--node-exporter-port", "0")


@pytest.fixture(scope="module")
def servers():
    """Real binaries or a failure that says how to install them (never a skip)."""
    for component in ("prometheus", "alertmanager", "node_exporter"):
        try:
            procs.find_binary(component)
        except procs.MissingBinary as exc:
            pytest.fail(f"this test needs {component}: {exc}")


def _copy(tmp_path, source, name="stack.yaml"):
    d = tmp_path / "spec"
    (d / "secrets").mkdir(parents=True, exist_ok=True)
    shutil.copy(source, d / name)
    for secret in SECRETS:
        (d / "secrets" / secret).write_text("placeholder\n")
    return d / name


@pytest.fixture(scope="module")
def model():
    m, _ = load(REFERENCE)
    return m


def _get(url, data=None, method=None):
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with NO_PROXY.open(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _running(pids):
    return [p for p in pids if procs.pid_running(p)]


def _wait_gone(pids, timeout=10):
    """The pids still running after up to `timeout` seconds (expected: none)."""
    deadline = time.time() + timeout
    while _running(pids) and time.time() < deadline:
        time.sleep(0.1)
    return _running(pids)


# -- the steady-state evaluator -----------------------------------------------------------
def test_steady_evaluator_reads_rates_ratios_and_quantiles():
    w = steady.World()
    for inst, (ok, bad) in {"a:1": (9.0, 1.0), "b:1": (19.0, 1.0)}.items():
        base = {"job": "svc", "instance": inst}
        w.series.append(steady.series("req_total", {**base, "status": "200"}, "counter", ok))
        w.series.append(steady.series("req_total", {**base, "status": "500"}, "counter", bad))
        for le, rate in (("0.1", 5.0), ("0.5", 9.5), ("+Inf", 10.0)):
            w.series.append(steady.series("lat_bucket", {**base, "le": le}, "counter", rate))
        w.series.append(steady.series("util", {**base, "gpu": "0"}, "gauge", 50))
    assert steady.values('sum(rate(req_total{job="svc"}[5m]))', w) == [30.0]
    ratio = steady.values('sum(rate(req_total{status=~"5.."}[5m])) / sum(rate(req_total[5m]))', w)
    assert ratio == [pytest.approx(2 / 30)]
    assert steady.values("increase(req_total{instance='a:1',status='500'}[1m])", w) == [60.0]
    q = steady.values("histogram_quantile(0.95, sum by (le) (rate(lat_bucket[5m])))", w)
    assert q == [pytest.approx(0.1 + 0.4 * (19 - 10) / (19 - 10))]
    assert sorted(steady.values("1 - avg without (gpu) (util) / 100", w)) == [0.5, 0.5]
    per = steady.evaluate("sum by (instance) (rate(req_total[1m])) / on (instance) group_left "
                          "max by (instance) (util)", w)
    assert {lb["instance"]: v for lb, v in per} == {"a:1": 0.2, "b:1": 0.4}
    assert steady.values("util > 60", w) == []
    assert steady.values("max_over_time(util[5m:1m])", w) == [50.0, 50.0]
    with pytest.raises(steady.Unsupported):
        steady.values("req_total", w)  # a counter without rate(): no steady value
    assert math.isnan(steady.bucket_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]))


# -- the demo exporter --------------------------------------------------------------------
def _families(body: bytes) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_demo_exporter_serves_every_input_the_kpis_read(model):
    with DemoExporter(model) as exp:
        eps = {(e["group"], e["index"]): e for e in exp.endpoints()}
        assert len(eps) == sum(len(g.targets) for g in model.groups)
        assert all(e["address"].startswith("127.0.0.1:") for e in eps.values())
        got = {}
        for key, e in eps.items():
            status, body = _get(e["url"])
            assert status == 200
            got[key] = _families(body)
    nodes = got[("nodes", 0)]
    assert {lb["mode"] for lb, _ in nodes["node_cpu_seconds_total"]} >= {"idle", "user"}
    assert {"node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
            "node_filesystem_avail_bytes"} <= set(nodes)
    gpu = got[("dcgm", 1)]
    for name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"):
        assert {lb["gpu"] for lb, _ in gpu[name]} == {"0", "1"}
    llm = got[("granite-llm", 0)]
    les = {lb["le"] for lb, _ in llm["http_request_duration_seconds_bucket"]}
    assert {"0.5", "2.0", "+Inf"} <= les  # thresholds (and the SLO's 500ms) are buckets
    statuses = {lb.get("status") for lb, _ in llm["http_requests_total"]}
    assert any(re.fullmatch("5..", s) for s in statuses)
    assert any(not re.fullmatch("5..", s) for s in statuses)
    assert "vllm:generation_tokens_total" in llm  # custom KPI input
    sales = got[("sales-forecasting", 0)]
    assert {lb.get("status") for lb, _ in sales["prediction_requests_total"]} >= {"error"}
    assert "0.1" in {lb["le"] for lb, _ in sales["model_response_time_seconds_bucket"]}
    for name in ("model_data_drift_score", "model_prediction_accuracy",
                 "prediction_cache_hits_total"):
        assert name in sales


def test_demo_values_are_healthy_and_each_incident_crosses_its_threshold(model):
    sim = Sim(model)
    values = sim.kpi_values()
    for g in model.groups:
        for k in g.kpis:
            if not K.of(k).steady:
                continue  # an event's value (changes()): no steady state shows it
            got = values[f"{g.name}/{k.name}"]
            assert got, f"{g.name}/{k.name} has no value"
            for key, v in got.items():
                if k.kind == "disk" and ("mountpoint", "/") not in key:
                    continue  # small /run, /boot/efi: thresholds scale with them (real suite)
                for t in k.thresholds:
                    assert not (v < t.value if t.below else v > t.value), \
                        f"{g.name}/{k.name} = {v} crosses {t.severity} {t.op} {t.text} at rest"
    hits = values["sales-forecasting/cache_hit_rate"]
    assert all(0.6 < v <= 1 for v in hits.values())  # hits <= requests, realistic
    for g in model.groups:
        for k in g.kpis:
            if not k.thresholds or not K.of(k).steady:
                continue
            inc = sim.plan(f"{g.name}/{k.name}")
            worst = max(k.thresholds, key=lambda t: t.severity == "critical")
            after = sim.kpi_values(inc.overrides, inc.down)[f"{g.name}/{k.name}"]
            crossed = [v for v in after.values()
                       if (v < worst.value if worst.below else v > worst.value)]
            assert crossed, f"{g.name}/{k.name}: incident {inc.kind} leaves it at {after}"
    inc = sim.plan("sales-forecasting/cache_hit_rate")
    after = sim.kpi_values(inc.overrides)["sales-forecasting/cache_hit_rate"]
    assert all(0 <= v < 0.65 for v in after.values())
    warn = sim.plan("granite-llm/response_time", severity="warning")
    v = sim.kpi_values(warn.overrides)["granite-llm/response_time"]
    assert all(0.5 < x < 2 for x in v.values())  # between warning and critical
    with pytest.raises(IncidentError, match="does not apply"):
        sim.plan("granite-llm/response_time", kind="error-burst")
    with pytest.raises(IncidentError, match="no KPI"):
        sim.plan("granite-llm/nope")


def test_demo_exporter_incidents_over_http(model):
    with DemoExporter(model) as exp:
        eps = {(e["group"], e["index"]): e for e in exp.endpoints()}
        ctl = f"http://{eps[('nodes', 0)]['address']}"
        status, body = _get(f"{ctl}/incident?kpi=granite-llm/error_rate", b"", "POST")
        assert status == 200, body
        burst = json.loads(body)
        assert burst["kind"] == "error-burst" and \
            {c["threshold"] for c in burst["crosses"]} == {"1%", "5%"}
        status, body = _get(f"{ctl}/incident?kpi=granite-llm/nope", b"", "POST")
        assert status == 400 and b"no KPI" in body
        status, body = _get(f"{ctl}/incident?group=sales-forecasting&kind=down", b"", "POST")
        assert status == 200
        down = json.loads(body)
        assert _get(eps[("sales-forecasting", 0)]["url"])[0] == 503
        status, body = _get(f"{ctl}/incidents")
        assert len(json.loads(body)["incidents"]) == 2
        assert _get(f"{ctl}/incident?id={down['id']}", b"", "DELETE")[0] == 200
        assert _get(eps[("sales-forecasting", 0)]["url"])[0] == 200
        # close mode: the port stops answering, then comes back
        inc = exp.start_incident(group="dcgm", kind="down", target=1, mode="close")
        port = exp.port("dcgm", 1)
        assert not procs.port_open(port)
        exp.end_incident(inc)
        assert _get(eps[("dcgm", 1)]["url"])[0] == 200
        assert exp.heal() == [burst["id"]]
    assert not [t for t in threading.enumerate() if t.name.startswith("demo-") and t.is_alive()]


@pytest.mark.parametrize("cmd", [["demo"], ["-m", "stackgen.runtime.demo_exporter"]],
                         ids=["stackgen-demo", "python-m"])
def test_demo_exporter_standalone(tmp_path, cmd):
    spec = _copy(tmp_path, REFERENCE)
    argv = [*stackgen_cmd(), *cmd] if cmd == ["demo"] else [sys.executable, *cmd]
    proc = subprocess.Popen([*argv, str(spec), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        eps = json.loads(proc.stdout.readline())
        assert len(eps) == 6
        assert all(e["address"].startswith("127.0.0.1:") for e in eps)
        status, body = _get(eps[0]["url"])
        assert status == 200 and b"node_cpu_seconds_total" in body
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    assert not procs.port_open(int(eps[0]["address"].rsplit(":", 1)[1]))


@pytest.mark.parametrize("command", ["demo", "up", "smoke"])
def test_runtime_commands_reject_a_bad_spec_with_positions(tmp_path, command):
    spec = _copy(tmp_path, REFERENCE)
    spec.write_text(spec.read_text().replace("version: 1", "version: 7"))
    proc = subprocess.run([*stackgen_cmd(), command, str(spec)], capture_output=True,
                          text=True, timeout=30, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"{spec}:8:10: error: version: 7 is not allowed" in out
    assert "[schema/const]" in out and "Traceback" not in out and "Problem(" not in out
    assert sorted(os.listdir(tmp_path)) == ["spec"]  # nothing written


# -- sinks --------------------------------------------------------------------------------
def test_smtp_sink_speaks_enough_smtp():
    sink = SmtpSink(username="am", password="s3cret",
                    rcpt_receivers={"ops-0@x.invalid": ("ops", 0)}).start()
    try:
        host, port = sink.address.split(":")
        with smtplib.SMTP(host, int(port), timeout=5) as c:
            c.ehlo("test")
            assert c.has_extn("auth") and not c.has_extn("starttls")
            assert c.docmd("STARTTLS")[0] == 454
            with pytest.raises(smtplib.SMTPAuthenticationError):
                c.login("am", "wrong")
            c.login("am", "s3cret")
            msg = ("Subject: [FIRING:1] X\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n"
                   "<h3>CRITICAL: a &amp; b</h3>\r\n.leading dot\r\n")
            c.sendmail("am@x.invalid", ["ops-0@x.invalid"], msg)
        with smtplib.SMTP(host, int(port), timeout=5) as c:  # HELO only, no auth: refused
            c.helo("old")
            with pytest.raises(smtplib.SMTPSenderRefused):
                c.sendmail("am@x.invalid", ["ops-0@x.invalid"], "Subject: y\r\n\r\nz")
    finally:
        sink.stop()
    (d,) = sink.deliveries
    assert (d.integration, d.receiver, d.index, d.status) == ("email", "ops", 0, "firing")
    assert "CRITICAL: a & b" in d.text and ".leading dot" in d.text
    assert d.meta["authenticated_as"] == "am"


def test_webhook_sink_records_slack_and_pagerduty():
    sink = WebhookSink().start()
    try:
        slack = {"attachments": [{"title": "[RESOLVED] X", "text": "*WARNING* s",
                                  "color": "good"}]}
        assert _get(sink.url("slack", "team", 1), json.dumps(slack).encode(), "POST")[0] == 200
        pd = {"event_action": "trigger", "payload": {"summary": "a \u0026 b"}}
        assert _get(sink.url("pagerduty", "oncall"), json.dumps(pd).encode(), "POST")[0] == 202
        assert _get(f"http://{sink.address}/nope/x", b"{}", "POST")[0] == 400
    finally:
        sink.stop()
    s, p = sink.deliveries
    assert (s.endpoint, s.status) == (("slack", "team", 1), "resolved") and "*WARNING* s" in s.text
    assert (p.endpoint, p.status) == (("pagerduty", "oncall", 0), "firing") and "a & b" in p.text


# -- mapping for a native run -------------------------------------------------------------
def _built(tmp_path, data):
    d = tmp_path / "mapped"
    (d / "secrets").mkdir(parents=True)
    for secret in (*SECRETS, "hook_url"):
        (d / "secrets" / secret).write_text(f"http://127.0.0.1:9/{secret}\n")
    (d / "stack.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    model, artifacts, _ = compile_spec(str(d / "stack.yaml"), str(d / "out"))
    files = {a.path: yaml.safe_load(a.content) for a in artifacts if a.path.endswith(".yml")}
    return model, files, d


def test_runtime_mapping_of_prometheus_and_alertmanager(tmp_path):
    src, _ = load_file(REFERENCE)
    data = src.data
    data["alerting"]["receivers"]["hooks"] = {"webhook": {"url_file": "secrets/hook_url"}}
    data["alerting"]["routes"].append({"matchers": ['team="ml-platform"'], "receiver": "hooks"})
    model, files, d = _built(tmp_path, data)
    prom = files[native.PROM_CONFIG]
    ports = native.Ports(9001, 9002, 9003)
    mapped, notes, need_ne = native.map_prometheus(json.loads(json.dumps(prom)),
                                                   out_dir=str(d / "out"), model=model,
                                                   ports=ports)
    assert need_ne
    assert mapped["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == \
        ["127.0.0.1:9002"]
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in mapped["scrape_configs"]}
    assert jobs["prometheus"] == ["127.0.0.1:9001"]
    assert jobs["alertmanager"] == ["127.0.0.1:9002"]
    assert jobs["nodes"] == ["127.0.0.1:9003"]
    assert jobs["granite-llm"] == ["neuron1:11434", "neuron2:11434"]  # remote: as it is
    assert "grafana" not in jobs and "cadvisor" not in jobs
    assert any("grafana" in n and "dropped" in n for n in notes)
    assert any("remote targets" in n and "neuron1:11434" in n for n in notes)
    assert mapped["rule_files"] == [str(d / "out" / "prometheus" / "rules" / "*.yml")]
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == \
        ["alertmanager:9093"]  # the generated data is not touched

    am = files[native.AM_CONFIG]
    old, notes, secret = native.map_alertmanager(json.loads(json.dumps(am)),
                                                 out_dir=str(d / "out"), model=model,
                                                 version=(0, 25, 0))
    assert secret
    hooks = next(r for r in old["receivers"] if r["name"] == "hooks")["webhook_configs"][0]
    assert hooks == {"url": "http://127.0.0.1:9/hook_url", "send_resolved": True}
    assert any("url_file" in n and "0.26" in n for n in notes)
    slack = next(r for r in old["receivers"] if r["name"] == "ml-team")["slack_configs"][0]
    assert slack["api_url_file"] == str(d / "secrets" / "slack_webhook_url")
    assert old["global"]["smtp_auth_password"] == "http://127.0.0.1:9/smtp_password"
    assert old["templates"] == [str(d / "out" / "alertmanager" / "templates" / "*.tmpl")]
    new, notes, secret = native.map_alertmanager(json.loads(json.dumps(am)),
                                                 out_dir=str(d / "out"), model=model,
                                                 version=(0, 28, 1))
    assert not secret and not notes
    hooks = next(r for r in new["receivers"] if r["name"] == "hooks")["webhook_configs"][0]
    assert hooks["url_file"] == str(d / "secrets" / "hook_url")
    assert new["global"]["smtp_auth_password_file"] == str(d / "secrets" / "smtp_password")
    assert "/run/secrets/" not in json.dumps(new)


def _overridden(data: dict, tmp_path):
    """(override, targets): `data` through smoke's test override, demo ports 20000 on."""
    counts = override.target_counts(data)
    targets = {(g, i): f"127.0.0.1:{20000 + n}" for n, (g, i) in enumerate(
        (g, i) for g, c in counts.items() for i in range(c))}
    ov = override.apply(data, str(tmp_path / "spec"), targets,
                        lambda integ, r, i: f"http://127.0.0.1:1/{integ}/{r}/{i}",
                        "127.0.0.1:2525")
    return ov, targets


def test_test_override_builds_fast_local_stack(tmp_path):
    src, _ = load_file(REFERENCE)
    ov, targets = _overridden(src.data, tmp_path)
    model, _, _ = compile_spec(ov.spec, str(tmp_path / "out"))
    assert model.stack.scrape_interval == "1s" and model.stack.rate_window == "5s"
    assert {k.for_ for g in model.groups for k in g.kpis} == {"2s"}
    tokens = next(k for g in model.groups for k in g.kpis if k.name == "token_throughput")
    assert "[5s]" in tokens.expr and "[5m]" not in tokens.expr
    assert override.shorten_ranges("max_over_time(x[1h:5m]) + rate(y[2m30s])") == \
        "max_over_time(x[5s:1s]) + rate(y[5s])"
    assert model.alerting.group_wait == "1s" and model.alerting.smtp.require_tls is False
    assert model.alerting.smtp.smarthost == "127.0.0.1:2525"
    assert ov.endpoints["critical-alerts"] == [("slack", 0), ("email", 0)]
    assert ov.emails == {"critical-alerts-0@smoke.stackgen.invalid": ("critical-alerts", 0)}
    slack = {s.name: s for s in model.secrets}["smoke-slack-ml-team-0"]
    assert open(slack.path).read().strip() == "http://127.0.0.1:1/slack/ml-team/0"
    assert [g.targets for g in model.groups][2] == ("127.0.0.1:20003", "127.0.0.1:20004")
    assert src.data["stack"]["scrape_interval"] == "15s"  # the loaded data is not changed


def test_test_override_drops_route_time_intervals_and_says_so(tmp_path):
    """A smoke run checks every incident's delivery whatever the hour: the routes' mute and
    active time intervals are dropped from the spec under test, and a note names them (the
    web shop's warnings to email are muted in the evenings and on weekends)."""
    spec = os.path.join(os.path.dirname(__file__), "specs", "envs", "webshop.yaml")
    src, _ = load_file(spec)
    from stackgen.spec.environments import merged

    data = merged(src, "production").data
    ov, targets = _overridden(data, tmp_path)
    text = open(ov.spec).read()
    assert "time_intervals" not in text
    notes = "\n".join(ov.notes)
    assert "mute_time_intervals [offhours]" in notes and "active_time_intervals" in notes
    built, _, _ = compile_spec(ov.spec, str(tmp_path / "out"))
    assert all(not r.mute_time_intervals and not r.active_time_intervals
               for r in built.alerting.routes)


# -- stackgen up --------------------------------------------------------------------------
def _listening(pid: int) -> list[str]:
    """Local addresses of the TCP sockets `pid` listens on."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for name in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{name}") as fh:
            next(fh)
            for line in fh:
                parts = line.split()
                if parts[3] == "0A" and parts[9] in inodes:
                    out.append(parts[1].split(":")[0])
    return out


def _tree_digest(root) -> dict:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def _closed_port():
    return procs.free_port()


def test_up_runs_on_loopback_and_stops_on_sigint(servers, tmp_path):
    spec = _copy(tmp_path, SPEC)
    data = yaml.safe_load(spec.read_text())
    nowhere = f"127.0.0.1:{_closed_port()}"  # no DNS, no network: a closed loopback port
    for kind in ("gpus", "services"):
        for g in data[kind].values():
            g["targets"] = [nowhere]
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    subprocess.run([*stackgen_cmd(), "build", str(spec), "--out", str(out)], check=True,
                   capture_output=True)
    before = _tree_digest(out)
    data_dir = tmp_path / "data"
    proc = subprocess.Popen([*stackgen_cmd(), "up", str(spec), "--out", str(out), "--data-dir",
                             str(data_dir), *FREE_PORTS], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    pids = []
    try:
        text = "".join(read_until(proc, "ready in"))
        assert "ready in" in text, text
        state = json.loads((data_dir / "runtime.json").read_text())
        pids = list(state["pids"].values())
        assert set(state["pids"]) == {"prometheus", "alertmanager", "node_exporter"}
        for name, pid in state["pids"].items():
            addrs = _listening(pid)
            assert addrs, f"{name} listens nowhere"
            assert all(a in ("0100007F", "00000000000000000000000001000000") for a in addrs), \
                f"{name} listens beyond loopback: {addrs}"
        assert "note: job grafana" in text and "note: job cadvisor" in text
        prom = state["urls"]["prometheus"]
        # where to look: the UI page this binary really serves (Debian's: /classic/graph)
        ui = re.search(r"^Prometheus UI: (\S+)", text, re.M)
        assert ui and ui.group(1).startswith(prom) and _get(ui.group(1))[0] == 200, text
        am = state["urls"]["alertmanager"].rstrip("/")
        assert f"amtool --alertmanager.url={am} alert query" in text, text

        def live(path, pick):
            t = time.time() + 20
            while time.time() < t:
                status, body = _get(prom.rstrip("/") + path)
                if status == 200 and pick(json.loads(body)["data"]):
                    return True
                time.sleep(0.5)
            return False

        am_port = str(state["ports"]["alertmanager"])
        assert live("/api/v1/alertmanagers",
                    lambda d: any(am_port in a["url"] for a in d["activeAlertmanagers"]))
        assert live("/api/v1/targets", lambda d: any(
            t["labels"]["job"] == "nodes" and t["health"] == "up" for t in d["activeTargets"]))
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        assert "stopped Prometheus, Alertmanager, node_exporter" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _wait_gone(pids, 5) == []
    assert _tree_digest(out) == before  # generated/ is never changed


def test_up_names_every_missing_secret_file(tmp_path):
    spec = _copy(tmp_path, SPEC)
    out = tmp_path / "out"
    subprocess.run([*stackgen_cmd(), "build", str(spec), "--out", str(out), "--no-secrets"],
                   check=True, capture_output=True)
    for name in ("smtp_password", "slack_webhook_url"):
        (spec.parent / "secrets" / name).unlink()
    proc = subprocess.run([*stackgen_cmd(), "up", str(spec), "--out", str(out), "--data-dir",
                           str(tmp_path / "data")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for name in ("smtp_password", "slack_webhook_url"):
        assert str(spec.parent / "secrets" / name) in proc.stderr
    assert "stackgen build" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()  # nothing started, nothing written


def test_up_on_a_taken_port_says_so_and_leaves_nothing_running(servers, tmp_path):
    spec = _copy(tmp_path, SPEC)
    out = tmp_path / "out"
    subprocess.run([*stackgen_cmd(), "build", str(spec), "--out", str(out)], check=True,
                   capture_output=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([*stackgen_cmd(), "up", str(spec), "--out", str(out),
                               "--data-dir", str(tmp_path / "data"), *FREE_PORTS,
                               "--prometheus-port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"prometheus: port {port} on 127.0.0.1 is already in use" in proc.stderr
    state = tmp_path / "data" / "runtime.json"
    assert not state.exists()
    assert _processes_using(tmp_path / "data") == []  # Alertmanager had started: stopped
    assert "--prometheus-port (0: any free port)" in proc.stderr
    assert "stopped Alertmanager, node_exporter\n" in proc.stdout


def _processes_using(path) -> list:
    """Processes whose command line names `path`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if str(path).encode() in fh.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_up_and_smoke_name_the_missing_package(tmp_path):
    spec = _copy(tmp_path, SPEC)
    out = tmp_path / "out"
    subprocess.run([*stackgen_cmd(), "build", str(spec), "--out", str(out)], check=True,
                   capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKGEN_")}
    env["PATH"] = str(tmp_path / "empty")
    for args in (["up", str(spec), "--out", str(out)], ["smoke", str(spec)]):
        proc = subprocess.run([*stackgen_cmd(), *args], capture_output=True, text=True, env=env,
                              timeout=60)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "apt-get install --no-install-recommends prometheus" in proc.stdout + proc.stderr


# -- stackgen smoke -----------------------------------------------------------------------
def _assert_no_leftovers(res):
    assert res.pids, "the run started no process"
    assert _wait_gone(res.pids.values(), 5) == [], f"left running: {res.pids}"
    assert not [t for t in threading.enumerate()
                if t.name.startswith(("demo-", "webhook-sink", "smtp-sink")) and t.is_alive()]


def test_smoke_passes_for_the_project_spec(servers, tmp_path):
    spec = _copy(tmp_path, SPEC)
    t0 = time.time()
    res = smoke.run(str(spec), echo=print)
    print(f"smoke of specs/stack.yaml: {time.time() - t0:.1f}s")
    assert res.ok, "\n".join(res.failures)
    names = [c.name for c in res.checks]
    assert {"targets", "rules", "dashboards", "healthy baseline"} <= set(names)
    incidents = [n for n in names if n.startswith("incident ")]
    kinds = {n.split("(")[1].rstrip(")") for n in incidents}
    assert kinds >= {"cpu-high", "memory-full", "disk-full", "gpu-busy", "gpu-memory-full",
                     "latency-spike", "throughput-drop", "error-burst", "drift-rise",
                     "accuracy-drop", "custom-crossing", "target down"}
    assert res.seconds < 120
    _assert_no_leftovers(res)


def test_smoke_passes_for_the_reference_spec_from_the_cli(servers, tmp_path):
    """The CLI's smoke start to finish. The project spec's full run above already drove
    every incident of the same KPIs; the reference differs from it only in its disk
    thresholds (sizes instead of shares) and in declared buckets (which only the spec checks
    read), so here the steady checks run with the disk incident alone."""
    spec = _copy(tmp_path, REFERENCE, "reference.yaml")
    t0 = time.time()
    only = ["--only", "none" if same_bytes(REFERENCE, SPEC) else "nodes/disk"]
    proc = subprocess.run([*stackgen_cmd(), "smoke", str(spec), *only], capture_output=True,
                          text=True, timeout=300)
    took = time.time() - t0
    print(proc.stdout, f"\nsmoke of reference.yaml (CLI): {took:.1f}s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke PASSED" in proc.stdout
    assert took < 120
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", proc.stdout)]
    assert len(pids) == 2 and _wait_gone(pids, 5) == []


@pytest.mark.parametrize("kind, only, expect", [
    ("rule:granite-llm/response_time", ["granite-llm/response_time"],
     ["ResponseTimeHigh (critical) never went pending", "the alert rule does not fire"]),
    ("route", ["granite-llm/error_rate"],
     ["ErrorRateHigh (critical) did not reach email:critical-alerts, slack:critical-alerts",
      "it reached slack:ai-operations", "also reached slack:ai-operations"]),
    ("panel", [], ["dashboards:", "_sabotaged", "returned no data"]),
])
def test_smoke_fails_naming_what_broke(servers, tmp_path, kind, only, expect):
    spec = _copy(tmp_path, SPEC)
    t0 = time.time()
    # half the patience: each sabotage waits for what never comes (a minimal run is ~10s)
    res = smoke.run(str(spec), sabotage_kind=kind, only=only, echo=print, patience=0.5)
    print(f"sabotaged smoke ({kind}): {time.time() - t0:.1f}s")
    assert res.sabotage
    assert not res.ok
    text = "\n".join(res.failures)
    for part in expect:
        assert part in text, text
    # nothing else broke
    assert all(f.startswith(("incident", "dashboards")) for f in res.failures), text
    _assert_no_leftovers(res)


def test_smoke_patience_scales_what_an_incident_waits():
    from stackgen.runtime.smoke_incident import Ctx

    for patience, low, high in ((1.0, 1.9, 3.5), (0.25, 0.4, 1.4)):
        ctx = Ctx(*[None] * 7, patience=patience)
        t0 = time.time()
        assert ctx.wait(lambda: None, t0 + 2) is None
        assert low <= time.time() - t0 < high, patience


def test_smoke_stops_everything_on_ctrl_c(servers, tmp_path):
    spec = _copy(tmp_path, SPEC)
    proc = subprocess.Popen([*stackgen_cmd(), "smoke", str(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    pids = []
    try:
        start = [line for line in read_until(proc, "PASS  start") if line.startswith("PASS  start")]
        pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", "".join(start))]
        assert len(pids) == 2
        assert _running(pids) == pids
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 1, rest
        assert "interrupted" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _wait_gone(pids, 5) == []


def test_no_listener_is_left_on_the_ports_of_a_run(servers, tmp_path):
    spec = _copy(tmp_path, SPEC)
    res = smoke.run(str(spec), only=[], echo=None)
    assert res.ok, res.failures
    ports = [int(p) for c in res.checks if c.name == "start"
             for p in re.findall(r"127\.0\.0\.1:(\d+)", c.detail)]
    assert len(ports) == 4
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


def test_a_custom_quotient_of_raw_gauges_named_like_counters_is_healthy_and_drivable():
    """`pg_stat_activity_count` read raw is a gauge (postgres_exporter's), whatever its name
    says: the demo serves it as one, so a quotient of it sits at a healthy value and an
    incident moves it past its threshold (it was served as a counter: an ever-growing ratio
    that fired at rest and could not be driven)."""
    from stackgen.runtime.simulation import GAUGE, free_inputs

    model, _ = load(os.path.join(os.path.dirname(__file__), "specs", "envs", "webshop.yaml"),
                    out_dir="generated", env="production")
    assert free_inputs(model)["postgres"]["pg_stat_activity_count"].kind == GAUGE
    sim = Sim(model)
    assert not [n for n in sim.notes if "pg_connections_used" in n], sim.notes
    [v] = sim.kpi_values()["postgres/pg_connections_used"].values()
    assert 0 < v < 0.8
    kpi = next(k for g in model.groups if g.name == "postgres" for k in g.kpis
               if k.name == "pg_connections_used")
    group = next(g for g in model.groups if g.name == "postgres")
    assert sim.solve(group, kpi, 0.97) is not None


def test_smoke_takes_the_groups_resolution_as_the_critical_alerts_when_they_share_a_group():
    """Without `severity` in group_by, a KPI's critical and warning alerts share an
    Alertmanager group. When the critical resolves while the value still sits between the
    thresholds, the warning fires uninhibited, and the group's RESOLVED notification
    carries only the warning. That is the critical's resolution as the on-call sees it (a
    search team's indexer failed smoke on this); with severity in group_by it is not."""
    from stackgen.model import Route
    from stackgen.runtime.sinks import Delivery
    from stackgen.runtime.smoke_incident import resolved_endpoints, severities_share_a_group

    crit, warn = "error ratio of indexer above 10%", "error ratio of indexer above 1%"
    deliveries = [
        Delivery(1.0, "webhook", "audit", "firing", f"critical\n{crit}\n{warn}"),
        Delivery(5.0, "webhook", "audit", "resolved", f"warning\n{warn}"),
        Delivery(5.0, "email", "mail", "resolved", f"WARNING ErrorRateHigh: {warn}"),
    ]
    ep = {("webhook", "audit", 0), ("email", "mail", 0)}
    assert resolved_endpoints(deliveries, 2.0, "critical", crit, None) == set()
    assert resolved_endpoints(deliveries, 2.0, "critical", crit, warn) == ep
    assert resolved_endpoints(deliveries, 6.0, "critical", crit, warn) == set()
    routes = (Route(receiver="a", matchers=('team="x"',)),)
    assert severities_share_a_group(("alertname", "team"), routes)
    assert not severities_share_a_group(("alertname", "severity"), routes)
    assert not severities_share_a_group(("...",), routes)
    assert not severities_share_a_group(
        ("alertname",), (Route(receiver="a", group_by=("severity",)),))


def test_an_incident_drives_a_kpi_to_the_side_of_its_thresholds():
    """GPU utilization with only `warning_below` (idle GPUs) gets the `gpu-idle` incident;
    `smoke` of that spec crashed on its default `gpu-busy`, which crosses nothing."""
    from stackgen.runtime.smoke_plan import plan_one

    spec = os.path.join(os.path.dirname(__file__), "specs", "good", "dashboards_off.yaml")
    model, _ = load(spec, out_dir="generated")
    exporter = DemoExporter(model)
    inc = exporter.plan("dcgm/utilization")
    assert inc.kind == "gpu-idle" and inc.threshold is not None and inc.threshold.below
    planned = plan_one(model, exporter, "dcgm/utilization")
    assert planned.main.alertname == "GpuUtilizationLow"
    assert exporter.plan("dcgm/memory").kind == "gpu-memory-full"  # its default still


def test_test_override_stands_a_demo_target_in_for_kubernetes_services(tmp_path):
    """A group scraped only through Kubernetes Services gets one demo target (the override
    left it with `targets: []`, and smoke stopped on its own invalid spec)."""
    spec = os.path.join(os.path.dirname(__file__), "specs", "good", "kubernetes.yaml")
    src, _ = load_file(spec)
    counts = override.target_counts(src.data)
    assert counts["checkout"] == 1 and counts["cluster-nodes"] == 1
    ov, targets = _overridden(src.data, tmp_path)
    model, _, _ = compile_spec(ov.spec, str(tmp_path / "out"))
    by_name = {g.name: g for g in model.groups}
    assert by_name["checkout"].targets == (targets[("checkout", 0)],)
    assert all(g.kubernetes is None for g in model.groups)
    assert any("services.checkout: its Kubernetes Services -> one demo target" in n
               for n in ov.notes)


def test_smoke_knows_which_configs_send_no_resolved_and_which_have_their_own_slack_text(
        tmp_path):
    """receivers.yaml: `send_resolved: false` configs get no RESOLVED expectation, a Slack
    config with its own title/text is recognised by the alert's summary or description (its
    template, not stackgen's), and the always-firing heartbeat is not a noisy baseline;
    smoke of that good spec failed on all three."""
    from stackgen.runtime.smoke_checks import check_baseline

    spec = os.path.join(os.path.dirname(__file__), "specs", "good", "receivers.yaml")
    src, _ = load_file(spec)
    ov, targets = _overridden(src.data, tmp_path)
    assert ov.no_resolved == {("slack", "chat", 0), ("email", "mail-many", 1),
                              ("webhook", "hooks", 1)}
    assert ov.custom_text == {("slack", "chat", 0)}

    class FakeLive:
        def __init__(self, alerts):
            self.alerts = alerts

        def prom_alerts(self):
            return self.alerts

    heartbeat = {"labels": {"alertname": "Heartbeat", "kpi": "heartbeat"}, "state": "firing"}
    assert check_baseline(FakeLive([heartbeat]), 0).ok
    cpu = {"labels": {"alertname": "HostCpuHigh", "kpi": "cpu", "severity": "warning"},
           "state": "pending", "value": "0.9"}
    assert not check_baseline(FakeLive([heartbeat, cpu]), 0).ok


def test_custom_kpis_on_a_free_histogram_and_on_a_byte_sized_gauge_are_healthy_and_drivable():
    """services_custom.yaml: a p99 over a histogram no built-in KPI serves gets `le`
    buckets (a latency distribution the solver can move), and a heap in bytes is solved
    however far its value is from the demo's starting 1.0 (both were "cannot choose
    healthy inputs", and smoke failed on their empty panels)."""
    spec = os.path.join(os.path.dirname(__file__), "specs", "good", "services_custom.yaml")
    model, _ = load(spec, out_dir="generated")
    sim = Sim(model)
    assert not [n for n in sim.notes if "cannot choose" in n], sim.notes
    values = sim.kpi_values()
    [p99] = values["api/p99_latency"].values()
    [heap] = values["api/heap_bytes"].values()
    assert 0 < p99 < 0.75 and 0 < heap < 2 * 2**30
    api = next(g for g in model.groups if g.name == "api")
    for name, target in (("p99_latency", 3.0), ("heap_bytes", 5.2e9)):
        kpi = next(k for k in api.kpis if k.name == name)
        assert sim.solve(api, kpi, target) is not None, name
