"""The stack, live: run the generated configuration natively and prove that it works.

| module        | what                                                                      |
| ------------- | ------------------------------------------------------------------------- |
| native        | `stackgen up`: runtime copies of the configs mapped for 127.0.0.1, and    |
|               | Prometheus, Alertmanager, node_exporter as native processes               |
| procs         | binaries, loopback ports, process groups, signals: every process stops    |
| demo_exporter | `stackgen demo`: HTTP servers for every target, incidents on demand       |
| simulation    | the series of one group, from its KPI kinds (stackgen.kpis), healthy      |
| sim           | every group's simulation, the KPIs' steady values, custom KPIs solved for |
| incidents     | incidents: which KPI moves, to what value, crossing which thresholds      |
| steady        | a steady-state PromQL evaluator (what a KPI settles at, given the series) |
| promql_math   | PromQL's arithmetic, quantile and histogram_quantile, for `steady`        |
| sinks         | local Slack / webhook / PagerDuty and SMTP endpoints that record messages |
| override      | the smoke test's override of a spec: local targets and receivers, fast    |
| smoke         | `stackgen smoke`: build for test, run, check targets, rules, panels and   |
|               | one incident per KPI through to the notifications                         |
| smoke_checks  | smoke's steady checks: targets, rules, panel queries, healthy baseline    |
| smoke_plan    | smoke's incidents, the alerts each must raise, waves that run together    |
| smoke_incident| one incident, live: pending, firing, notified, inhibited, resolved        |
| live          | the live Prometheus and Alertmanager APIs, polled                         |
| sabotage      | edits of a smoke run's built files (broken on purpose for tests)          |
| smoke_report  | smoke's checks and result                                                 |

Nothing here changes the generated folder: every mapping is written to a runtime copy.
"""

import sys


def echo(text: str, err: bool = False) -> None:
    """Print a line at once (stdout, or stderr with `err`): the default reporter of the
    runtime commands, which the CLI replaces with click.echo."""
    print(text, file=sys.stderr if err else sys.stdout, flush=True)
