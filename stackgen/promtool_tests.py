"""`promtool test rules` on many files at once: few processes, every core busy.

promtool takes several test files per run and reports each under `Unit Testing:  <file>`.
The files are dealt into batches of about equal size (largest first, each to the lightest
batch), as many promtool runs as there are cores go at once, and the output is split back
into one result per file. Small batches (four per core on a large stack) keep results
coming while the rest still runs.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed

HEADER = "Unit Testing:  "


def jobs() -> int:
    """How many promtool processes run at once: $STACKGEN_JOBS, else one per core."""
    env = os.environ.get("STACKGEN_JOBS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def batches(files: list[str], n: int) -> list[list[str]]:
    """`files` dealt into at most n batches of about equal size on disk (a proxy for the
    time promtool takes), each batch in the given order."""
    sizes = {f: (os.path.getsize(f) if os.path.exists(f) else 0) for f in files}
    out: list[list[str]] = [[] for _ in range(max(1, min(n, len(files))))]
    load = [0] * len(out)
    for f in sorted(files, key=lambda f: -sizes[f]):
        i = load.index(min(load))
        out[i].append(f)
        load[i] += sizes[f]
    order = {f: i for i, f in enumerate(files)}
    return [sorted(b, key=order.get) for b in out if b]


def split_output(output: str, files: list[str]) -> dict:
    """{file: its part of promtool's output} ("" for a file promtool did not report on)."""
    parts: dict = {f: "" for f in files}
    current, lines = None, []
    for line in output.splitlines():
        if line.startswith(HEADER):
            if current is not None:
                parts[current] = "\n".join(lines).strip()
            name = line[len(HEADER):].strip()
            current = name if name in parts else next(
                (f for f in files if os.path.abspath(f) == os.path.abspath(name)), name)
            lines = [line]
        elif current is not None:
            lines.append(line)
    if current is not None:
        parts[current] = "\n".join(lines).strip()
    return parts


def _run_batch(promtool: str, files: list[str], cwd: str | None) -> dict:
    """{file: (ok, output)} for one promtool run over `files`."""
    cmd = [promtool, "test", "rules", *files]
    try:
        # one pipe for both streams: promtool writes each file's header to stdout and its
        # failures to stderr, unbuffered, so only a shared pipe keeps them in order
        proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=120 + 60 * len(files))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {f: (False, f"could not run: {exc}") for f in files}
    parts = split_output(proc.stdout, files)
    out = {}
    for f in files:
        text = parts.get(f, "")
        lines = [ln.strip() for ln in text.splitlines()]
        ok = proc.returncode == 0 or ("SUCCESS" in lines and not any(
            ln.startswith("FAILED") for ln in lines))
        if not ok and not text:  # promtool stopped before this file (or said why not)
            text = proc.stdout.strip()
        out[f] = (ok, text)
    return out


def run(promtool: str, files: list[str], cwd: str | None = None, n_jobs: int | None = None,
        on_batch=None) -> dict:
    """{file: (ok, output)} for every file, from at most `n_jobs` concurrent promtool runs.
    `on_batch(results)` is called as each batch finishes (for progress lines)."""
    if not files:
        return {}
    n = n_jobs or jobs()
    # several batches per process slot, so that results (and progress lines) come steadily
    groups = batches(files, n * 4 if len(files) > n * 4 else n)
    results: dict = {}
    with ThreadPoolExecutor(max_workers=min(n, len(groups))) as pool:
        futures = [pool.submit(_run_batch, promtool, g, cwd) for g in groups]
        for fut in as_completed(futures):
            part = fut.result()
            results.update(part)
            if on_batch:
                on_batch(part)
    return {f: results[f] for f in files}
