"""prometheus/prometheus.yml: global settings, scrape jobs, rule files, Alertmanager."""

from __future__ import annotations

from stackgen.artifact import Artifact, to_yaml
from stackgen.model import Model

PATH = "prometheus/prometheus.yml"

# Compose service names and ports of the stack's own components.
STACK_TARGETS = {
    "prometheus": "localhost:9090",
    "alertmanager": "alertmanager:9093",
    "grafana": "grafana:3000",
    "cadvisor": "cadvisor:8080",
}


def scrape_jobs(model: Model) -> list[dict]:
    jobs = []
    for group in model.groups:
        if not group.targets:
            continue  # only `kubernetes:` Services: scraped in-cluster (the Helm chart) only
        job = {"job_name": group.job}
        if group.metrics_path != "/metrics":
            job["metrics_path"] = group.metrics_path
        if group.scheme != "http":
            job["scheme"] = group.scheme
        job["static_configs"] = [{"targets": list(group.targets),
                                  "labels": dict(group.target_labels)}]
        jobs.append(job)
    for name, target in STACK_TARGETS.items():
        jobs.append({"job_name": name,
                     "static_configs": [{"targets": [target], "labels": {"service": name}}]})
    return jobs


def config(model: Model) -> dict:
    s = model.stack
    return {
        "global": {
            "scrape_interval": s.scrape_interval,
            "scrape_timeout": s.scrape_timeout,
            "evaluation_interval": s.evaluation_interval,
            "external_labels": {"stack": s.name, "env": s.environment, **dict(s.external_labels)},
        },
        "rule_files": ["rules/*.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]},
        "scrape_configs": scrape_jobs(model),
    }


def generate(model: Model) -> list[Artifact]:
    return [Artifact(PATH, to_yaml(config(model), model.spec_name))]
