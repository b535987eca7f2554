"""stackgen: one KPI spec compiles into a Prometheus, Alertmanager and Grafana stack."""

__version__ = "0.1.0"
