"""What `stackgen smoke` reports: one Check per step (with its time and failures) and the
Result of a run, with its summary."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Check:
    name: str
    ok: bool = True
    seconds: float = 0.0
    detail: str = ""
    failures: list = field(default_factory=list)

    def fail(self, message: str):
        self.ok = False
        self.failures.append(message)


@dataclass
class Result:
    spec: str
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    pids: dict = field(default_factory=dict)  # every process started: name -> pid
    seconds: float = 0.0
    sabotage: str | None = None  # what was broken on purpose
    sabotaged: str | None = None  # the KPI id the sabotage is about, if any
    interrupted: bool = False
    error: str | None = None  # setup failure (invalid spec, missing binary): exit 2

    @property
    def ok(self) -> bool:
        return not self.error and not self.interrupted and bool(self.checks) and \
            all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[str]:
        out = [f"{c.name}: {f}" for c in self.checks for f in c.failures]
        if self.error:
            out.insert(0, self.error)
        return out

    def summary(self) -> str:
        lines = []
        if self.error:
            lines.append(f"smoke could not run: {self.error}")
        passed = sum(c.ok for c in self.checks)
        if self.ok:
            lines.append(f"smoke PASSED: {passed} checks in {self.seconds:.1f}s")
        elif not self.error:
            failed = [c for c in self.checks if not c.ok]
            lines.append(f"smoke FAILED ({'interrupted, ' if self.interrupted else ''}"
                         f"{len(failed)} of {len(self.checks)} checks failed, "
                         f"{self.seconds:.1f}s):")
            lines.extend(f"  - {f}" for f in self.failures)
        return "\n".join(lines)


def fmt_check(c: Check) -> str:
    head = f"{'PASS' if c.ok else 'FAIL'}  {c.name} ({c.seconds:.1f}s)"
    if c.detail:
        head += f": {c.detail}"
    return "\n".join([head] + [f"      {f}" for f in c.failures])
