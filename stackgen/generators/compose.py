"""compose.yaml: Prometheus, Alertmanager, Grafana, node-exporter and cAdvisor.

Pinned images, configuration mounted read-only, named volumes for data, healthchecks,
restart policies, and a Compose secret for every `*_file` of the spec, mounted at
`/run/secrets/<name>` where the generated configs expect it.
"""

from __future__ import annotations

from stackgen.artifact import Artifact, to_yaml
from stackgen.generators.grafana_provisioning import DASHBOARDS_MOUNT
from stackgen.model import Model

PATH = "compose.yaml"

# Compose bind-mounts file secrets with their host owner and mode (0600 for the ones `build`
# creates) and ignores `uid`/`gid`/`mode` outside Swarm, so a service that reads secrets runs
# as a user that can read them: root by default, or yourself with STACKGEN_UID/STACKGEN_GID.
SECRETS_USER = "${STACKGEN_UID:-0}:${STACKGEN_GID:-0}"


def _health(url: str) -> dict:
    return {
        "test": ["CMD", "wget", "--quiet", "--tries=1", "--spider", url],
        "interval": "15s",
        "timeout": "5s",
        "retries": 5,
        "start_period": "30s",
    }


def _alertmanager_secrets(model: Model) -> list[str]:
    names = set()
    a = model.alerting
    if a.smtp and a.smtp.auth_password:
        names.add(a.smtp.auth_password.name)
    for r in a.receivers:
        names.update(c.api_url.name for c in r.slack)
        names.update(c.url.name for c in r.webhook)
        names.update(c.routing_key.name for c in r.pagerduty)
    return sorted(names)


def services(model: Model) -> dict:
    s = model.stack
    img = s.images
    prometheus = {
        "image": img.prometheus,
        "command": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            f"--storage.tsdb.retention.time={s.retention}",
            "--web.enable-lifecycle",
            "--web.external-url=http://localhost:9090",
        ],
        "volumes": ["./prometheus:/etc/prometheus:ro", "prometheus-data:/prometheus"],
        "ports": ["127.0.0.1:9090:9090"],
        "depends_on": ["alertmanager"],
        "restart": "unless-stopped",
        "healthcheck": _health("http://localhost:9090/-/ready"),
    }
    alertmanager = {
        "image": img.alertmanager,
        "command": [
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/alertmanager",
            "--web.external-url=http://localhost:9093",
            "--cluster.listen-address=",
        ],
        "volumes": ["./alertmanager:/etc/alertmanager:ro", "alertmanager-data:/alertmanager"],
        "ports": ["127.0.0.1:9093:9093"],
        "restart": "unless-stopped",
        "healthcheck": _health("http://localhost:9093/-/ready"),
    }
    am_secrets = _alertmanager_secrets(model)
    if am_secrets:
        alertmanager["user"] = SECRETS_USER
        alertmanager["secrets"] = am_secrets
    env = {
        "GF_SECURITY_ADMIN_USER": s.grafana_admin_user,
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_SERVER_ROOT_URL": s.grafana_url,
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
    }
    grafana = {
        "image": img.grafana,
        "environment": env,
        "volumes": [
            "./grafana/provisioning:/etc/grafana/provisioning:ro",
            f"./grafana/dashboards:{DASHBOARDS_MOUNT}:ro",
            "grafana-data:/var/lib/grafana",
        ],
        "ports": ["127.0.0.1:3000:3000"],
        "depends_on": ["prometheus"],
        "restart": "unless-stopped",
        "healthcheck": _health("http://localhost:3000/api/health"),
    }
    if s.grafana_admin_password:
        env["GF_SECURITY_ADMIN_PASSWORD__FILE"] = s.grafana_admin_password.mount
        grafana["user"] = SECRETS_USER
        grafana["secrets"] = [s.grafana_admin_password.name]
    node_exporter = {
        "image": img.node_exporter,
        "command": ["--path.rootfs=/host"],
        "pid": "host",
        "volumes": ["/:/host:ro,rslave"],
        "restart": "unless-stopped",
        "healthcheck": _health("http://localhost:9100/metrics"),
    }
    cadvisor = {
        "image": img.cadvisor,
        "volumes": [
            "/:/rootfs:ro",
            "/var/run:/var/run:ro",
            "/sys:/sys:ro",
            "/var/lib/docker/:/var/lib/docker:ro",
            "/dev/disk/:/dev/disk:ro",
        ],
        "devices": ["/dev/kmsg"],
        "privileged": True,
        "restart": "unless-stopped",
        "healthcheck": _health("http://localhost:8080/healthz"),
    }
    return {
        "prometheus": prometheus,
        "alertmanager": alertmanager,
        "grafana": grafana,
        "node-exporter": node_exporter,
        "cadvisor": cadvisor,
    }


def config(model: Model) -> dict:
    out = {"name": model.deployment, "services": services(model)}
    if model.secrets:
        # `$` in a folder name would be read by Compose as a variable: `$$` is a literal `$`
        out["secrets"] = {sec.name: {"file": f"{model.spec_dir}/{sec.source}".replace("$", "$$")}
                          for sec in model.secrets}
    out["volumes"] = {"prometheus-data": {}, "alertmanager-data": {}, "grafana-data": {}}
    return out


def generate(model: Model) -> list[Artifact]:
    if "compose" not in model.stack.outputs:  # stack.outputs leaves it out
        return []
    return [Artifact(PATH, to_yaml(config(model), model.spec_name))]
