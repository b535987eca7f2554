import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "specs", "stack.yaml")
REFERENCE = os.path.normpath(os.path.join(ROOT, "..", "shared", "spec", "reference.yaml"))


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/ from the current generators")


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


def stackgen_cmd():
    return [sys.executable, "-m", "stackgen"]


@pytest.fixture
def spec_copy(tmp_path):
    """specs/stack.yaml copied into a temp folder with its secret files."""
    d = tmp_path / "spec"
    (d / "secrets").mkdir(parents=True)
    shutil.copy(SPEC, d / "stack.yaml")
    for name in ("grafana_admin_password", "smtp_password", "slack_webhook_url"):
        (d / "secrets" / name).write_text("placeholder\n")
    return d / "stack.yaml"


def need_tool(finder, name, install):
    """Real-tool tests never skip: a missing tool fails with how to install it."""
    path = finder()
    if not path:
        pytest.fail(f"{name} is required for this test; install it: {install}")
    return path
