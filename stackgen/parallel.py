"""`build` of a large stack on two cores: a forked worker generates and writes a share.

Generating is pure Python, so one process uses one core. For a stack of many groups, `build`
forks one worker after the spec is loaded (it inherits the model: nothing is pickled) that
generates the dashboards, the Helm chart's copies of them and the routing tests (about half
of the work), while the main process generates the rest (rule files, rule tests,
configuration, the chart itself). The worker sends back only the paths and hashes of its files and keeps
their bytes, so neither process holds every file at once.

The order of `build` is kept: every path of both shares (of every environment, each with its
own worker) is checked (`outplan.check_output`) before anything is written. Only then does the worker hear "write" (else "stop"); both
processes write their files beside each other, and the main process removes what the last
build made and no longer does, and writes the manifest last, once the worker has written
every file it vouches for. A worker that fails is an error of `build` (a write error as
`OSError`, a generator's bug as `RuntimeError` with the worker's traceback). The bytes are
those of the serial build (tests/test_parallel_build.py compares them file by file).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass

from stackgen.generators import GENERATORS

# The worker makes the dashboards, the Helm chart's copies of them and the routing tests
# (about half of the work); the main process makes the rest, the chart itself included.
WORKER_SHARE = ("grafana_dashboards", "routing_tests")
# Below this many groups the fork costs more than it saves (a build of 40 groups: ~0.5 s).
MIN_GROUPS = 40


@dataclass(frozen=True)
class Planned:
    """A file the worker generated: its path, mode and hash, without its bytes."""

    path: str
    mode: int
    sha: str


def usable(model) -> bool:
    """Whether `build` forks a worker for `model`: on Linux (fork is not safe everywhere),
    with more than one job (`STACKGEN_JOBS`, else the cores: as `check`), for a stack of at
    least MIN_GROUPS groups (`STACKGEN_PARALLEL_MIN`)."""
    from stackgen.promtool_tests import jobs

    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    least = os.environ.get("STACKGEN_PARALLEL_MIN", "")
    return jobs() > 1 and len(model.groups) >= (int(least) if least.isdigit() else MIN_GROUPS)


class Worker:
    """The forked worker of one model's build (see the module's text)."""

    def __init__(self, model, folder: str):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_work, args=(child, model, folder), daemon=True)
        self._proc.start()
        child.close()

    def planned(self) -> list[Planned]:
        """The worker's files (path, mode, hash), once it has generated them."""
        kind, *rest = self._recv()
        if kind != "planned":
            self.stop()
            _raise(kind, rest)
        return [Planned(*p) for p in rest[0]]

    def write(self) -> None:
        """Tell the worker to write its files (it compares each with the file on disk)."""
        self._conn.send("write")

    def written(self) -> tuple[list, list]:
        """(missing, stale): the files the worker wrote, once it is done."""
        kind, *rest = self._recv()
        self._join()
        if kind != "written":
            _raise(kind, rest)
        return rest[0], rest[1]

    def stop(self) -> None:
        """Nothing is written: the worker ends without touching the disk (it writes only
        after `write()`, so one still generating is simply ended)."""
        try:
            self._conn.send("stop")
        except (OSError, ValueError):
            pass
        self._join(timeout=1)

    def _recv(self):
        try:
            return self._conn.recv()
        except EOFError:
            self._join()
            return ("error", f"the build worker ended (exit code {self._proc.exitcode}) "
                             "without a word")

    def _join(self, timeout: float = 60) -> None:
        self._proc.join(timeout=timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()


def _raise(kind: str, rest: list):
    if kind == "oserror":
        errno, strerror, filename = rest
        raise OSError(errno, strerror, filename)
    raise RuntimeError(f"the build worker failed:\n{rest[0]}")


def _work(conn, model, folder: str) -> None:
    """The worker: generate its share, send the plan, then write or stop as it is told."""
    import signal
    import traceback

    from stackgen import writer
    from stackgen.generators.manifest import sha256

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    try:
        from stackgen.generators import grafana_dashboards, helm_chart

        boards = grafana_dashboards.generate(model)
        artifacts = boards + helm_chart.dashboard_copies(model, boards)
        for name in WORKER_SHARE:
            if name != "grafana_dashboards":
                artifacts.extend(importlib.import_module(f"stackgen.generators.{name}")
                                 .generate(model))
        hashes: dict = {}  # a copy has the bytes of its dashboard: hashed once
        conn.send(("planned", [(a.path, a.mode, hashes.get(id(a.content)) or
                                hashes.setdefault(id(a.content), sha256(a.data)))
                               for a in artifacts]))
        if conn.recv() != "write":
            return
        missing, stale = writer.write_files(folder, artifacts)
        conn.send(("written", missing, stale))
    except OSError as exc:
        conn.send(("oserror", exc.errno, exc.strerror or str(exc), exc.filename))
    except EOFError:  # the main process went away: write nothing more
        return
    except BaseException:  # a bug: the main process shows it
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def build_artifacts(model, folder: str):
    """(artifacts, worker): the main process's share of `model`'s artifacts, the worker's
    files as `Planned`, sorted by path, with the manifest last (as
    `generators.build_artifacts`); the worker waits for `write()` or `stop()`."""
    from stackgen.generators import finish, helm_chart, prometheus_rules

    worker = Worker(model, folder)
    try:
        out: list = []
        for name in GENERATORS:
            if name in WORKER_SHARE:
                continue
            if name == "rule_tests":
                prometheus_rules.release(model)
            if name == "helm_chart":  # its copies of the dashboards: the worker's
                out.extend(helm_chart.chart(model))
                continue
            out.extend(importlib.import_module(f"stackgen.generators.{name}").generate(model))
        out.extend(worker.planned())
        return finish(model, out), worker
    except BaseException:
        worker.stop()
        raise
