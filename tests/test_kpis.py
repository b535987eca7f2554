"""The KPI kinds (stackgen/kpis/): each is complete and is the one home of what it reads;
and the code base keeps its shape (module size, no private imports across modules)."""

import ast
import glob
import json
import os
import re

import promql_parser
import pytest

from conftest import REFERENCE, ROOT, SPEC
from stackgen import kpis as K
from stackgen.kpis.base import KpiKind, Param
from stackgen.model import GPUS, HOSTS, SERVICES
from stackgen.runtime import steady
from stackgen.runtime.sim import Sim
from stackgen.spec import load

PACKAGE = os.path.join(ROOT, "stackgen")
MAX_LINES = 500


def modules() -> list[str]:
    return sorted(glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True))


def rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


@pytest.fixture(scope="module")
def model():
    m, _ = load(REFERENCE)
    return m


@pytest.fixture(scope="module")
def sim(model):
    return Sim(model)


@pytest.fixture(scope="module")
def checked() -> dict:
    """{spec: model} of the project's spec and the good specs (built and promtool-checked by
    tests/test_build.py and tests/test_tools.py)."""
    specs = [SPEC] + sorted(glob.glob(os.path.join(ROOT, "tests", "specs", "good", "*.yaml")))
    return {os.path.relpath(s, ROOT): load(s)[0] for s in specs}


def overrides(kind: KpiKind, name: str) -> bool:
    return getattr(type(kind), name) is not getattr(KpiKind, name)


# -- the registry -------------------------------------------------------------------------
def test_every_kind_module_registers_one_kind():
    helpers = {"__init__", "base", "synth"}
    names = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(PACKAGE, "kpis", "*.py"))}
    kinds = {type(k).__module__.rsplit(".", 1)[1] for k in K.all_kinds()}
    assert kinds == names - helpers
    assert len({k.kind for k in K.all_kinds()}) == len(K.all_kinds())


def test_every_kind_has_every_part():
    for kind in K.all_kinds():
        where = repr(kind)
        assert kind.kind and kind.key and kind.group in (HOSTS, GPUS, SERVICES), where
        assert callable(kind.parse) and kind.parse(1) == 1.0, where
        assert re.fullmatch(r"\d+[smhd]", kind.default_for), where
        assert overrides(kind, "shape") and overrides(kind, "test_inputs"), where
        assert kind.incidents and kind.default_incident in kind.incidents, where
        assert set(kind.incidents.values()) <= {"above", "below", None}, where
        assert kind.draw in ("line", "bars"), where


def test_schema_and_docs_list_exactly_the_registered_kinds():
    with open(os.path.join(PACKAGE, "spec", "schema.json"), encoding="utf-8") as fh:
        schema = json.load(fh)
    with open(os.path.join(ROOT, "docs", "spec.md"), encoding="utf-8") as fh:
        docs = fh.read()
    for group in (HOSTS, GPUS, SERVICES):
        group_schema = schema["properties"][group]["additionalProperties"]
        keys = set(group_schema["properties"]["kpis"]["properties"])
        assert keys == {k.key for k in K.kinds_of(group)}, group
        for key in keys:
            entry = group_schema["properties"]["kpis"]["properties"][key]
            assert entry.get("description") or entry.get("items", {}).get("description"), key
    for kind in K.all_kinds():
        assert re.search(rf"`{kind.key}(\[\])?`", docs), f"docs/spec.md lacks {kind!r}"


def test_incident_kinds_are_unique_across_kinds():
    names = [n for k in K.all_kinds() for n in k.incidents]
    assert len(names) == len(set(names)) == len(K.incident_kinds())


def test_every_kind_is_used_by_a_checked_spec(checked):
    """So promtool (tests/test_tools.py) and the tests below cover every kind."""
    used = {k.kind for m in checked.values() for g in m.groups for k in g.kpis}
    assert used == {k.kind for k in K.all_kinds()}


def test_the_demo_serves_what_each_kind_reads_and_what_its_tests_feed(checked):
    for spec, model in checked.items():
        demo_serves_what_each_kind_reads(model, Sim(model))


def demo_serves_what_each_kind_reads(model, sim):
    for g in model.groups:
        if not g.targets:
            continue  # scraped only in Kubernetes: the demo serves static targets
        served = {s.name for i in range(len(g.targets)) for s in sim.samples(g.name, i)}
        for kpi in g.kpis:
            kind = K.of(kpi)
            read = {m for m, _, _ in steady.metric_selectors(kpi.expr)}
            assert read <= served, f"{g.name}/{kpi.name} reads {read - served}, not served"
            if kind.kind == "custom":
                assert kind.demo_param(sim.groups[g.name], kpi) is None  # solved for
                continue
            assert isinstance(kind.demo_param(sim.groups[g.name], kpi), Param)
            levels = [(0.5, 2), (0.25, 2)]
            fed = {promql_parser.parse(s).name
                   for s, _ in kind.test_inputs(kpi, {"job": g.job}, levels)}
            assert fed <= served, f"{g.name}/{kpi.name}: tests feed {fed - served}"


# -- one home per metric name ---------------------------------------------------------------
def exporter_metrics(model, sim) -> set:
    """Metric names the exporters define (node_exporter, DCGM), not the spec."""
    names = {s.name for g in model.groups if g.kind in (HOSTS, GPUS)
             for s in sim.samples(g.name, 0)}
    return names | {"node_cpu_seconds_total", "DCGM_FI_DEV_FB_USED",
                    "node_filesystem_avail_bytes"}


def test_each_exporter_metric_name_lives_in_one_module(model, sim):
    texts = {}
    for path in modules():
        with open(path, encoding="utf-8") as fh:
            texts[rel(path)] = fh.read()
    names = exporter_metrics(model, sim)
    assert len(names) >= 9
    for name in sorted(names):
        homes = [p for p, text in texts.items()
                 if re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", text)]
        assert len(homes) == 1, f"{name} appears in {homes or 'no module'}"
        assert homes[0].startswith(os.path.join("stackgen", "kpis", "")), (name, homes)


# -- the shape of the code base ------------------------------------------------------------
def test_no_module_is_over_500_lines():
    long = {}
    for path in modules():
        with open(path, encoding="utf-8") as fh:
            n = sum(1 for _ in fh)
        if n > MAX_LINES:
            long[rel(path)] = n
    assert not long, f"modules over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("package", ["kpis", "runtime"])
def test_no_module_imports_another_modules_private_names(package):
    found = []
    for path in glob.glob(os.path.join(PACKAGE, package, "*.py")):
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        modules_ = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stackgen"):
                for alias in node.names:
                    if alias.name.startswith("_") and alias.name != "__future__":
                        found.append(f"{rel(path)}:{node.lineno}: {alias.name}")
                    modules_.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                modules_.update((a.asname or a.name).split(".")[0] for a in node.names
                                if a.name.startswith("stackgen"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.value.id in modules_ and node.attr.startswith("_") and \
                    not node.attr.startswith("__"):
                found.append(f"{rel(path)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not found, found
