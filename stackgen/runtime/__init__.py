"""The stack, live: run the generated configuration natively and prove that it works.

| module        | what                                                                      |
| ------------- | ------------------------------------------------------------------------- |
| native        | `stackgen up`: runtime copies of the configs mapped for 127.0.0.1, and    |
|               | Prometheus, Alertmanager, node_exporter as native processes               |
| procs         | binaries, loopback ports, process groups, signals: every process stops    |
| demo_exporter | every metric the KPIs read, healthy values, incidents on demand           |
| steady        | a steady-state PromQL evaluator (what a KPI settles at, given the series) |
| sinks         | local Slack / webhook / PagerDuty and SMTP endpoints that record messages |
| override      | the smoke test's override of a spec: local targets and receivers, fast    |
| smoke         | `stackgen smoke`: build for test, run, check targets, rules, panels and   |
|               | one incident per KPI through to the notifications                         |

Nothing here changes the generated folder: every mapping is written to a runtime copy.
"""

import sys


def echo(text: str, err: bool = False) -> None:
    """Print a line at once (stdout, or stderr with `err`): the default reporter of the
    runtime commands, which the CLI replaces with click.echo."""
    print(text, file=sys.stderr if err else sys.stdout, flush=True)
