"""cAdvisor (deployed by the Compose stack, scraped as job `cadvisor`; in Kubernetes the
kubelet's): the containers
dashboard (CPU, memory against limits, restarts and OOM kills, per container) and the demo
series behind it.

Metric names and labels: cAdvisor's docs/storage/prometheus.md (`name` is the container's
name; series without one are cgroups of the host, left out as dockprom's dashboards do).
A restart of a Compose container (restart: unless-stopped) keeps its name and id and moves
`container_start_time_seconds`, so restarts are that gauge's changes.
"""

from __future__ import annotations

from stackgen.kpis.base import COUNTER, GAUGE
from stackgen.kpis.exporters import RATE, Panel, Query, row

JOB = "cadvisor"
CPU = "container_cpu_usage_seconds_total"
WORKING_SET = "container_memory_working_set_bytes"
LIMIT = "container_spec_memory_limit_bytes"
OOM = "container_oom_events_total"
STARTED = "container_start_time_seconds"
# Any job: cAdvisor in the Compose stack (job `cadvisor`) or the kubelet's in Kubernetes; only
# cAdvisor serves these names.
SEL = 'name!=""'


def panels() -> tuple:
    return (
        row(10, "Containers"),
        Panel(11, "CPU per container", "CPU cores each container uses.", "short", (Query(
            f"sum by (name) (rate({CPU}{{{SEL}}}[{RATE}]))", "{{name}}"),), width=12, min=0),
        Panel(12, "Memory per container", "Working set: the memory a container uses that the "
              "kernel cannot reclaim; what the OOM killer goes by.", "bytes", (Query(
                  f"sum by (name) ({WORKING_SET}{{{SEL}}})", "{{name}}"),), width=12, min=0),
        Panel(13, "Memory against limit", "Working set as a share of the container's memory "
              "limit (containers with a limit only); the OOM killer acts at 100%.",
              "percentunit", (Query(
                  f"sum by (name) ({WORKING_SET}{{{SEL}}}) / sum by (name) ({LIMIT}{{{SEL}}} > 0)",
                  "{{name}}"),), min=0, max=1, thresholds=((0.8, "orange"), (0.9, "red"))),
        Panel(14, "Restarts", "Times each container started again in the dashboard's time "
              "range.", "short", (Query(
                  f"sum by (name) (changes({STARTED}{{{SEL}}}[$__range]))", "{{name}}"),),
              type="stat", thresholds=((1, "orange"),)),
        Panel(15, "OOM kills", "Processes the kernel's OOM killer ended in each container in "
              "the dashboard's time range.", "short", (Query(
                  f"sum by (name) (increase({OOM}{{{SEL}}}[$__range]))", "{{name}}"),),
              type="stat", thresholds=((1, "red"),)),
    )


# -- demo series ------------------------------------------------------------------------------
# (Compose service, CPU cores, working set MiB, memory limit MiB or 0 for none)
CONTAINERS = (("prometheus", 0.15, 420, 2048), ("alertmanager", 0.01, 40, 256),
              ("grafana", 0.03, 110, 512), ("node-exporter", 0.02, 18, 128),
              ("cadvisor", 0.08, 90, 0))


def demo_samples(project: str, started: float, wobble, add) -> None:
    """The containers of a Compose project as cAdvisor shows them, and the host's root
    cgroup (no `name`)."""
    for service, cores, mib, limit in CONTAINERS:
        labels = {"id": f"/docker/{project}-{service}", "image": f"{service}",
                  "name": f"{project}-{service}-1"}
        add(CPU[:-len("_total")], "counter", CPU, labels, COUNTER, cores * wobble(service))
        add(WORKING_SET, "gauge", WORKING_SET, labels, GAUGE, mib * 2**20 * wobble(service))
        add(LIMIT, "gauge", LIMIT, labels, GAUGE, limit * 2**20)
        add(OOM[:-len("_total")], "counter", OOM, labels, COUNTER, 0.0)
        add(STARTED, "gauge", STARTED, labels, GAUGE, started)
    add(CPU[:-len("_total")], "counter", CPU, {"id": "/"}, COUNTER, 0.6)
