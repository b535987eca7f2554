"""Property test (issue 10): mutated copies of the default spec never crash stackgen.

Each case mutates specs/stack.yaml structurally (delete, duplicate or retype a key, swap a
value for a hostile one: huge, negative, infinite or NaN numbers, template braces, line
breaks, control characters, odd unicode, deep nesting, a list for a mapping...) or inserts a
hostile line into its text, then runs `build` on it and asserts:

- the build returns (no exception: a traceback would fail the test) within HANG_S seconds;
- a failed build reports clean problems on lines that exist and wrote nothing (no output
  folder, nothing changed next to it);
- a sample of successful builds passes `promtool check config`, `promtool check rules` and
  `amtool check-config` (one call of each over the whole sample).

CI runs a fixed, derandomized set of cases. A longer run:

    STACKGEN_FUZZ_EXAMPLES=10000 STACKGEN_FUZZ_SAMPLE=200 .venv/bin/python -m pytest \
        tests/test_fuzz.py -s

prints its figures (cases, clean errors, builds, tool rejections, slowest case).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tempfile
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SPEC, need_tool
from stackgen import build, check

EXAMPLES = int(os.environ.get("STACKGEN_FUZZ_EXAMPLES", "200"))
SAMPLE = int(os.environ.get("STACKGEN_FUZZ_SAMPLE", "6"))
HANG_S = 10.0  # a build of the default spec takes about 0.2 s
SECRETS = ("grafana_admin_password", "smtp_password", "slack_webhook_url")

with open(SPEC, encoding="utf-8") as _fh:
    BASE_TEXT = _fh.read()
BASE = yaml.safe_load(BASE_TEXT)


def _deep(n, leaf="x"):
    v = leaf
    for _ in range(n):
        v = [v]
    return v


HOSTILE = [
    float("inf"), float("-inf"), float("nan"), -1, 0, 1, -0.5, 10**30, -(10**30), 2**64,
    1e308, 1.5, True, False, None, "", " ", "{{", "}}", "{{ $value }}", "a\nb", "x\r\ny",
    "\u2028", "\x85", "\x00", "\x1b[31m", "é", "😀", "'", '"', "\\", "$", "$$", "${HOME}", "#",
    "*", "&", "!", "%", "100%", "150%", "-5%", "1m1h", "99999999999999h", "1y2y", "0s",
    "3650d", "5m", "-5m", "1/s", "10GiB", ":", "::1:8080", "[::1]:0", "[::1]:9100",
    "host:70000", "host:0", "a" * 300, "..", "../x", "/etc/passwd", "secrets/$x",
    "secrets", "...", 'status="5"} or vector(1) #', "{}", 'job="x"', 'status=~"5.."',
    "severity=~\".*\"", "http://x/{{", "https://ok.example.com/x", [], {}, [1, 2], {"a": 1},
    _deep(30), {"a": {"b": {"c": {"d": {"e": "f"}}}}},
]

RAW_LINES = [
    "x: &a [1, 2]", "y: *a", "<<: *a", "z: !foo bar", "\tindent: tab", "bad: [1, 2",
    "q: \"unterminated", "---", "k: \x00", "u: \"\u2028\"", "{{ x }}: 1", "deep: " + "[" * 300,
    "dup: 1\ndup: 2", "? [a]\n: 1", "  - stray", "a: &b [*b]", "n: 1e309", "m: .nan",
]


def _paths(value, path=()):
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, path + (i,))
    return out


def _get(data, path):
    for p in path:
        data = data[p]
    return data


def _set(data, path, value):
    if not path:
        return value
    _get(data, path[:-1])[path[-1]] = value
    return data


@st.composite
def mutated_spec(draw) -> str:
    """The default spec's text after one to three mutations."""
    if draw(st.integers(0, 9)) == 0:  # a hostile line somewhere in the text
        lines = BASE_TEXT.split("\n")
        at = draw(st.integers(0, len(lines)))
        indent = " " * draw(st.sampled_from([0, 2, 4, 6]))
        lines.insert(at, indent + draw(st.sampled_from(RAW_LINES)))
        return "\n".join(lines)
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["delete", "duplicate", "retype", "hostile", "hostile",
                                   "hostile", "rename"]))
        value = _get(data, path)
        if op == "delete" and path:
            del _get(data, path[:-1])[path[-1]]
        elif op == "duplicate" and path:
            parent = _get(data, path[:-1])
            if isinstance(parent, list):
                parent.append(copy.deepcopy(value))
            else:
                sibling = draw(st.sampled_from(sorted(map(str, parent)) + ["x", "custom"]))
                parent[sibling] = copy.deepcopy(value)
        elif op == "rename" and path and isinstance(_get(data, path[:-1]), dict):
            parent = _get(data, path[:-1])
            new = draw(st.sampled_from(["x", "a" * 300, "job", "instance", "env", "...",
                                        "__name__", "for", "1", "é"]))
            parent[new] = parent.pop(path[-1])
        elif op == "retype":
            if isinstance(value, dict):
                new = list(value.values())
            elif isinstance(value, list):
                new = {f"k{i}": v for i, v in enumerate(value)}
            else:
                new = draw(st.sampled_from([[value], {"v": value}, str(value), 1]))
            data = _set(data, path, new)
        else:
            data = _set(data, path, copy.deepcopy(draw(st.sampled_from(HOSTILE))))
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=draw(st.booleans()), sort_keys=False,
                     width=draw(st.sampled_from([80, 10**6])))


_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class Stats:
    def __init__(self):
        self.cases = self.errors = self.builds = 0
        self.slowest = 0.0
        self.sample: list[str] = []


def _lines(text: str) -> int:
    return len(text.replace("\r\n", "\n").replace("\r", "\n").split("\n")) - \
        text.endswith(("\n", "\r"))


def _run_case(text: str, root: str, stats: Stats) -> None:
    """Build `text` as root/spec/stack.yaml into a fresh root/outN."""
    stats.cases += 1
    spec_dir = os.path.join(root, "spec")
    if not os.path.isdir(spec_dir):
        os.makedirs(os.path.join(spec_dir, "secrets"))
        for name in SECRETS:
            with open(os.path.join(spec_dir, "secrets", name), "w") as fh:
                fh.write("placeholder\n")
    spec = os.path.join(spec_dir, "stack.yaml")
    with open(spec, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    out = os.path.join(root, f"out{stats.cases}")
    start = time.monotonic()
    res = build.build(spec, out)  # an exception here is a traceback: the test fails
    took = time.monotonic() - start
    stats.slowest = max(stats.slowest, took)
    assert took < HANG_S, f"build took {took:.1f}s"
    assert sorted(os.listdir(root)) == sorted(["spec", *(os.path.basename(o) for o in
                                                       stats.sample), *([] if res.failed
                                                                       else [f"out{stats.cases}"])])
    if res.failed:
        stats.errors += 1
        assert not os.path.exists(out), "a failed build wrote output"
        n = _lines(text)
        for p in res.problems:
            assert "\n" not in p.message, p
            if p.file == spec and p.pos.line:
                assert 1 <= p.pos.line <= n, (p, n)
        return
    stats.builds += 1
    if len(stats.sample) < SAMPLE and stats.builds % 3 == 1:
        stats.sample.append(out)
    else:
        shutil.rmtree(out)


def _tools_accept(outs: list[str]) -> list[str]:
    """promtool and amtool over every sampled output at once; the failures."""
    promtool, amtool = check.find_promtool(), check.find_amtool()
    failures = []
    configs = [os.path.join(o, "prometheus", "prometheus.yml") for o in outs]
    rules = sorted(os.path.join(o, "prometheus", "rules", f) for o in outs
                   for f in os.listdir(os.path.join(o, "prometheus", "rules")))
    for cmd in ([promtool, "check", "config", *configs],
                [promtool, "check", "rules", *rules]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            failures.append(f"{' '.join(cmd[:3])}:\n{proc.stdout}{proc.stderr}")
    ams = [os.path.join(o, "alertmanager", "alertmanager.yml") for o in outs]
    with tempfile.TemporaryDirectory() as tmp:
        usable = []
        for i, am in enumerate(ams):  # amtool 0.25 predates url_file: check's stand-in copy
            with check._checkable_alertmanager_config(amtool, am) as path:
                dest = os.path.join(tmp, f"am{i}")
                shutil.copytree(os.path.dirname(path), dest)
                usable.append(os.path.join(dest, os.path.basename(path)))
        proc = subprocess.run([amtool, "check-config", *usable], capture_output=True, text=True)
        if proc.returncode:
            failures.append(f"amtool check-config:\n{proc.stdout}{proc.stderr}")
    return failures


def test_mutated_specs_fail_cleanly_or_build_what_the_tools_accept(tmp_path):
    need_tool(check.find_promtool, "promtool", check.INSTALL["promtool"])
    need_tool(check.find_amtool, "amtool", check.INSTALL["amtool"])
    stats = Stats()
    root = str(tmp_path)

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(mutated_spec())
    def run(text):
        _run_case(text, root, stats)

    start = time.monotonic()
    run()
    fuzz_s = time.monotonic() - start
    assert stats.builds and stats.errors, vars(stats)  # both kinds of case were exercised
    start = time.monotonic()
    failures = _tools_accept(stats.sample) if stats.sample else []  # SAMPLE=0: no tools
    tools_s = time.monotonic() - start
    print(f"\nfuzz: {stats.cases} cases, {stats.errors} clean spec errors, {stats.builds} "
          f"builds, 0 tracebacks, 0 partial writes, slowest build {stats.slowest:.2f}s, "
          f"{fuzz_s:.1f}s; tools on {len(stats.sample)} builds: {len(failures)} rejections, "
          f"{tools_s:.1f}s")
    assert not failures, "\n".join(failures)
