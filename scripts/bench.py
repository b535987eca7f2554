#!/usr/bin/env python3
"""Benchmark `stackgen build`, `lint` and `check`: time, peak memory, output size.

Not a test. Runs each command as its own process (so start-up and imports count, as a user
sees them), best of --repeat runs, on the default spec and on generated specs of 10, 100
and 1,000 services (4 KPIs and 2 SLOs each). For each size: build time, peak memory (max
RSS of the build), files and bytes written, the I/O floor (the same files written from
memory, in this process, in the same run) and the build's ratio to it, lint time (of the
built output) and its ratio to a bare interpreter's start-up, the growth from 100 to
1,000 services, and `check` time at the --check-sizes (10, 50 and 200 services).
Usage: python scripts/bench.py [--repeat 3] [--sizes 10,100,1000] [--check-sizes 10,50,200]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVICE = """
  svc-{i}:
    targets: [svc-{i}-a:8080, svc-{i}-b:8080]
    labels: {{team: team-{team}, component: api}}
    runbook_url: https://runbooks.example.com/svc-{i}
    kpis:
      response_time: {{histogram: http_request_duration_seconds, quantile: 0.95, warning: 500ms, critical: 2s, buckets: [0.1, 0.5, 1, 2, 5]}}
      throughput: {{counter: http_requests_total, warning_below: 1/s}}
      error_rate: {{counter: http_requests_total, errors: 'status=~"5.."', warning: 1%, critical: 5%}}
      custom:
        - {{name: queue_depth, expr: 'sum(queue_depth{{job="svc-{i}"}})', warning: 100}}
    slos:
      availability: {{objective: 99.9%}}
      latency: {{objective: 99%, threshold: 500ms}}
"""

HEAD = """version: 1
stack: {name: bench}
hosts:
  nodes:
    targets: [node-exporter:9100]
    kpis: {cpu: {warning: 80%}, memory: {warning: 85%}, disk: {warning_below: 10GiB}}
alerting:
  default_receiver: ops
  receivers:
    ops: {webhook: {url_file: secrets/hook}}
  routes:
    - {matchers: ['severity="critical"'], receiver: ops}
services:
"""


def make_spec(folder: str, n: int) -> str:
    os.makedirs(os.path.join(folder, "secrets"), exist_ok=True)
    with open(os.path.join(folder, "secrets", "hook"), "w") as fh:
        fh.write("placeholder\n")
    path = os.path.join(folder, f"services-{n}.yaml")
    with open(path, "w") as fh:
        fh.write(HEAD + "".join(SERVICE.format(i=i, team=i % 7) for i in range(n)))
    return path


CPU = {}  # the last command's CPU seconds (user + system, with its children)


def _stackgen(args: list, env: dict | None = None) -> tuple[float, int, str]:
    """(wall seconds, max RSS in KiB, output) of one stackgen command in its own process; the
    max RSS is that of its largest process (a large build forks a worker: the larger of the
    two peaks; promtool's processes count for `check`)."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = ("import resource, sys; from stackgen.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    rc = e.code or 0\n"
            "print(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
            "          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss), file=sys.stderr)\n"
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["last"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"stackgen {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    rss_kib = int(proc.stderr.strip().splitlines()[-1])
    return elapsed, rss_kib, proc.stdout


def run_once(spec: str, out: str) -> tuple[float, int, float]:
    shutil.rmtree(out, ignore_errors=True)
    elapsed, rss, _ = _stackgen(["build", spec, "--out", out, "--no-secrets"])
    return elapsed, rss, CPU["last"]


def io_floor(out: str, tmp: str) -> float:
    """Seconds to write the files of `out` again from memory (the same way stackgen writes:
    each to a temp file, then renamed), into an empty folder."""
    files = []
    for folder, _, names in os.walk(out):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as fh:
                files.append((os.path.relpath(path, out), fh.read()))
    dest = os.path.join(tmp, "floor")
    shutil.rmtree(dest, ignore_errors=True)
    start = time.perf_counter()
    for rel, data in files:
        path = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmpname = tempfile.mkstemp(dir=os.path.dirname(path))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmpname, path)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest, ignore_errors=True)
    return elapsed


def size_of(out: str) -> tuple[int, int]:
    n = total = 0
    for folder, _, names in os.walk(out):
        for name in names:
            n += 1
            total += os.path.getsize(os.path.join(folder, name))
    return n, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--check-sizes", default="10,50,200")
    args = ap.parse_args()
    rows, checks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("specs/stack.yaml (default)", os.path.join(ROOT, "specs", "stack.yaml"))]
        for n in (int(x) for x in args.sizes.split(",") if x):
            cases.append((f"{n} services", make_spec(tmp, n)))
        out = os.path.join(tmp, "out")
        for label, spec in cases:
            runs = [run_once(spec, out) for _ in range(args.repeat)]
            files, size = size_of(out)
            floor = min(io_floor(out, tmp) for _ in range(args.repeat))
            cache = {"XDG_CACHE_HOME": os.path.join(tmp, "cache")}
            shutil.rmtree(cache["XDG_CACHE_HOME"], ignore_errors=True)
            cold = min(_stackgen(["lint", spec, "--out", out], {"STACKGEN_NO_CACHE": "1"})[0]
                       for _ in range(args.repeat))
            _stackgen(["lint", spec, "--out", out], cache)  # fills the cache
            warm = min(_stackgen(["lint", spec, "--out", out], cache)[0]
                       for _ in range(args.repeat))
            best = min(t for t, _, _ in runs)
            cpu = min(c for _, _, c in runs)
            peak = max(r for _, r, _ in runs)
            rows.append((label, best, cpu, peak / 1024, files, size / 2**20, floor, cold, warm))
        for n in (int(x) for x in args.check_sizes.split(",") if x):
            spec = make_spec(tmp, n)
            run_once(spec, out)
            elapsed, _, _ = _stackgen(["check", "--out", out])
            checks.append((f"{n} services", elapsed, CPU["last"]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, best of {args.repeat}, "
          f"load average at the end {load:.1f}")
    print("| spec | build (s) | build CPU (s) | peak memory (MiB) | files | output (MiB) "
          "| I/O floor (s) | build / floor | lint (s) | lint, cached (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, best, cpu, peak, files, mib, floor, cold, warm in rows:
        print(f"| {label} | {best:.2f} | {cpu:.2f} | {peak:.0f} | {files} | {mib:.1f} "
              f"| {floor:.2f} | {best / floor:.1f}x | {cold:.2f} | {warm:.2f} |")
    if checks:
        print()
        print("| spec | check (s) | check CPU, with promtool (s) |")
        print("| --- | ---: | ---: |")
        for label, elapsed, cpu in checks:
            print(f"| {label} | {elapsed:.1f} | {cpu:.1f} |")
    bare = min(_bare() for _ in range(args.repeat))
    print(f"\nbare interpreter start-up: {bare:.3f} s")
    for label, *_, cold, warm in rows[:1]:
        print(f"lint of {label}: {cold / bare:.1f}x a bare interpreter, cached "
              f"{warm / bare:.1f}x")
    by = {label: (best, peak) for label, best, _, peak, *_ in rows}
    if "100 services" in by and "1000 services" in by:
        (t1, m1), (t2, m2) = by["100 services"], by["1000 services"]
        print(f"growth 100 -> 1,000 services: build time {t2 / t1:.1f}x, peak memory "
              f"{m2 / m1:.1f}x")


def _bare() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
