"""Native processes that always stop: binaries, loopback ports, process groups, signals.

Every process runs in its own session (so a terminal's Ctrl-C reaches only us, and we stop
the children in order), under `setpriv --pdeathsig TERM` where available (so even a
SIGKILL of this process takes them along), and is registered with a Supervisor that stops
its whole process group with SIGTERM, then SIGKILL, from `finally`, from signal handlers and
from `atexit`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import weakref
from contextlib import contextmanager
from dataclasses import dataclass

# component -> (names on PATH, environment override, Debian/Ubuntu package)
BINARIES = {
    "prometheus": (("prometheus",), "STACKGEN_PROMETHEUS", "prometheus"),
    "alertmanager": (("prometheus-alertmanager", "alertmanager"), "STACKGEN_ALERTMANAGER",
                     "prometheus-alertmanager"),
    "node_exporter": (("prometheus-node-exporter", "node_exporter"), "STACKGEN_NODE_EXPORTER",
                      "prometheus-node-exporter"),
}
LOOPBACK = "127.0.0.1"


class MissingBinary(RuntimeError):
    pass


class StartError(RuntimeError):
    pass


def install_hint(component: str) -> str:
    return f"apt-get install --no-install-recommends {BINARIES[component][2]}"


def find_binary(component: str) -> str:
    names, env, package = BINARIES[component]
    override = os.environ.get(env)
    if override:
        if os.access(override, os.X_OK):
            return override
        raise MissingBinary(f"{env}={override} is not an executable file")
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise MissingBinary(f"{component}: none of {', '.join(names)} is on PATH; install it with: "
                        f"sudo {install_hint(component)}")


def binary_version(path: str) -> tuple:
    from stackgen.check import tool_version

    return tool_version(path)


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of a GET on loopback, never through a proxy; (0, b'') if refused."""
    try:
        with _NO_PROXY.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read() if exc.fp else b""
    except (OSError, ValueError):
        return 0, b""


@dataclass
class Process:
    name: str
    cmd: list
    popen: subprocess.Popen
    log_path: str
    started: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 16384))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


_LIVE: "weakref.WeakSet[Supervisor]" = weakref.WeakSet()


class Supervisor:
    """Starts processes in their own process groups and stops every one of them."""

    def __init__(self):
        self.procs: list[Process] = []
        self._lock = threading.Lock()
        _LIVE.add(self)

    def start(self, name: str, cmd: list, log_path: str, cwd: str | None = None) -> Process:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        full = list(cmd)
        setpriv = shutil.which("setpriv")
        if setpriv and threading.current_thread() is threading.main_thread():
            # The parent-death signal fires when the forking *thread* ends: main thread only.
            full = [setpriv, "--pdeathsig", "TERM", "--", *full]
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=cwd, close_fds=True,
                                     start_new_session=True)
        proc = Process(name, list(cmd), popen, log_path, time.time())
        with self._lock:
            self.procs.append(proc)
        return proc

    @property
    def pids(self) -> dict:
        return {p.name: p.pid for p in self.procs}

    def died(self) -> list[Process]:
        return [p for p in self.procs if not p.alive()]

    def stop_one(self, proc: Process, timeout: float = 5.0) -> None:
        """SIGTERM to its process group, SIGKILL after `timeout`. Signals go out only while
        the leader is not yet reaped (alive or a zombie), so its group id cannot have been
        reused by a process we did not start."""
        if proc.popen.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.popen.wait(5)
        with self._lock:
            if proc in self.procs:
                self.procs.remove(proc)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every process, the last started first, with Ctrl-C held off meanwhile."""
        with _shielded():
            for proc in reversed(list(self.procs)):
                self.stop_one(proc, timeout)


@contextmanager
def _shielded():
    """Finish cleaning up even if Ctrl-C or SIGTERM arrives again meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            saved[sig] = signal.signal(sig, lambda *_: None)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def stop_all() -> None:
    for sup in list(_LIVE):
        sup.stop()


atexit.register(stop_all)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C: unwind, stop everything, exit."""


@contextmanager
def stop_on_signals():
    """In the main thread: SIGTERM and SIGHUP raise Terminated (SIGINT already raises
    KeyboardInterrupt), so `finally` blocks run and every process is stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signal.Signals(signum).name)

    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        saved[sig] = signal.signal(sig, handler)
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        saved[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, h in saved.items():
            signal.signal(sig, h)


def wait_ready(proc: Process, url: str, timeout: float = 30.0) -> float:
    """Seconds until GET url answers 200; StartError with the log if the process dies."""
    t0 = time.time()
    while True:
        if not proc.alive():
            raise StartError(f"{proc.name} exited with code {proc.popen.returncode} before it "
                             f"was ready; last lines of {proc.log_path}:\n{proc.log_tail()}")
        status, _ = http_get(url, timeout=1.0)
        if status == 200:
            return time.time() - t0
        if time.time() - t0 > timeout:
            raise StartError(f"{proc.name} was not ready at {url} after {timeout:.0f}s; last "
                             f"lines of {proc.log_path}:\n{proc.log_tail()}")
        time.sleep(0.1)


def pid_running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
