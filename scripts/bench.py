#!/usr/bin/env python3
"""Benchmark `stackgen build`: wall time and peak memory (max RSS) per spec size.

Not a test. Runs each build as its own process (so start-up and imports count, as a user
sees them), best of --repeat runs, on the default spec and on generated specs of 10, 100
and 1,000 services. Usage: python scripts/bench.py [--repeat 3] [--sizes 10,100,1000]
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
      response_time: {{histogram: http_request_duration_seconds, quantile: 0.95, warning: 500ms, critical: 2s}}
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


def run_once(spec: str, out: str) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    code = ("import resource, sys; from stackgen.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    rc = e.code or 0\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "build", spec, "--out", out,
                           "--no-secrets"], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"build of {spec} failed:\n{proc.stderr}")
    rss_kib = int(proc.stderr.strip().splitlines()[-1])
    return elapsed, rss_kib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="10,100,1000")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("specs/stack.yaml (default)", os.path.join(ROOT, "specs", "stack.yaml"))]
        for n in (int(x) for x in args.sizes.split(",")):
            cases.append((f"{n} services", make_spec(tmp, n)))
        for label, spec in cases:
            runs = [run_once(spec, os.path.join(tmp, "out")) for _ in range(args.repeat)]
            files = sum(len(f) for _, _, f in os.walk(os.path.join(tmp, "out")))
            best = min(t for t, _ in runs)
            peak = max(r for _, r in runs)
            rows.append((label, best, peak / 1024, files))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, best of {args.repeat}")
    print(f"| spec | build time (s) | peak memory (MiB) | files written |")
    print(f"| --- | ---: | ---: | ---: |")
    for label, best, peak, files in rows:
        print(f"| {label} | {best:.2f} | {peak:.0f} | {files} |")


if __name__ == "__main__":
    main()
