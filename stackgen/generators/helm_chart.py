"""helm/<stack>/**: a Helm chart of the same stack for Kubernetes with kube-prometheus-stack.

The chart wraps the Compose stack's own outputs, so that there is one source of truth:

- files/rules/*.yml are the rule files of `prometheus_rules.rule_files` (one PrometheusRule
  each, whose spec is the file);
- files/dashboards/*.json are the dashboards of `grafana_dashboards` (one ConfigMap each);
- files/alertmanager/stackgen.tmpl is the notification template of `alertmanager_config`;
- files/scrapeconfigs/<group>.yaml and files/servicemonitors/<group>.yaml are the specs of a
  ScrapeConfig per group with static targets (the job of prometheus.yml) and a ServiceMonitor
  per group with `kubernetes:` targets.

The templates under templates/ are the same for every stack and load those files verbatim
with `.Files.Get`, so Helm never renders the `{{ }}` of Prometheus and Grafana. The one
document built here inside a template is alertmanager.yaml (`alertmanager_config.config`),
because its secret file paths come from values: its own braces are escaped for Helm.
"""

from __future__ import annotations

import copy
import difflib
import re

from stackgen.artifact import MARK, Artifact, to_yaml, tool_version
from stackgen.generators import alertmanager_config, grafana_dashboards, prometheus_rules
from stackgen.generators.grafana_provisioning import DATASOURCE_UID
from stackgen.model import Group, Model, Secret
from stackgen.templating import render

DIR = "helm"
# Where the operator mounts the keys of kube-prometheus-stack's configSecret (the Secrets of
# alertmanagerSpec.secrets go to /etc/alertmanager/secrets/<name>/: see templates/_helpers.tpl).
CONFIG_MOUNT = "/etc/alertmanager/config"
RULE_FILE_ANNOTATION = "stackgen.dev/rule-file"  # on each PrometheusRule: its rule file
TEMPLATE_DATASOURCE_UID = "prometheus"  # what templates/dashboards.yaml replaces by a value

# chart path -> Jinja template under templates/helm/ (rendered with the mark only)
STATIC_TEMPLATES = {
    "templates/_helpers.tpl": "_helpers.tpl.j2",
    "templates/NOTES.txt": "NOTES.txt.j2",
    "templates/prometheusrules.yaml": "prometheusrules.yaml.j2",
    "templates/scrapeconfigs.yaml": "scrapeconfigs.yaml.j2",
    "templates/servicemonitors.yaml": "servicemonitors.yaml.j2",
    "templates/dashboards.yaml": "dashboards.yaml.j2",
}

_SENTINEL = "STACKGEN_SECRET_FILE({})"
# kube-prometheus-stack's meta alerts, muted by default (values: alertmanager.muteMetaAlerts)
NULL_RECEIVER = "kube-prometheus-stack.null"
META_ALERTS = 'alertname=~"Watchdog|InfoInhibitor"'


def chart_dir(model: Model) -> str:
    return f"{DIR}/{model.stack.name}"


def helm_escape(text: str) -> str:
    """Text that Helm renders back to itself: every `{{` and `}}` becomes a template action
    that prints it."""
    return re.sub(r"\{\{|\}\}", lambda m: '{{ "%s" }}' % m.group(0), text)


def secret_name(model: Model, secret: Secret) -> str:
    """Default name of the Kubernetes Secret that holds a secret file of the spec."""
    name = re.sub(r"[^a-z0-9.-]+", "-", secret.name.lower()).strip("-.")
    return f"{model.stack.name}-{name or 'secret'}"


def alertmanager_secrets(model: Model) -> list[tuple[Secret, str]]:
    """(secret, what reads it) for every secret file Alertmanager reads, sorted by name."""
    users: dict = {}
    a = model.alerting
    if a.smtp and a.smtp.auth_password:
        users.setdefault(a.smtp.auth_password, []).append("SMTP password")
    for r in a.receivers:
        for c in r.slack:
            users.setdefault(c.api_url, []).append(f"Slack URL of receiver {r.name}")
        for c in r.webhook:
            users.setdefault(c.url, []).append(f"webhook URL of receiver {r.name}")
        for c in r.pagerduty:
            users.setdefault(c.routing_key, []).append(f"PagerDuty key of receiver {r.name}")
    return [(s, ", ".join(dict.fromkeys(users[s])))
            for s in sorted(users, key=lambda s: s.name)]


def with_meta_alerts_muted(cfg: dict) -> dict:
    """`cfg` plus what kube-prometheus-stack's own Alertmanager config does with its meta
    alerts: Watchdog (always firing, for a dead man's switch) and InfoInhibitor go to a
    receiver that notifies nobody, and InfoInhibitor inhibits the info alerts of its
    namespace. The receiver's name has a dot, which no spec receiver name can have."""
    cfg = copy.deepcopy(cfg)
    route = cfg["route"]
    route["routes"] = [{"receiver": NULL_RECEIVER, "matchers": [META_ALERTS]}] + \
        route.get("routes", [])
    cfg["receivers"].append({"name": NULL_RECEIVER})
    cfg.setdefault("inhibit_rules", []).append({
        "source_matchers": ['alertname="InfoInhibitor"'],
        "target_matchers": ['severity="info"'], "equal": ["namespace"]})
    return cfg


def _only_if(value: str, base: str, extended: str) -> str:
    """`extended` (lines inserted into `base`) with every inserted block wrapped in
    `{{- if <value> }} ... {{- end }}`, so the template renders `base` when it is false."""
    a, b = base.splitlines(keepends=True), extended.splitlines(keepends=True)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.extend(a[i1:i2])
        elif op == "insert":
            out.extend([f"{{{{- if {value} }}}}\n", *b[j1:j2], "{{- end }}\n"])
        else:  # a bug: the extension must only add lines
            raise RuntimeError(f"alertmanager.yaml: {value} changes lines instead of adding")
    return "".join(out)


def alertmanager_yaml(model: Model) -> str:
    """alertmanager.yaml as a Helm template: the Compose stack's config with every secret file
    where kube-prometheus-stack mounts it (a helper reads the Secret's name from values), and
    kube-prometheus-stack's meta alerts muted unless values say otherwise."""
    cfg = alertmanager_config.config(model, secret_path=lambda s: _SENTINEL.format(s.name))
    cfg["templates"] = [f"{CONFIG_MOUNT}/*.tmpl"]
    text = _only_if(".Values.alertmanager.muteMetaAlerts",
                    helm_escape(to_yaml(cfg, model.spec_name)),
                    helm_escape(to_yaml(with_meta_alerts_muted(cfg), model.spec_name)))
    for secret, _ in alertmanager_secrets(model):
        text = text.replace(_SENTINEL.format(secret.name),
                            '{{ include "stackgen.secretFile" (list . %s) }}'
                            % _go_string(secret.name))
    if "STACKGEN_SECRET_FILE(" in text:  # a secret the list above missed: a bug, not a user error
        raise RuntimeError("alertmanager.yaml refers to a secret that values.yaml does not list")
    return text


def _go_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _yaml_scalar(value: str) -> str:
    """A mapping key or plain value of values.yaml, quoted unless it is obviously a string."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value) and value.lower() not in (
            "true", "false", "yes", "no", "on", "off", "null", "y", "n"):
        return value
    return _go_string(value)


def _scrape_interval(model: Model) -> dict:
    return {"scrapeInterval": model.stack.scrape_interval,
            "scrapeTimeout": model.stack.scrape_timeout}


def scrape_config_spec(model: Model, group: Group) -> dict:
    """The spec of the ScrapeConfig of a group's static targets: prometheus.yml's job."""
    spec: dict = {"jobName": group.job}
    if group.metrics_path != "/metrics":
        spec["metricsPath"] = group.metrics_path
    if group.scheme != "http":
        spec["scheme"] = group.scheme
    spec.update(_scrape_interval(model))
    spec["staticConfigs"] = [{"targets": list(group.targets), "labels": dict(group.target_labels)}]
    return spec


def service_monitor_spec(model: Model, group: Group) -> dict:
    """The spec of the ServiceMonitor of a group's `kubernetes:` Services. Its relabelings
    give every target the labels that prometheus.yml's static_configs give: the job, the
    group label and the group's labels (the operator's `service` label, the Kubernetes
    Service's name, is replaced for services and dropped for host and GPU groups)."""
    k = group.kubernetes
    relabel = []
    if group.group_label != "service":
        relabel.append({"action": "labeldrop", "regex": "service"})
    relabel.append({"action": "replace", "targetLabel": "job", "replacement": group.job})
    for label, value in group.target_labels:
        relabel.append({"action": "replace", "targetLabel": label, "replacement": value})
    endpoint: dict = {"port": k.port}
    if k.path != "/metrics":
        endpoint["path"] = k.path
    if k.scheme != "http":
        endpoint["scheme"] = k.scheme
    endpoint["interval"] = model.stack.scrape_interval
    endpoint["scrapeTimeout"] = model.stack.scrape_timeout
    endpoint["relabelings"] = relabel
    return {
        "selector": {"matchLabels": dict(k.match_labels)},
        "namespaceSelector": {"matchNames": [k.namespace]},
        "endpoints": [endpoint],
    }


def chart_metadata(model: Model) -> dict:
    return {
        "apiVersion": "v2",
        "name": model.stack.name,
        "description": f"Rules, scrape configuration, Alertmanager routing and Grafana dashboards "
                       f"of the {model.stack.name} stack for kube-prometheus-stack "
                       f"(generated by stackgen)",
        "type": "application",
        "version": tool_version(),
        # the spec's revision: `helm list` shows which spec a release runs
        "appVersion": (model.spec_sha256[:12] or tool_version()),
        "keywords": ["prometheus", "alertmanager", "grafana", "prometheus-operator", "stackgen"],
        "annotations": {"stackgen.dev/spec": model.spec_name,
                        "stackgen.dev/spec-sha256": model.spec_sha256},
    }


def _selector_text(group: Group) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in group.kubernetes.match_labels)


def generate(model: Model) -> list[Artifact]:
    if "helm" not in model.stack.outputs:  # stack.outputs leaves it out
        return []
    boards = grafana_dashboards.generate(model)
    if [a.path for a in boards] != grafana_dashboards.paths(model):  # a bug, never the user's
        raise RuntimeError("grafana_dashboards.paths is out of step with its dashboards")
    return chart(model) + dashboard_copies(model, boards)


def dashboard_copies(model: Model, boards: list[Artifact]) -> list[Artifact]:
    """files/dashboards/*.json: the very dashboards of grafana/dashboards/ (`boards`)."""
    if "helm" not in model.stack.outputs:
        return []
    return [Artifact(f"{chart_dir(model)}/files/dashboards/{a.path.rsplit('/', 1)[1]}",
                     a.content) for a in boards]


def chart(model: Model) -> list[Artifact]:
    """The chart without its copies of the dashboards (`dashboard_copies`): a build on two
    cores makes those where the dashboards are made (stackgen/parallel.py)."""
    if "helm" not in model.stack.outputs:
        return []
    if DATASOURCE_UID != TEMPLATE_DATASOURCE_UID:  # a bug: the template would miss the uid
        raise RuntimeError("templates/helm/dashboards.yaml.j2 replaces another datasource uid")
    base = chart_dir(model)
    mark = MARK.format(spec=model.spec_name)
    out = [Artifact(f"{base}/Chart.yaml", to_yaml(chart_metadata(model), model.spec_name))]
    for path, template in STATIC_TEMPLATES.items():
        out.append(Artifact(f"{base}/{path}", render(f"helm/{template}", mark=mark)))
    out.append(Artifact(f"{base}/templates/alertmanager-config.yaml", render(
        "helm/alertmanager-config.yaml.j2", mark=mark, config=alertmanager_yaml(model))))

    rules = []
    # the very rule files of prometheus/rules/ (one serialisation, shared)
    shared = prometheus_rules.generate(model)
    for (name, data), a in zip(prometheus_rules.rule_files(model), shared):
        if a.path != f"{prometheus_rules.RULES_DIR}/{name}":  # a bug, never a user error
            raise RuntimeError(f"rule file {name} and its artifact {a.path} are out of step")
        out.append(Artifact(f"{base}/files/rules/{name}", a.content))
        rules.append({"file": name, "stem": name.rsplit(".", 1)[0],
                      "groups": ", ".join(f"`{g['name']}`" for g in data["groups"])})
    scrape_configs, service_monitors = [], []
    for g in model.groups:
        if g.targets:
            out.append(Artifact(f"{base}/files/scrapeconfigs/{g.kind}-{g.name}.yaml",
                                to_yaml(scrape_config_spec(model, g), model.spec_name)))
            scrape_configs.append({"group": f"{g.kind}-{g.name}", "job": g.job,
                                   "targets": ", ".join(f"`{t}`" for t in g.targets)})
        if g.kubernetes:
            out.append(Artifact(f"{base}/files/servicemonitors/{g.kind}-{g.name}.yaml",
                                to_yaml(service_monitor_spec(model, g), model.spec_name)))
            service_monitors.append({"group": f"{g.kind}-{g.name}", "kind": g.kind, "name": g.name,
                                     "job": g.job, "namespace": g.kubernetes.namespace,
                                     "selector": _selector_text(g), "port": g.kubernetes.port})
    dashboards = []
    for path in grafana_dashboards.paths(model):
        file = path.rsplit("/", 1)[1]
        stem = file[:-len(".json")]
        dashboards.append({"file": file, "short": stem[len(model.stack.name) + 1:]
                           if stem.startswith(model.stack.name + "-") else stem})
    template = next(a for a in alertmanager_config.generate(model)
                    if a.path == alertmanager_config.TEMPLATE_PATH)
    out.append(Artifact(f"{base}/files/alertmanager/stackgen.tmpl", template.content))

    secrets = [{"name": _yaml_scalar(s.name), "source": s.source, "used_by": used_by,
                "secret_name": secret_name(model, s), "key": _yaml_scalar(s.name)}
               for s, used_by in alertmanager_secrets(model)]
    out.append(Artifact(f"{base}/values.yaml", render(
        "helm/values.yaml.j2", mark=mark, name=model.stack.name, secrets=secrets)))
    out.append(Artifact(f"{base}/README.md", render(
        "helm/README.md.j2", mark=mark, name=model.stack.name, version=tool_version(),
        spec_name=model.spec_name, rules=rules, scrape_configs=scrape_configs,
        service_monitors=service_monitors, dashboards=dashboards,
        secrets=secrets, secret_names=sorted({s["secret_name"] for s in secrets}),
        external_labels=[("stack", model.stack.name), ("env", model.stack.environment),
                         *model.stack.external_labels],
        evaluation_interval=model.stack.evaluation_interval,
        grafana_url=model.stack.grafana_url)))
    return out

