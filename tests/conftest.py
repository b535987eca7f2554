import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "specs", "stack.yaml")
REFERENCE = os.path.normpath(os.path.join(ROOT, "..", "shared", "spec", "reference.yaml"))


def same_bytes(a: str, b: str) -> bool:
    with open(a, "rb") as x, open(b, "rb") as y:
        return x.read() == y.read()


# specs/stack.yaml is a byte-for-byte copy of the contract's reference spec (and so is
# tests/specs/good/reference.yaml): tests parametrised over both run once while that holds.
REFERENCE_IS_SPEC = same_bytes(SPEC, REFERENCE)
SPEC_NAMES = ["stack"] + ([] if REFERENCE_IS_SPEC else ["reference"])
SPEC_FILES = [SPEC] + ([] if REFERENCE_IS_SPEC else [REFERENCE])


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/ from the current generators")


@pytest.fixture(autouse=True, scope="session")
def _own_cache_folder(tmp_path_factory):
    """`stackgen lint` keeps file hashes under $XDG_CACHE_HOME: tests use their own."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


def stackgen_cmd():
    return [sys.executable, "-m", "stackgen"]


def copy_spec(source: str, d) -> "os.PathLike":
    """`source` copied to d/stack.yaml, with the secret files of the default spec."""
    (d / "secrets").mkdir(parents=True)
    shutil.copy(source, d / "stack.yaml")
    for name in ("grafana_admin_password", "smtp_password", "slack_webhook_url"):
        (d / "secrets" / name).write_text("placeholder\n")
    return d / "stack.yaml"


@pytest.fixture
def spec_copy(tmp_path):
    """specs/stack.yaml copied into a temp folder with its secret files."""
    return copy_spec(SPEC, tmp_path / "spec")


@pytest.fixture(scope="module")
def reference_built(tmp_path_factory):
    """The reference spec built once per test module (promtool and amtool required)."""
    from stackgen import build, check

    need_tool(check.find_promtool, "promtool", check.INSTALL["promtool"])
    need_tool(check.find_amtool, "amtool", check.INSTALL["amtool"])
    spec = copy_spec(REFERENCE, tmp_path_factory.mktemp("reference") / "spec")
    out = spec.parent.parent / "out"
    assert not build.build(str(spec), str(out)).failed
    return out


@pytest.fixture
def built(reference_built, tmp_path):
    """The reference spec's build, a fresh copy for each test to mutate."""
    out = tmp_path / "out"
    shutil.copytree(reference_built, out, symlinks=True)
    return out


def read_until(proc, prefix: str, seconds: float = 60) -> list:
    """Lines of `proc`'s stdout up to and including the first that starts with `prefix`
    (or every line until it ends or `seconds` pass)."""
    import time

    lines, deadline = [], time.time() + seconds
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            break
    return lines


def need_tool(finder, name, install):
    """Real-tool tests never skip: a missing tool fails with how to install it."""
    path = finder()
    if not path:
        pytest.fail(f"{name} is required for this test; install it: {install}")
    return path


def run_in_process(*args):
    """The CLI in this interpreter (click's runner): exit code and stderr as a user sees
    them, without an interpreter start-up per call."""
    from click.testing import CliRunner

    from stackgen.cli import main

    res = CliRunner().invoke(main, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback a user would see
    return res


# Tests that take long on the clock, longest first: most wait on live servers (smoke, up).
# Under pytest-xdist they start first, one at the head of each worker's share in turn, so
# that they run beside the CPU-bound rest instead of forming the run's tail (they were
# collected last: test_runtime.py, and finished 30 to 50 s after everything else).
LONG_ON_THE_CLOCK = (
    "tests/test_runtime.py::test_smoke_fails_naming_what_broke",
    "tests/test_runtime.py::test_smoke_passes_for_the_project_spec",
    "tests/test_runtime.py::test_up_runs_on_loopback_and_stops_on_sigint",
    "tests/test_build.py::test_installed_package_ships_templates_and_schema",
    "tests/test_tools.py::test_reference_spec_builds_and_checks",
    "tests/test_runtime.py::test_smoke_passes_for_the_reference_spec_from_the_cli",
    "tests/test_real_series.py::",
    "tests/test_fuzz.py::",
    "tests/test_environments.py::test_webshop_both_environments",
    "tests/test_runtime.py::test_no_listener_is_left",
)


def pytest_collection_modifyitems(config, items):
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    if workers < 2:
        return

    def rank(item):
        return next((i for i, p in enumerate(LONG_ON_THE_CLOCK) if item.nodeid.startswith(p)),
                    None)

    long = sorted((it for it in items if rank(it) is not None), key=rank)
    rest = [it for it in items if rank(it) is None]
    # the shares xdist's worksteal scheduler deals out first: contiguous, in this order
    sizes, left = [], len(items)
    for i in range(workers):
        sizes.append(left // (workers - i))
        left -= sizes[-1]
    heads = [long[j::workers] for j in range(workers)]
    out = []
    for head, size in zip(heads, sizes):
        take = max(0, size - len(head))
        out += head + rest[:take]
        rest = rest[take:]
    items[:] = out + rest
