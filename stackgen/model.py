"""The internal model: what the spec means, in base units, with every PromQL decided.

Generators read only this model (never the spec dict). Everything here is frozen and ordered
as the spec orders it, so output built from it is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HOSTS, GPUS, SERVICES = "hosts", "gpus", "services"

# The label that names a monitored group on its series and alerts, by group kind.
GROUP_LABEL = {HOSTS: "host_group", GPUS: "gpu_group", SERVICES: "service"}


@dataclass(frozen=True)
class Secret:
    """A file that holds a secret. Only its path ever reaches generated config."""

    name: str  # compose secret name, e.g. "slack_webhook_url"
    source: str  # path as written in the spec, relative to the spec's folder
    path: str  # absolute path on this machine (never written into output)

    @property
    def mount(self) -> str:
        """Where Compose mounts it inside a container."""
        return f"/run/secrets/{self.name}"


@dataclass(frozen=True)
class Threshold:
    severity: str  # "warning" | "critical"
    below: bool  # fires when the value is below (else above)
    value: float  # in base units (ratio, seconds, bytes, per second)
    text: str  # as written in the spec, for humans ("500ms", "80%")
    inclusive: bool = False  # fires at the threshold too (>=, <=): a value capped at it
    share: bool = False  # disk: a share of the filesystem (`15%`), not bytes

    @property
    def op(self) -> str:
        return ("<" if self.below else ">") + ("=" if self.inclusive else "")


@dataclass(frozen=True)
class Series:
    """An input series that a KPI reads, described well enough to synthesise it in tests.

    kind: "counter" | "gauge" | "histogram" | "summary"; `labels` are extra selector labels it needs.
    """

    metric: str
    kind: str
    labels: tuple = ()


@dataclass(frozen=True)
class Kpi:
    kind: str  # cpu, memory, disk, gpu_utilization, gpu_memory, response_time, throughput,
    #            error_rate, drift, accuracy, custom
    name: str  # value of the `kpi` label: the spec key, or the custom KPI's name
    title: str  # human title of the value, e.g. "CPU busy", "p95 response time"
    record: str  # recording-rule metric name
    expr: str  # PromQL of the value (the recording rule's expression)
    record_labels: tuple  # ((name, value), ...) set on the recording rule
    unit: str  # Grafana unit id: percentunit, s, bytes, reqps, short, or a custom suffix
    panel: str  # timeseries, gauge, bargauge, heatmap, barchart, stat
    alert: str  # alert name stem, e.g. "HostCpu" (+ "High" / "Low")
    thresholds: tuple = ()  # of Threshold
    for_: str = "5m"
    description: str = ""
    humanize: str = "humanize"  # Prometheus template function for the value
    per: tuple = ()  # labels the value is broken down by (besides the group's own labels)
    inputs: tuple = ()  # of Series
    heatmap_expr: str | None = None  # response_time: bucket rates for the heatmap
    user_expr: str | None = None  # custom: the expression as the user wrote it
    errors: str | None = None  # error_rate: the matchers that select failed requests
    quantile: float | None = None  # response_time: the quantile of the histogram or summary
    filter: str | None = None  # matchers narrowing every series the KPI reads (`filter:`)
    alert_exact: str | None = None  # custom `alert`: the alerts' name as given (no High/Low)
    summary: str | None = None  # custom `summary`: the alerts' summary annotation
    runbook_url: str | None = None  # custom `runbook_url` (else the group's)
    fills_within: str | None = None  # disk: alert when predicted full within this time


@dataclass(frozen=True)
class Slo:
    kind: str  # "availability" | "latency"
    objective: float  # e.g. 0.999
    objective_text: str  # "99.9%"
    window: str  # "30d"
    threshold: float | None = None  # latency: seconds
    threshold_text: str | None = None
    description: str = ""
    error_ratio: str = ""  # PromQL of the SLI error ratio, with WINDOW where the range goes
    inputs: tuple = ()  # of Series the SLI reads
    name: str = ""  # Sloth's sloth_slo (default: the kind); sloth_id is <service>-<name>
    alert: str = "ErrorBudgetBurn"  # the burn-rate alerts' name

    WINDOW = "__WINDOW__"

    @property
    def slo_name(self) -> str:
        return self.name or self.kind

    @property
    def period(self) -> str:
        """The SLO window as Sloth names it in `slo:sli_error:ratio_rate<period>` and
        `sloth_window` (Prometheus' own duration format: 28d is '4w')."""
        from stackgen.spec.units import duration_seconds, prometheus_duration

        return prometheus_duration(duration_seconds(self.window))

    def error_ratio_over(self, window: str) -> str:
        return self.error_ratio.replace(self.WINDOW, window)


@dataclass(frozen=True)
class KubernetesTarget:
    """Kubernetes Services that a group's job scrapes in-cluster (a ServiceMonitor)."""

    namespace: str
    match_labels: tuple  # ((label, value), ...), sorted: the Services' selector
    port: str  # name of the Services' metrics port
    path: str = "/metrics"  # the group's metrics_path
    scheme: str = "http"  # the group's scheme


@dataclass(frozen=True)
class TargetDown:
    """The `TargetDown` alert of a scrape job: `up == 0` for `for_`."""

    severity: str = "critical"
    for_: str = "2m"


@dataclass(frozen=True)
class Heartbeat:
    """An always-firing alert routed only to `receiver`, for an external dead man's switch."""

    receiver: str
    repeat_interval: str = "1m"


@dataclass(frozen=True)
class Group:
    """A monitored group: a host group, a GPU group or a service. One scrape job each."""

    kind: str  # HOSTS | GPUS | SERVICES
    name: str
    job: str
    targets: tuple  # host:port static targets; empty when only `kubernetes` is given
    metrics_path: str = "/metrics"
    scheme: str = "http"
    labels: tuple = ()  # ((name, value), ...): user labels, added at scrape time
    description: str = ""
    runbook_url: str | None = None
    kpis: tuple = ()  # of Kpi
    slos: tuple = ()  # of Slo
    kubernetes: KubernetesTarget | None = None
    target_down: TargetDown = TargetDown()

    @property
    def group_label(self) -> str:
        return GROUP_LABEL[self.kind]

    @property
    def target_labels(self) -> tuple:
        """Labels every series of this group carries: the group label, then user labels."""
        return ((self.group_label, self.name),) + tuple(self.labels)


@dataclass(frozen=True)
class SlackConfig:
    channel: str
    api_url: Secret
    title: str | None = None
    text: str | None = None
    send_resolved: bool = True


@dataclass(frozen=True)
class EmailConfig:
    to: str
    send_resolved: bool = True


@dataclass(frozen=True)
class WebhookConfig:
    url: Secret
    max_alerts: int = 0
    send_resolved: bool = True


@dataclass(frozen=True)
class PagerdutyConfig:
    routing_key: Secret
    severity: str | None = None
    send_resolved: bool = True


@dataclass(frozen=True)
class Receiver:
    name: str
    slack: tuple = ()
    email: tuple = ()
    webhook: tuple = ()
    pagerduty: tuple = ()


@dataclass(frozen=True)
class Route:
    receiver: str
    matchers: tuple = ()  # normalised Alertmanager matcher strings
    continue_: bool = False
    group_by: tuple | None = None
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    routes: tuple = ()
    path: str = ""  # "routes[0].routes[1]" for messages
    mute_time_intervals: tuple = ()  # names of TimeIntervals
    active_time_intervals: tuple = ()


@dataclass(frozen=True)
class TimeRange:
    """One entry of a named time interval, as Alertmanager writes it (strings as given)."""

    times: tuple = ()  # of (start_time, end_time), "HH:MM"
    weekdays: tuple = ()  # "monday", "monday:friday"
    days_of_month: tuple = ()  # "1", "1:7", "-1"
    months: tuple = ()  # "january", "1:3"
    years: tuple = ()  # "2026", "2026:2027"
    location: str | None = None  # "Europe/Berlin"


@dataclass(frozen=True)
class TimeInterval:
    name: str
    ranges: tuple  # of TimeRange


@dataclass(frozen=True)
class Smtp:
    smarthost: str
    from_: str
    hello: str | None = None
    auth_username: str | None = None
    auth_password: Secret | None = None
    require_tls: bool | None = None


@dataclass(frozen=True)
class Alerting:
    default_receiver: str
    receivers: tuple  # of Receiver
    routes: tuple = ()  # of Route
    group_by: tuple = ("alertname",)
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    resolve_timeout: str = "5m"
    smtp: Smtp | None = None
    time_intervals: tuple = ()  # of TimeInterval
    heartbeat: Heartbeat | None = None


@dataclass(frozen=True)
class Images:
    prometheus: str
    alertmanager: str
    grafana: str
    node_exporter: str
    cadvisor: str


@dataclass(frozen=True)
class Stack:
    name: str
    environment: str
    scrape_interval: str
    evaluation_interval: str
    scrape_timeout: str
    retention: str
    rate_window: str
    grafana_admin_user: str
    grafana_admin_password: Secret | None
    grafana_url: str
    images: Images
    external_labels: tuple = ()
    outputs: tuple = ("compose", "helm")  # the deployments generated (stack.outputs)


@dataclass(frozen=True)
class Model:
    stack: Stack
    groups: tuple  # of Group, in order: hosts, gpus, services (each in spec order)
    alerting: Alerting
    dashboards_overview: bool = True
    dashboards_per_group: bool = True
    spec_sha256: str = ""
    spec_name: str = "stack.yaml"  # the source named in generated files' headers and the
    #                                manifest: "stack <name>[, environment <env>]" (never the
    #                                spec's file name, so that renaming it changes nothing)
    spec_dir: str = "."  # the spec's folder, relative to the output folder (secret files)
    secrets: tuple = field(default=())  # every Secret, sorted by name
    env: str | None = None  # the `environments:` entry this model is built for, if any

    @property
    def deployment(self) -> str:
        """The stack's name, with the environment's when there is one: Compose project
        name, dashboard uids and titles (one Grafana may show several environments)."""
        return f"{self.stack.name}-{self.env}" if self.env else self.stack.name

    def groups_of(self, kind: str) -> tuple:
        return tuple(g for g in self.groups if g.kind == kind)
