"""`stackgen up`: the generated stack as native processes on 127.0.0.1, no Docker.

The generated files are written for Compose: Prometheus reaches `alertmanager:9093` and
`node-exporter:9100` by service name, scrapes itself at `localhost:9090`, and secrets live
at `/run/secrets/<name>`. For a native run each config is loaded, MAPPED and written as a
runtime copy into the data folder; the generated folder is never touched:

| generated (Compose)                      | runtime copy                                     |
| ---------------------------------------- | ------------------------------------------------ |
| alerting target `alertmanager:9093`      | `127.0.0.1:<Alertmanager port>`                  |
| job prometheus `localhost:9090`          | `127.0.0.1:<Prometheus port>`                    |
| job alertmanager `alertmanager:9093`     | `127.0.0.1:<Alertmanager port>`                  |
| `node-exporter:9100` targets             | a local node_exporter on `127.0.0.1:<port>`      |
| jobs grafana, cadvisor                   | dropped: no native process here (a note says so) |
| job cadvisor with `--demo` (and in smoke)| the demo cAdvisor (runtime.stack_demo)           |
| other targets (remote hosts)             | unchanged: down unless reachable (a note says so) |
| `/run/secrets/<name>`                    | the spec's secret file                           |
| `rule_files`, `templates` (relative)     | absolute paths into the generated folder         |
| webhook `url_file` (Alertmanager < 0.26) | `url` read from the file (a note says so)        |
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import yaml

from stackgen.model import Model
from stackgen import runtime
from stackgen.runtime import procs
from stackgen.runtime.procs import LOOPBACK, MissingBinary, StartError

PROM_CONFIG = "prometheus/prometheus.yml"
AM_CONFIG = "alertmanager/alertmanager.yml"
SECRETS_MOUNT = "/run/secrets/"

# Compose service names of the stack's own components, as the generated configs use them.
NODE_EXPORTER_HOST = "node-exporter"
NO_NATIVE = {
    "grafana": "Grafana has no native server here (none in apt, PyPI or npm)",
    "cadvisor": "cAdvisor reads container metrics from Docker, which a native run has not",
}
# `*_file` fields Alertmanager learned late: (config list, field) -> (version, inline field).
AM_FILE_FIELDS = {
    ("webhook_configs", "url_file"): ((0, 26, 0), "url"),
    ("global", "smtp_auth_password_file"): ((0, 25, 0), "smtp_auth_password"),
    ("pagerduty_configs", "routing_key_file"): ((0, 25, 0), "routing_key"),
    ("pagerduty_configs", "service_key_file"): ((0, 25, 0), "service_key"),
    ("slack_configs", "api_url_file"): ((0, 22, 0), "api_url"),
    ("global", "slack_api_url_file"): ((0, 22, 0), "slack_api_url"),
}
UNTRIMMED_PASSWORD_BEFORE = (0, 26, 0)
NAMES = {"prometheus": "Prometheus", "alertmanager": "Alertmanager",
         "node_exporter": "node_exporter"}


class UpError(RuntimeError):
    pass


@dataclass
class Ports:
    prometheus: int = 0
    alertmanager: int = 0
    node_exporter: int = 0


def _split(target: str) -> tuple[str, str]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), port


def _load_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise UpError(f"{path} is missing; run `stackgen build` first") from None


def _dump(path: str, data: dict, note: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = (f"# Runtime copy for a native run (stackgen up); {note}\n"
            + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=10**6))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)


def _map_secrets(data, secrets: dict, notes: list, where: str):
    """Replace every /run/secrets/<name> string with the spec's secret file."""
    if isinstance(data, dict):
        return {k: _map_secrets(v, secrets, notes, where) for k, v in data.items()}
    if isinstance(data, list):
        return [_map_secrets(v, secrets, notes, where) for v in data]
    if isinstance(data, str) and data.startswith(SECRETS_MOUNT):
        name = data[len(SECRETS_MOUNT):]
        if name in secrets:
            return secrets[name]
        notes.append(f"{where}: {data} names no secret of the spec; left as it is")
    return data


def map_prometheus(cfg: dict, *, out_dir: str, model: Model, ports: Ports,
                   target_map: dict | None = None) -> tuple[dict, list, bool]:
    """(runtime config, notes, whether a local node_exporter is needed)."""
    notes: list = []
    target_map = target_map or {}
    cfg = _map_secrets(cfg, {s.name: s.path for s in model.secrets}, notes, "prometheus.yml")
    rules_base = os.path.abspath(os.path.join(out_dir, "prometheus"))
    cfg["rule_files"] = [f if os.path.isabs(f) else os.path.join(rules_base, f)
                         for f in cfg.get("rule_files", [])]
    prom, am = f"{LOOPBACK}:{ports.prometheus}", f"{LOOPBACK}:{ports.alertmanager}"
    for amc in (cfg.get("alerting") or {}).get("alertmanagers", []):
        for sc in amc.get("static_configs", []):
            sc["targets"] = [am if _split(t)[0] == "alertmanager" else t
                             for t in sc.get("targets", [])]
    need_ne = False
    remote: dict = {}
    jobs = []
    for job in cfg.get("scrape_configs", []):
        name = job.get("job_name", "")
        kept_any = False
        dropped = []
        for sc in job.get("static_configs", []):
            new = []
            for t in sc.get("targets", []):
                host, port = _split(t)
                if (name, t) in target_map:
                    new.append(target_map[(name, t)])
                elif host == "alertmanager":
                    new.append(am)
                elif host == "prometheus" or (name == "prometheus" and t == "localhost:9090"):
                    new.append(prom)
                elif host == NODE_EXPORTER_HOST:
                    new.append(f"{LOOPBACK}:{ports.node_exporter}")
                    need_ne = True
                elif host in NO_NATIVE:
                    dropped.append(t)
                else:
                    new.append(t)
                    if host not in ("localhost", LOOPBACK, "::1"):
                        remote.setdefault(name, []).append(t)
            sc["targets"] = new
            kept_any = kept_any or bool(new)
        job["static_configs"] = [sc for sc in job.get("static_configs", []) if sc["targets"]]
        if dropped:
            why = NO_NATIVE[_split(dropped[0])[0]]
            what = "dropped the job" if not kept_any else "dropped these targets"
            notes.append(f"job {name} ({', '.join(dropped)}): {what}: {why}")
        if kept_any or not dropped:
            jobs.append(job)
    cfg["scrape_configs"] = jobs
    if remote:
        listed = "; ".join(f"{j}: {', '.join(ts)}" for j, ts in remote.items())
        notes.append(f"remote targets left as they are (down unless reachable from here): "
                     f"{listed}")
    return cfg, notes, need_ne


def map_alertmanager(cfg: dict, *, out_dir: str, model: Model, version: tuple,
                     extra=None) -> tuple[dict, list, bool]:
    """(runtime config, notes, whether it now holds a secret value)."""
    notes: list = []
    cfg = _map_secrets(cfg, {s.name: s.path for s in model.secrets}, notes, "alertmanager.yml")
    base = os.path.abspath(os.path.join(out_dir, "alertmanager"))
    cfg["templates"] = [t if os.path.isabs(t) else os.path.join(base, t)
                        for t in cfg.get("templates", [])]
    if extra:
        extra(cfg, notes)
    inlined = False
    shown = ".".join(map(str, version)) if version else "unknown"

    def inline(section: dict, key: str, where: str):
        nonlocal inlined
        need, field_ = AM_FILE_FIELDS[(where, key)]
        if key not in section or (version and version >= need):
            return
        path = section.pop(key)
        try:
            with open(path, encoding="utf-8") as fh:
                section[field_] = fh.read().strip()
        except OSError as exc:
            raise UpError(f"cannot read {path} ({key} of alertmanager.yml): {exc.strerror}")
        inlined = True
        notes.append(f"Alertmanager {shown} has no `{key}` (needs "
                     f"{'.'.join(map(str, need))}): `{field_}` read from {path} into the "
                     f"runtime copy only (mode 0600)")

    glob = cfg.get("global") or {}
    for (where, key) in AM_FILE_FIELDS:
        if where == "global":
            inline(glob, key, where)
    path = glob.get("smtp_auth_password_file")
    if path and version and version < UNTRIMMED_PASSWORD_BEFORE:
        # Alertmanager 0.25 sends the file's bytes as they are (a trailing newline included,
        # as a local SMTP server shows); later versions trim it.
        try:
            with open(path, encoding="utf-8") as fh:
                content = fh.read()
        except OSError as exc:
            raise UpError(f"cannot read {path} (smtp_auth_password_file): {exc.strerror}")
        if content != content.strip():
            del glob["smtp_auth_password_file"]
            glob["smtp_auth_password"] = content.strip()
            inlined = True
            notes.append(f"Alertmanager {shown} sends the SMTP password file's content "
                         f"untrimmed and {path} ends in whitespace: the trimmed password is "
                         "inlined into the runtime copy only (mode 0600)")
    for rec in cfg.get("receivers", []):
        for (where, key) in AM_FILE_FIELDS:
            for conf in rec.get(where, []) if where != "global" else []:
                inline(conf, key, where)
    return cfg, notes, inlined


@dataclass
class NativeStack:
    """Prometheus, Alertmanager and (where the spec's hosts need it) node_exporter."""

    model: Model
    out_dir: str
    data_dir: str | None = None
    ports: Ports = field(default_factory=Ports)
    target_map: dict | None = None  # {(job, target): address}: e.g. demo exporters
    am_extra: object = None  # callable(config, notes): last edits to alertmanager.yml

    def __post_init__(self):
        self.sup = procs.Supervisor()
        self.notes: list = []
        self.urls: dict = {}
        self.procs: dict = {}
        self._temp = False
        self.started_in = 0.0

    # -- life cycle ---------------------------------------------------------------------
    def start(self, timeout: float = 40.0) -> "NativeStack":
        t0 = time.time()
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.time() - t0
        return self

    def _start(self, timeout):
        bins = {c: procs.find_binary(c) for c in ("prometheus", "alertmanager")}
        prom_cfg = _load_yaml(os.path.join(self.out_dir, PROM_CONFIG))
        am_cfg = _load_yaml(os.path.join(self.out_dir, AM_CONFIG))
        probe = Ports(1, 1, 1)
        _, _, need_ne = map_prometheus(json.loads(json.dumps(prom_cfg)), out_dir=self.out_dir,
                                       model=self.model, ports=probe,
                                       target_map=self.target_map)
        if need_ne:
            bins["node_exporter"] = procs.find_binary("node_exporter")
        if self.data_dir is None:
            self.data_dir = tempfile.mkdtemp(prefix="stackgen-up-")
            self._temp = True
        os.makedirs(self.data_dir, exist_ok=True)
        d = os.path.abspath(self.data_dir)
        version = procs.binary_version(bins["alertmanager"])
        am_runtime, notes, secret = map_alertmanager(am_cfg, out_dir=self.out_dir,
                                                     model=self.model, version=version,
                                                     extra=self.am_extra)
        self.notes.extend(notes)
        am_path = os.path.join(d, "alertmanager", "alertmanager.yml")
        _dump(am_path, am_runtime, f"mapped from {os.path.join(self.out_dir, AM_CONFIG)}",
              0o600 if secret else 0o644)
        if need_ne:
            self.ports.node_exporter = self._run(
                "node_exporter", self.ports.node_exporter,
                lambda p: [bins["node_exporter"], f"--web.listen-address={LOOPBACK}:{p}"],
                "/metrics", timeout)
        self.ports.alertmanager = self._run(
            "alertmanager", self.ports.alertmanager,
            lambda p: [bins["alertmanager"], f"--config.file={am_path}",
                       f"--storage.path={os.path.join(d, 'alertmanager', 'data')}",
                       f"--web.listen-address={LOOPBACK}:{p}", "--cluster.listen-address=",
                       f"--web.external-url=http://{LOOPBACK}:{p}/"],
            "/-/ready", timeout)
        prom_path = os.path.join(d, "prometheus", "prometheus.yml")

        def prom_cmd(p):
            self.ports.prometheus = p
            runtime, notes, _ = map_prometheus(json.loads(json.dumps(prom_cfg)),
                                               out_dir=self.out_dir, model=self.model,
                                               ports=self.ports, target_map=self.target_map)
            self._prom_notes = notes
            _dump(prom_path, runtime, f"mapped from {os.path.join(self.out_dir, PROM_CONFIG)}")
            return [bins["prometheus"], f"--config.file={prom_path}",
                    f"--storage.tsdb.path={os.path.join(d, 'prometheus', 'data')}",
                    f"--storage.tsdb.retention.time={self.model.stack.retention}",
                    f"--web.listen-address={LOOPBACK}:{p}", "--web.enable-lifecycle",
                    f"--web.external-url=http://{LOOPBACK}:{p}/"]

        self.ports.prometheus = self._run("prometheus", self.ports.prometheus, prom_cmd,
                                          "/-/ready", timeout)
        self.notes.extend(self._prom_notes)
        self._write_state()

    def _run(self, name: str, port: int, cmd, ready_path: str, timeout: float) -> int:
        fixed = bool(port)
        for attempt in range(3):
            p = port or procs.free_port()
            if fixed and procs.port_open(p):
                raise StartError(f"{name}: port {p} on {LOOPBACK} is already in use; choose "
                                 f"another with --{name.replace('_', '-')}-port (0: any free "
                                 f"port)")
            proc = self.sup.start(name, cmd(p), os.path.join(self.data_dir, "logs",
                                                              f"{name}.log"))
            self.procs[name] = proc
            try:
                procs.wait_ready(proc, f"http://{LOOPBACK}:{p}{ready_path}", timeout)
            except StartError:
                lost_race = "address already in use" in proc.log_tail(50)
                self.sup.stop_one(proc)
                if fixed or not lost_race or attempt == 2:
                    raise
                continue
            self.urls[name] = f"http://{LOOPBACK}:{p}" + ("/metrics" if name == "node_exporter"
                                                          else "/")
            return p
        raise StartError(f"{name}: no free port")  # pragma: no cover

    def _write_state(self):
        state = {"pids": self.sup.pids, "urls": self.urls, "ports": self.ports.__dict__,
                 "data_dir": os.path.abspath(self.data_dir), "out_dir": self.out_dir,
                 "notes": self.notes}
        with open(os.path.join(self.data_dir, "runtime.json"), "w") as fh:
            json.dump(state, fh, indent=1)

    @property
    def pids(self) -> dict:
        return {name: p.pid for name, p in self.procs.items()}

    def died(self) -> list:
        return self.sup.died()

    def stop(self, remove_temp: bool = True) -> None:
        self.sup.stop()
        if self._temp and remove_temp and self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def prom(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.ports.prometheus}{path}"

    def am(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.ports.alertmanager}{path}"


def stale_files(out_dir: str, artifacts) -> list:
    """Generated files on disk that differ from (or lack) what the spec generates now."""
    from stackgen import writer

    d = writer.diff(out_dir, artifacts)
    return sorted(set(d.stale) | set(d.missing))


def up(spec: str, out_dir: str, data_dir: str | None = None, ports: Ports | None = None,
       demo: bool = False, echo=None, real_receivers: bool = False) -> int:
    """The `stackgen up` command: start, print, wait for Ctrl-C, stop. Returns the exit code."""
    echo = echo or runtime.echo
    from stackgen.build import compile_spec
    from stackgen.problems import SpecError, render_text

    try:
        model, artifacts, _ = compile_spec(spec, out_dir)
    except SpecError as exc:
        echo(render_text(exc.problems).rstrip("\n"), err=True)
        echo(f"stackgen up: {spec} is invalid", err=True)
        return 2
    if not os.path.isfile(os.path.join(out_dir, PROM_CONFIG)):
        echo(f"stackgen up: {out_dir}/ holds no generated stack; run `stackgen build {spec} "
             f"--out {out_dir}` first", err=True)
        return 2
    missing = [s.path for s in model.secrets if not os.path.isfile(s.path)]
    if missing:
        echo(f"stackgen up: missing secret files: {', '.join(missing)}. The stack reads them "
             f"at start; `stackgen build {spec}` creates placeholders (random, mode 0600), or "
             f"write the real values into them.", err=True)
        return 2
    stale = stale_files(out_dir, artifacts)
    if stale:
        echo(f"warning: {out_dir}/ differs from what {spec} generates ({', '.join(stale[:4])}"
             f"{' ...' if len(stale) > 4 else ''}); running the files on disk. Run `stackgen "
             f"build` to update them.", err=True)
    exporter = cadvisor = None
    stack = None
    local = None
    with procs.stop_on_signals():
        try:
            target_map = None
            if demo and not real_receivers:
                from stackgen.runtime.local_receivers import LocalReceivers

                local = LocalReceivers()
            if demo:
                from stackgen.runtime.demo_exporter import DemoExporter

                from stackgen.runtime.stack_demo import CadvisorDemo

                exporter = DemoExporter(model).start()
                cadvisor = CadvisorDemo(model.deployment).start()
                target_map = {(g.job, t): f"{LOOPBACK}:{exporter.port(g.name, i)}"
                              for g in model.groups for i, t in enumerate(g.targets)}
                target_map.update(cadvisor.target_map())
            stack = NativeStack(model, out_dir, data_dir, ports or Ports(),
                                target_map=target_map, am_extra=local and local.am_extra)
            try:
                stack.start()
            except (MissingBinary, StartError, UpError) as exc:
                echo(f"stackgen up: {exc}", err=True)
                return 2 if isinstance(exc, (MissingBinary, UpError)) else 1
            for note in stack.notes:
                echo(f"note: {note}")
            if exporter is not None:
                for ep in exporter.endpoints():
                    echo(f"demo     {ep['group']}/{ep['target']} -> {ep['url']}")
                first = exporter.endpoints()[0]["address"] if exporter.endpoints() else None
                if first:
                    echo(f"incidents: curl -X POST 'http://{first}/incident?kpi=<group>/<kpi>'")
            for name, url in stack.urls.items():
                echo(f"{NAMES[name]:<14} {url}  (pid {stack.pids[name]})")
            from stackgen.runtime.hints import lines as hint_lines

            for line in hint_lines(stack.urls):
                echo(line)
            _echo_receivers(echo, model, local, demo)
            echo(f"data in {stack.data_dir}{' (temporary)' if stack._temp else ''}; logs in "
                 f"{os.path.join(stack.data_dir, 'logs')}")
            echo(f"ready in {stack.started_in:.1f}s; press Ctrl-C to stop")
            while True:
                time.sleep(0.5)
                for line in local.new_lines() if local else ():
                    echo(line)
                dead = stack.died()
                if dead:
                    for p in dead:
                        echo(f"stackgen up: {p.name} exited with code {p.popen.returncode}; "
                             f"last lines of its log:\n{p.log_tail()}", err=True)
                    return 1
        except KeyboardInterrupt:
            echo("stopping ...")
            return 0
        finally:
            if stack is not None:
                stack.stop()
            for server in (exporter, cadvisor):
                if server is not None:
                    server.stop()
            if local is not None:
                local.stop()
            if stack is not None and stack.procs:
                left = [f"{n} (pid {p.pid})" for n, p in stack.procs.items()
                        if procs.pid_running(p.pid)]
                stopped = [shown for n, shown in NAMES.items() if n in stack.procs]
                echo("stopped" + (f"; still running: {', '.join(left)}" if left else
                                  " " + ", ".join(stopped)))


def _echo_receivers(echo, model: Model, local, demo: bool) -> None:
    """Say where notifications go (and warn when real ones would carry placeholders)."""
    from stackgen.runtime.local_receivers import describe_real
    from stackgen.secret_check import placeholders

    if local is not None:
        echo(local.where())
        return
    echo(describe_real(model))
    if demo:
        echo("warning: --real-receivers: the demo's synthetic incidents reach these real "
             "receivers", err=True)
    held = placeholders(s.path for s in model.secrets)
    if held:
        echo(f"warning: still the placeholder `stackgen build` created, so notifications "
             f"through them fail: {', '.join(held)}", err=True)
