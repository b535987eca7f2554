"""`stackgen smoke`: build a spec for test, run it natively, and prove the stack works.

1. The spec gets a test override (stackgen.runtime.override): demo exporters for every
   target, local sinks for every receiver, 1s intervals, 2s `for`. It is built with the
   normal generators into a temp folder (plus: TargetDown's `for` (2m unless `target_down` says otherwise) is cut to 2s
   there), then Prometheus and Alertmanager run as `stackgen up` runs them.
2. Checks, each with its time:
   - every scrape target is up; every rule group evaluates without error;
   - every query of every generated Grafana panel returns data from the live Prometheus;
   - the healthy baseline fires no KPI alert;
   - one incident per KPI that has thresholds, and a target down: the alert goes pending,
     fires, reaches exactly the receivers the spec's routes promise (through the real Slack,
     email, webhook and PagerDuty integrations, with its runbook and dashboard links), a
     warning is inhibited while the critical alert of the same KPI fires, and it resolves
     (send_resolved notification) when the incident ends. Incidents that disturb no other
     incident's KPIs run concurrently.
3. A report; any failure names what broke.

A hidden `sabotage` (rule | route | panel) breaks the built files on purpose, for tests.

This module runs the whole; its parts: smoke_checks (the steady checks), smoke_plan (the
incidents and their waves), smoke_incident (one incident, live), live (the Prometheus and
Alertmanager APIs), sabotage (edits of the built files) and smoke_report (checks, result).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from stackgen.runtime import override as O
from stackgen.runtime import procs
from stackgen.runtime.demo_exporter import DemoExporter, reserve_sockets
from stackgen.runtime.live import Live, LiveError, find_prom, wait_for
from stackgen.runtime.native import NativeStack, UpError
from stackgen.runtime.procs import LOOPBACK, MissingBinary, StartError
from stackgen.runtime.sabotage import sabotage, shorten_target_down
from stackgen.runtime.sinks import SmtpSink, WebhookSink
from stackgen.runtime.smoke_checks import check_baseline, check_panels, check_rules, \
    check_targets
from stackgen.runtime.smoke_incident import FOR_S, RATE_WINDOW_S, Ctx, died, run_incident_safely
from stackgen.runtime.smoke_plan import plan
from stackgen.runtime.smoke_report import Check, Result, fmt_check
from stackgen.runtime.stack_demo import CadvisorDemo


def run(spec: str, *, sabotage_kind: str | None = None, only=None, work_dir: str | None = None,
        keep: bool = False, echo=None, patience: float = 1.0) -> Result:
    """Run the smoke test of `spec`; `only`: incident ids (group/kpi, group/down) to run.
    `patience` scales how long the panel check and the incidents wait for what they expect
    (tests that sabotage a run, and so wait for what never comes, pass less than 1)."""
    from stackgen import writer
    from stackgen.build import compile_spec
    from stackgen.problems import SpecError
    from stackgen.spec import load
    from stackgen.spec.source import load_file

    say = echo or (lambda text: None)
    res = Result(spec=spec)
    t_start = time.time()
    tmp = work_dir or tempfile.mkdtemp(prefix="stackgen-smoke-")
    os.makedirs(tmp, exist_ok=True)
    sockets: dict = {}
    exporter = stack = web = smtp = cadvisor = None

    def done(check: Check):
        res.checks.append(check)
        say(fmt_check(check))

    with procs.stop_on_signals():
        try:
            # -- build the spec under test ------------------------------------------------
            t0 = time.time()
            try:
                load(spec)
            except SpecError as exc:
                res.error = f"{spec} is invalid:\n" + "\n".join(f"  {p}" for p in exc.problems)
                return res
            for component in ("prometheus", "alertmanager"):
                procs.find_binary(component)
            src, problems = load_file(spec)
            web = WebhookSink().start()
            smtp = SmtpSink().start()
            sockets = reserve_sockets([_GroupStub(n, c) for n, c in
                                       O.target_counts(src.data).items()])
            targets = {k: f"{LOOPBACK}:{s.getsockname()[1]}" for k, s in sockets.items()}
            ov = O.apply(src.data, os.path.join(tmp, "spec"), targets, web.url, smtp.address)
            smtp.username, smtp.password = ov.smtp_user, ov.smtp_password
            smtp.rcpt_receivers = {a.lower(): v for a, v in ov.emails.items()}
            say(f"notifications -> local sinks only: http://{web.address} (Slack, webhook, "
                f"PagerDuty), smtp {smtp.address} (email); the spec's receivers are not "
                "contacted")
            out_dir = os.path.join(tmp, "out")
            try:
                model, artifacts, warnings = compile_spec(ov.spec, out_dir)
            except SpecError as exc:
                res.error = ("the test override made the spec invalid (a stackgen bug):\n"
                             + "\n".join(f"  {p}" for p in exc.problems))
                return res
            writer.write(out_dir, artifacts)
            shorten_target_down(out_dir)
            res.notes.extend(ov.notes)
            if sabotage_kind:
                try:
                    res.sabotage, res.sabotaged = sabotage(sabotage_kind, out_dir, model)
                except ValueError as exc:
                    res.error = f"sabotage {sabotage_kind}: {exc}"
                    return res
                say(f"sabotage: {res.sabotage}")
            done(Check("build", detail=f"{len(artifacts)} files from the spec with its test "
                       f"override in {out_dir}", seconds=time.time() - t0))
            # -- start ----------------------------------------------------------------------
            t0 = time.time()
            exporter = DemoExporter(model, sockets=sockets)
            sockets = {}
            exporter.start()
            cadvisor = CadvisorDemo(model.deployment).start()  # the stack's cadvisor job
            data_dir = os.path.join(tmp, "data")
            if os.path.isfile(os.path.join(data_dir, "runtime.json")):  # an earlier --keep run
                shutil.rmtree(data_dir)
            stack = NativeStack(model, out_dir, data_dir, am_extra=O.pagerduty_extra(ov),
                                target_map=cadvisor.target_map())
            try:
                stack.start()
            finally:
                res.pids = dict(stack.pids)
            res.notes.extend(stack.notes + exporter.sim.notes)
            for note in res.notes:
                say(f"note: {note}")
            done(Check("start", seconds=time.time() - t0, detail=(
                f"Prometheus {stack.urls['prometheus']} (pid {stack.pids['prometheus']}), "
                f"Alertmanager {stack.urls['alertmanager']} (pid {stack.pids['alertmanager']})"
                f", {len(exporter.endpoints())} demo targets, sinks {web.address} (HTTP) and "
                f"{smtp.address} (SMTP)")))
            live = Live(stack)
            # -- steady state ---------------------------------------------------------------
            done(check_targets(live, model, time.time() + 25))
            done(check_rules(live, time.time() + 15))
            done(check_panels(live, out_dir, time.time() + 20 * patience))
            done(check_baseline(live, time.time() + RATE_WINDOW_S + FOR_S + 10))
            # -- incidents ------------------------------------------------------------------
            waves, notes = plan(model, exporter, only)
            res.notes.extend(notes)
            for note in notes:
                say(f"note: {note}")
            ctx = Ctx(model, live, exporter, web, smtp, ov, say, patience)
            for n, wave in enumerate(waves, 1):
                say(f"wave {n}/{len(waves)}: {', '.join(p.id for p in wave)}")
                quiet = wait_for(lambda wave=wave: not any(
                    find_prom(live.prom_alerts(), e.subset) for p in wave for e in p.expects),
                    time.time() + RATE_WINDOW_S + 15)
                if not quiet:
                    c = Check(f"wave {n} start")
                    c.fail("alerts of " + ", ".join(p.id for p in wave) + " were still active "
                           "before their incidents began")
                    done(c)
                pool = ThreadPoolExecutor(max_workers=max(1, len(wave)),
                                          thread_name_prefix="smoke-incident")
                try:
                    for check in pool.map(lambda p: run_incident_safely(ctx, p), wave):
                        done(check)
                except BaseException:
                    ctx.abort.set()  # incident threads stop waiting and end their incidents
                    raise
                finally:
                    pool.shutdown(wait=True)
        except (MissingBinary, UpError) as exc:
            res.error = str(exc)
        except OSError as exc:
            res.error = f"cannot set up the run: {exc}"
        except LiveError as exc:
            c = Check("live stack")
            c.fail(f"{exc}{died(stack)}")
            done(c)
        except StartError as exc:
            c = Check("start")
            c.fail(str(exc))
            done(c)
        except KeyboardInterrupt:
            res.interrupted = True
            say("interrupted: stopping everything")
        finally:
            if stack is not None:
                res.pids = {**res.pids, **stack.pids}
                stack.stop()
            for server in (exporter, cadvisor):
                if server is not None:
                    server.stop()
            for s in sockets.values():
                s.close()
            for sink in (web, smtp):
                if sink is not None:
                    sink.stop()
            res.seconds = time.time() - t_start
            if not keep and work_dir is None:
                shutil.rmtree(tmp, ignore_errors=True)
    return res


@dataclass
class _GroupStub:
    name: str
    count: int

    @property
    def targets(self):
        return [None] * self.count


def leftover(pids: dict) -> list[str]:
    """Processes of a finished run that still exist (there should be none)."""
    return [f"{name} (pid {pid})" for name, pid in pids.items() if procs.pid_running(pid)]


def main(spec: str, *, sabotage_kind=None, only=None, keep=None, echo=print) -> int:
    """The `stackgen smoke` command; returns the exit code (0 pass, 1 fail, 2 cannot run)."""
    echo(f"stackgen smoke: {spec}")
    res = run(spec, sabotage_kind=sabotage_kind, only=only, work_dir=keep, keep=bool(keep),
              echo=echo)
    left = leftover(res.pids)
    if left:
        res.checks.append(Check("cleanup", ok=False, failures=[
            f"still running after the run: {', '.join(left)}"]))
    echo(res.summary())
    if res.error:
        return 2
    return 0 if res.ok else 1
