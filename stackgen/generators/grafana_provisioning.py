"""grafana/provisioning/**: the datasources and the dashboard provider Grafana loads at start.

Compose mounts `grafana/provisioning` at /etc/grafana/provisioning and `grafana/dashboards` at
`DASHBOARDS_MOUNT`. The dashboards refer to Prometheus by `DATASOURCE_UID`, defined here.
"""

from __future__ import annotations

from stackgen.artifact import Artifact, to_yaml
from stackgen.model import Model

DATASOURCE_UID = "prometheus"  # the uid every dashboard panel, target and variable uses
ALERTMANAGER_UID = "alertmanager"
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards"

PROMETHEUS_URL = "http://prometheus:9090"
ALERTMANAGER_URL = "http://alertmanager:9093"

DATASOURCES_PATH = "grafana/provisioning/datasources/prometheus.yml"
DASHBOARDS_PATH = "grafana/provisioning/dashboards/stackgen.yml"


def datasources(model: Model) -> dict:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": DATASOURCE_UID,
                "access": "proxy",
                "url": PROMETHEUS_URL,
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": model.stack.scrape_interval},
            },
            {
                "name": "Alertmanager",
                "type": "alertmanager",
                "uid": ALERTMANAGER_UID,
                "access": "proxy",
                "url": ALERTMANAGER_URL,
                "isDefault": False,
                "editable": False,
                "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
            },
        ],
    }


def dashboard_providers(model: Model) -> dict:
    name = model.stack.name
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": name,
                "folder": name,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": DASHBOARDS_MOUNT, "foldersFromFilesStructure": False},
            },
        ],
    }


def generate(model: Model) -> list[Artifact]:
    return [
        Artifact(DATASOURCES_PATH, to_yaml(datasources(model), model.spec_name)),
        Artifact(DASHBOARDS_PATH, to_yaml(dashboard_providers(model), model.spec_name)),
    ]
