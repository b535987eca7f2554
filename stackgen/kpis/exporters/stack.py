"""The monitoring stack's own health: Prometheus (targets, rule evaluation, TSDB) and
Alertmanager (notifications sent and failed, by integration), from the metrics each serves
about itself, as the Prometheus and
Alertmanager mixins' overview dashboards show them.
"""

from __future__ import annotations

from stackgen.kpis.exporters import RATE, Panel, Query, row

# No job matcher: only Prometheus and Alertmanager serve these names, whatever their jobs are
# called (`prometheus` and `alertmanager` in the Compose stack, kube-prometheus-stack's own).


def panels() -> tuple:
    return (
        row(10, "Prometheus"),
        Panel(11, "Targets up", "Targets each job scrapes successfully, of those it has.",
              "short", (Query("sum by (job) (up)", "{{job}} up"),
                        Query("count by (job) (up)", "{{job}} targets")), min=0),
        Panel(12, "Discovered targets", "Targets service discovery found, per scrape "
              "configuration.", "short", (Query(
                  "sum by (config) (prometheus_sd_discovered_targets)",
                  "{{config}}"),), min=0),
        Panel(13, "Rule evaluation failures", "Rule evaluations per second that failed, per "
              "rule group: a failing rule records nothing and alerts on nothing.", "ops",
              (Query("sum by (rule_group) (rate(prometheus_rule_evaluation_failures_total"
                     f"[{RATE}]))", "{{rule_group}}"),), min=0,
              thresholds=((0.001, "red"),)),
        Panel(14, "Rule group evaluation time", "How long each rule group's last evaluation "
              "took; near the evaluation interval, evaluations get skipped.", "s", (Query(
                  "prometheus_rule_group_last_duration_seconds",
                  "{{rule_group}}"),), min=0),
        Panel(15, "Head series", "Series in memory (the TSDB head): what memory use follows.",
              "short", (Query("prometheus_tsdb_head_series", "{{instance}}"),),
              min=0),
        Panel(16, "Storage", "Bytes of the persisted TSDB blocks on disk.", "bytes", (Query(
            "prometheus_tsdb_storage_blocks_bytes", "{{instance}}"),), min=0),
        row(20, "Alertmanager"),
        Panel(21, "Notifications sent", "Notifications per second, by integration.", "ops", (
            Query("sum by (integration) (rate(alertmanager_notifications_total"
                  f"[{RATE}]))", "{{integration}}"),), width=12, min=0),
        Panel(22, "Notifications failed", "Notifications per second that failed, by "
              "integration: alerts that reached no one.", "ops", (
                  Query(f"sum by (integration) (rate(alertmanager_notifications_failed_total"
                        f"[{RATE}]))", "{{integration}}"),), width=12, min=0,
              thresholds=((0.001, "red"),)),
    )
