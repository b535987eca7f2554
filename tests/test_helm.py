"""The Helm chart (helm/<stack>/): Helm lints and renders it, every object it renders is valid
for Kubernetes and the Prometheus Operator, and it carries the very rules, routing and
dashboards of the Compose stack. Real tools only (Helm SDK, kubernetes-validate, promtool);
never skipped: a missing tool fails with how to install it."""

import glob
import json
import os
import shutil
import subprocess

import pytest
import yaml

from conftest import REFERENCE, ROOT, SPEC, SPEC_NAMES, need_tool
from stackgen import __version__, build, check

GOOD = os.path.join(ROOT, "tests", "specs", "good")
SECRET_VALUE = "s3cr3t-value-that-must-never-reach-the-chart"
SECRETS = ("grafana_admin_password", "smtp_password", "slack_webhook_url", "webhook_url",
           "pagerduty_routing_key")
# spec -> (its file, the stack name)
SPECS = {
    "stack": (SPEC, "ml-platform"),
    "reference": (REFERENCE, "ml-platform"),
    "kubernetes": (os.path.join(GOOD, "kubernetes.yaml"), "k8s-apps"),
    "receivers": (os.path.join(GOOD, "receivers.yaml"), "receivers"),
}


@pytest.fixture(scope="module")
def tools():
    need_tool(check.find_helm, "the Helm SDK (helm_python)", check.INSTALL["helm"])
    need_tool(check.find_kubernetes_validate, "kubernetes-validate",
              check.INSTALL["kubernetes-validate"])
    need_tool(check.find_promtool, "promtool", check.INSTALL["promtool"])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build each spec once (copied with secret files that hold SECRET_VALUE)."""
    cache = {}

    def get(which):
        if which not in cache:
            spec, _ = SPECS[which]
            d = tmp_path_factory.mktemp(which)
            (d / "spec" / "secrets").mkdir(parents=True)
            shutil.copy(spec, d / "spec" / os.path.basename(spec))
            for name in SECRETS:
                (d / "spec" / "secrets" / name).write_text(SECRET_VALUE + "\n")
            out = d / "out"
            res = build.build(str(d / "spec" / os.path.basename(spec)), str(out),
                              create_secrets=False)
            assert not res.failed, res.problems
            cache[which] = str(out)
        return cache[which]

    return get


def _chart(out, which):
    return os.path.join(out, "helm", SPECS[which][1])


def _load(path):
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _of_kind(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.mark.parametrize("which", [*SPEC_NAMES, "kubernetes"])
def test_chart_passes_every_check(tools, built, which):
    """helm lint (strict), helm template, kubernetes-validate, the CRD schemas, promtool
    `check rules` + `test rules` (the Compose stack's tests) on the rendered rule groups, and
    amtool on the rendered Alertmanager config."""
    out = built(which)
    steps = check.check_helm(out)
    label = f"helm/{SPECS[which][1]}"
    assert [s.name for s in steps] == [
        f"helm lint {label}", f"helm template {label}",
        f"kubernetes-validate {label} (core objects)",
        f"CRD schemas {label} (Prometheus Operator v0.93.0 objects)",
        f"promtool check rules ({label} PrometheusRules)",
        f"promtool test rules ({label} PrometheusRules, "
        f"{len(glob.glob(os.path.join(out, 'prometheus', 'tests', '*.test.yml')))} files)",
        f"amtool check-config ({label} Alertmanager config Secret)",
    ]
    assert all(s.ok for s in steps), [(s.name, s.output) for s in steps if not s.ok]


@pytest.mark.parametrize("which", [*SPEC_NAMES, "kubernetes"])
def test_rendered_rules_are_the_compose_rule_files(tools, built, which):
    """One PrometheusRule per rule file, whose spec.groups equal the file's groups as data."""
    out = built(which)
    objects = check.render_chart(_chart(out, which))
    compose = {os.path.basename(p): _load(p)
               for p in glob.glob(os.path.join(out, "prometheus", "rules", "*.yml"))}
    assert compose
    assert len(_of_kind(objects, "PrometheusRule")) == len(compose)
    assert check.rendered_rule_files(objects) == compose
    text = json.dumps(compose)
    assert "{{ $value | humanize }}" in text and "{{ $labels.instance }}" in text


@pytest.mark.parametrize("which", [*SPEC_NAMES, "kubernetes", "receivers"])
def test_alertmanager_config_is_the_compose_config(tools, built, which):
    """The Secret's alertmanager.yaml is alertmanager.yml of the Compose stack, with only the
    places of secret files and templates moved to where kube-prometheus-stack mounts them;
    its notification template is the Compose stack's, byte for byte."""
    out = built(which)
    chart = _chart(out, which)
    objects = check.render_chart(chart)
    secrets = _of_kind(objects, "Secret")
    assert list(secrets) == [f"{SPECS[which][1]}-alertmanager"]
    data = next(iter(secrets.values()))["stringData"]
    refs = _load(os.path.join(chart, "values.yaml"))["alertmanager"]["secrets"]

    def moved(node):
        if isinstance(node, dict):
            return {k: (f"/etc/alertmanager/secrets/{refs[v.rsplit('/', 1)[1]]['secretName']}/"
                        f"{refs[v.rsplit('/', 1)[1]]['key']}"
                        if k.endswith("_file") else moved(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [moved(x) for x in node]
        return node

    expected = moved(_load(os.path.join(out, "alertmanager", "alertmanager.yml")))
    expected["templates"] = ["/etc/alertmanager/config/*.tmpl"]
    # By default kube-prometheus-stack's meta alerts go nowhere, as in its own config.
    muted = json.loads(json.dumps(expected))
    muted["route"]["routes"] = [{"receiver": "kube-prometheus-stack.null", "matchers": [
        'alertname=~"Watchdog|InfoInhibitor"']}] + muted["route"].get("routes", [])
    muted["receivers"].append({"name": "kube-prometheus-stack.null"})
    muted["inhibit_rules"].append({"source_matchers": ['alertname="InfoInhibitor"'],
                                   "target_matchers": ['severity="info"'],
                                   "equal": ["namespace"]})
    assert yaml.safe_load(data["alertmanager.yaml"]) == muted
    plain = check.render_chart(chart, {"alertmanager": {"muteMetaAlerts": False}})
    plain_data = next(iter(_of_kind(plain, "Secret").values()))["stringData"]
    assert yaml.safe_load(plain_data["alertmanager.yaml"]) == expected
    with open(os.path.join(out, "alertmanager", "templates", "stackgen.tmpl"),
              encoding="utf-8") as fh:
        assert data["stackgen.tmpl"] == fh.read()
    assert set(data) == {"alertmanager.yaml", "stackgen.tmpl"}


@pytest.mark.parametrize("which", SPEC_NAMES)
def test_kube_prometheus_stack_meta_alerts_are_muted_by_default(tools, built, which, tmp_path):
    """Watchdog fires forever by design: with the chart's config it must not page anyone
    (unless muteMetaAlerts is false); every other alert routes as in the Compose stack."""
    out = built(which)
    chart = _chart(out, which)
    compose = _load(os.path.join(out, "alertmanager", "alertmanager.yml"))
    default = compose["route"]["receiver"]
    for muted, watchdog in ((True, "kube-prometheus-stack.null"), (False, default)):
        objects = check.render_chart(chart, {"alertmanager": {"muteMetaAlerts": muted}})
        config = tmp_path / f"alertmanager-{muted}.yaml"
        config.write_text(next(iter(_of_kind(objects, "Secret").values()))["stringData"][
            "alertmanager.yaml"])
        for labels, receiver in ((["alertname=Watchdog", "severity=none"], watchdog),
                                 (["alertname=InfoInhibitor", "severity=none"], watchdog),
                                 (["alertname=KubeJobFailed", "severity=warning"], default),
                                 (["alertname=KubeJobFailed", "severity=critical"],
                                  "critical-alerts")):
            proc = subprocess.run(["amtool", "config", "routes", "test",
                                   f"--config.file={config}", f"--verify.receivers={receiver}",
                                   *labels], capture_output=True, text=True)
            assert proc.returncode == 0, (muted, labels, proc.stdout + proc.stderr)


@pytest.mark.parametrize("which", SPEC_NAMES)
def test_no_secret_value_in_the_chart(tools, built, which):
    """Secrets are referenced (Secret name and key in values.yaml), never carried."""
    out = built(which)
    chart = _chart(out, which)
    for path in glob.glob(os.path.join(chart, "**", "*"), recursive=True):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                assert SECRET_VALUE not in fh.read(), path
    helm = check.find_helm()
    with helm.Chart.load(chart) as loaded:
        manifests = loaded.render(None, name="x", namespace="monitoring")
    assert "templates/NOTES.txt" in "".join(manifests)
    for path, text in manifests.items():
        assert SECRET_VALUE not in text, path
    values = _load(os.path.join(chart, "values.yaml"))
    assert values["alertmanager"]["secrets"] == {
        "slack_webhook_url": {"secretName": "ml-platform-slack-webhook-url",
                              "key": "slack_webhook_url"},
        "smtp_password": {"secretName": "ml-platform-smtp-password", "key": "smtp_password"},
    }


def test_chart_metadata(tools, built):
    chart = _chart(built("stack"), "stack")
    meta = _load(os.path.join(chart, "Chart.yaml"))
    assert (meta["apiVersion"], meta["name"], meta["version"]) == ("v2", "ml-platform",
                                                                   __version__)
    assert meta["appVersion"]
    report = check.find_helm().lint(chart, strict=True)
    assert not report["errors"]
    assert all(m["severity"] < 2 for m in report["messages"]), report["messages"]


def test_chart_app_version_that_reads_as_a_number_stays_a_string(tools, tmp_path):
    """The spec hash is the chart's appVersion: `9890831690e9` is a float to Helm (YAML 1.2)."""
    import hashlib
    import re

    text = open(SPEC, encoding="utf-8").read()
    pad = next(i for i in range(200_000) if re.fullmatch(r"[0-9]+e[0-9]+", hashlib.sha256(
        (text + f"# pad {i}\n").encode()).hexdigest()[:12]))
    d = tmp_path / "spec"
    (d / "secrets").mkdir(parents=True)
    (d / "stack.yaml").write_text(text + f"# pad {pad}\n")
    for name in SECRETS:
        (d / "secrets" / name).write_text(SECRET_VALUE + "\n")
    out = tmp_path / "out"
    assert not build.build(str(d / "stack.yaml"), str(out), create_secrets=False).failed
    chart = os.path.join(out, "helm", "ml-platform")
    version = _load(os.path.join(chart, "Chart.yaml"))["appVersion"]
    assert re.fullmatch(r"[0-9]+e[0-9]+", version)
    report = check.find_helm().lint(chart, strict=True)
    assert not report["errors"], report
    assert all(m["severity"] < 2 for m in report["messages"]), report["messages"]
    steps = [s for s in check.check_helm(str(out)) if not s.ok]
    assert not steps, [(s.name, s.output) for s in steps]


# -- kubernetes: targets ---------------------------------------------------------------------
def _service(namespace, name, labels, ports):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"selector": labels, "ports": [
                {"name": p, "port": 8000 + i, "targetPort": p} for i, p in enumerate(ports)]}}


# The Services of the cluster that tests/specs/good/kubernetes.yaml monitors, and decoys.
SERVICES = {
    "node-exporter": _service("monitoring", "kps-prometheus-node-exporter",
                              {"app.kubernetes.io/name": "prometheus-node-exporter",
                               "release": "kps"}, ["http-metrics"]),
    "checkout": _service("shop", "checkout", {"app.kubernetes.io/name": "checkout",
                                              "app.kubernetes.io/component": "api",
                                              "app.kubernetes.io/version": "1.2"},
                         ["http", "metrics"]),
    "search": _service("search", "search", {"app": "search"}, ["http"]),
    "checkout-elsewhere": _service("staging", "checkout", {
        "app.kubernetes.io/name": "checkout", "app.kubernetes.io/component": "api"},
        ["metrics"]),
    "checkout-web": _service("shop", "checkout-web", {"app.kubernetes.io/name": "checkout"},
                             ["metrics"]),
}
SELECTS = {"k8s-apps-hosts-cluster-nodes": "node-exporter",
           "k8s-apps-services-checkout": "checkout", "k8s-apps-services-search": "search"}


def _selects(monitor, service) -> bool:
    """Whether the Prometheus Operator would scrape `service` for this ServiceMonitor."""
    spec, meta = monitor["spec"], service["metadata"]
    names = spec.get("namespaceSelector", {}).get("matchNames") or \
        [monitor["metadata"]["namespace"]]
    return (meta["namespace"] in names
            and spec["selector"]["matchLabels"].items() <= meta["labels"].items()
            and all(e["port"] in [p["name"] for p in service["spec"]["ports"]]
                    for e in spec["endpoints"]))


def _relabel(labels: dict, relabelings: list) -> dict:
    """Prometheus's relabeling, for the actions the chart uses."""
    import re

    out = dict(labels)
    for r in relabelings:
        if r["action"] == "labeldrop":
            out = {k: v for k, v in out.items() if not re.fullmatch(r["regex"], k)}
        elif r["action"] == "replace" and not r.get("sourceLabels"):
            if r["replacement"]:
                out[r["targetLabel"]] = r["replacement"]
            else:
                out.pop(r["targetLabel"], None)
        else:  # pragma: no cover - an action this helper does not model
            raise AssertionError(f"unexpected relabeling {r}")
    return out


def test_service_monitors_select_the_services(tools, built):
    out = built("kubernetes")
    objects = check.render_chart(_chart(out, "kubernetes"))
    monitors = _of_kind(objects, "ServiceMonitor")
    assert sorted(monitors) == sorted(SELECTS)
    for svc in SERVICES.values():  # the Services are real ones
        assert check.validate_core_objects([svc]) == []
    for name, monitor in monitors.items():
        chosen = [k for k, svc in SERVICES.items() if _selects(monitor, svc)]
        assert chosen == [SELECTS[name]], name
    checkout = monitors["k8s-apps-services-checkout"]["spec"]["endpoints"][0]
    assert (checkout["port"], checkout["path"], checkout["interval"]) == (
        "metrics", "/internal/metrics", "30s")
    assert monitors["k8s-apps-services-search"]["spec"]["endpoints"][0]["scheme"] == "https"


def test_scraped_series_carry_the_compose_labels(tools, built):
    """A target of a ServiceMonitor ends with the job and labels that prometheus.yml's
    static_configs give (so the same rules select it); a ScrapeConfig keeps the job."""
    out = built("kubernetes")
    objects = check.render_chart(_chart(out, "kubernetes"))
    monitors = _of_kind(objects, "ServiceMonitor")
    prom = {j["job_name"]: j for j in _load(os.path.join(out, "prometheus",
                                                         "prometheus.yml"))["scrape_configs"]}
    assert "search" in prom and "checkout" not in prom and "cluster-nodes" not in prom

    def scraped(monitor, service):  # the labels the operator gives a target, then ours
        k8s = {"job": service, "service": service, "namespace": "ns", "pod": "p-0",
               "container": "c", "endpoint": "metrics", "instance": "10.0.0.7:8000"}
        return _relabel(k8s, monitors[monitor]["spec"]["endpoints"][0]["relabelings"])

    nodes = scraped("k8s-apps-hosts-cluster-nodes", "kps-prometheus-node-exporter")
    assert (nodes["job"], nodes["host_group"]) == ("cluster-nodes", "cluster-nodes")
    assert "service" not in nodes
    checkout = scraped("k8s-apps-services-checkout", "checkout")
    assert {k: checkout[k] for k in ("job", "service", "team")} == {
        "job": "checkout", "service": "checkout", "team": "shop"}
    search = scraped("k8s-apps-services-search", "search-svc")
    static = prom["search"]["static_configs"][0]
    assert {**static["labels"], "job": "search"}.items() <= search.items()

    configs = _of_kind(objects, "ScrapeConfig")
    assert list(configs) == ["k8s-apps-services-search"]
    spec = configs["k8s-apps-services-search"]["spec"]
    assert spec["jobName"] == prom["search"]["job_name"]
    assert spec["staticConfigs"] == prom["search"]["static_configs"]
    assert spec["scheme"] == prom["search"]["scheme"]


# -- values ----------------------------------------------------------------------------------
OVERRIDES = {
    "fullnameOverride": "mon",
    "namespaceOverride": "observability",
    "release": "prom",
    "commonLabels": {"team": "sre"},
    "alertmanager": {"namespace": "monitoring", "secrets": {
        "slack_webhook_url": {"secretName": "chat", "key": "slack"}}},
    "dashboards": {"namespace": "grafana", "label": "my_dashboard", "labelValue": "yes",
                   "annotations": {"grafana_folder": "Stack"}, "datasourceUid": "kps-prom"},
}


def _datasource_uids(node):
    """Prometheus datasource uids a dashboard queries: the `datasource` variable's default
    wherever a panel names the variable."""
    if isinstance(node, dict) and node.get("templating"):
        default = node["templating"]["list"][0]["current"]["value"]
        for uid in _datasource_uids({k: v for k, v in node.items() if k != "templating"}):
            yield default if uid == "${datasource}" else uid
        return
    if isinstance(node, dict):
        ds = node.get("datasource")
        yield from ([ds["uid"]] if isinstance(ds, dict) and ds.get("type") == "prometheus"
                    else [])
        for v in node.values():
            yield from _datasource_uids(v)
    elif isinstance(node, list):
        for v in node:
            yield from _datasource_uids(v)


def test_values_overrides_take_effect(tools, built):
    out = built("kubernetes")
    chart = _chart(out, "kubernetes")
    default = check.render_chart(chart, namespace="kps")
    objects = check.render_chart(chart, OVERRIDES, name="apps", namespace="kps")
    assert len(objects) == len(default)
    assert {o["metadata"]["namespace"] for o in default} == {"kps"}
    assert all(o["metadata"]["labels"]["release"] == "kube-prometheus-stack" for o in default)
    for o in objects:
        labels = o["metadata"]["labels"]
        assert (labels["release"], labels["team"]) == ("prom", "sre"), o["metadata"]["name"]
        assert o["metadata"]["name"].startswith("mon-")
        assert o["metadata"]["namespace"] == {"ConfigMap": "grafana", "Secret": "monitoring"}.get(
            o["kind"], "observability")
    dashboards = _of_kind(objects, "ConfigMap")
    assert dashboards
    for cm in dashboards.values():
        assert cm["metadata"]["labels"]["my_dashboard"] == "yes"
        assert "grafana_dashboard" not in cm["metadata"]["labels"]
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Stack"}
        uids = set(_datasource_uids(json.loads(next(iter(cm["data"].values())))))
        assert uids == {"kps-prom"}
    for cm in _of_kind(default, "ConfigMap").values():
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert set(_datasource_uids(json.loads(next(iter(cm["data"].values()))))) == {
            "prometheus"}
    am = yaml.safe_load(_of_kind(objects, "Secret")["mon-alertmanager"]["stringData"][
        "alertmanager.yaml"])
    team = next(r for r in am["receivers"] if r["name"] == "team")
    assert team["slack_configs"][0]["api_url_file"] == "/etc/alertmanager/secrets/chat/slack"
    assert check.validate_core_objects(objects) == []
    assert check.validate_operator_objects(objects) == []


def test_parts_can_be_switched_off(tools, built):
    chart = _chart(built("kubernetes"), "kubernetes")
    off = {"rules": {"enabled": False}, "alertmanager": {"enabled": False},
           "scrape": {"scrapeConfigs": False}}
    kinds = {o["kind"] for o in check.render_chart(chart, off)}
    assert kinds == {"ServiceMonitor", "ConfigMap"}


def test_a_secret_without_its_kubernetes_secret_fails_to_render(tools, built):
    helm = check.find_helm()
    chart = _chart(built("kubernetes"), "kubernetes")
    with pytest.raises(helm.HelmError) as exc:
        check.render_chart(chart, {"alertmanager": {"secrets": {"webhook_url": None}}})
    assert "alertmanager.secrets.webhook_url" in str(exc.value)


def test_check_helm_names_missing_tools(built, monkeypatch):
    out = built("kubernetes")
    monkeypatch.setattr(check, "find_helm", lambda: None)
    steps = check.check_helm(out)
    assert [s.ok for s in steps] == [False, False]
    assert "pip install helm-python-sdk==0.2.2" in steps[0].output
    monkeypatch.undo()
    monkeypatch.setattr(check, "find_kubernetes_validate", lambda: None)
    monkeypatch.setattr(check, "find_promtool", lambda: None)
    failed = {s.name: s.output for s in check.check_helm(out) if not s.ok}
    assert "pip install kubernetes-validate==1.37.0" in \
        failed["kubernetes-validate helm/k8s-apps (core objects)"]
    assert "apt-get install --no-install-recommends prometheus" in \
        failed["promtool check rules (helm/k8s-apps PrometheusRules)"]


def test_check_helm_fails_on_a_broken_chart(tools, built, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(built("kubernetes"), out)
    chart = out / "helm" / "k8s-apps"
    sm = chart / "files" / "servicemonitors" / "services-search.yaml"
    sm.write_text(sm.read_text().replace("  interval:", "  intervall:"))
    rules = chart / "files" / "rules" / "hosts-cluster-nodes.yml"
    rules.write_text(rules.read_text().replace("> 0.8", "> 0.9", 1))
    failed = {s.name: s.output for s in check.check_helm(str(out)) if not s.ok}
    assert sorted(failed) == ["CRD schemas helm/k8s-apps (Prometheus Operator v0.93.0 objects)",
                              "promtool test rules (helm/k8s-apps PrometheusRules, 5 files)"]
    assert "'intervall' was unexpected" in failed[sorted(failed)[0]]
    assert "alert HostCpuHigh" in failed[sorted(failed)[1]]


def test_check_helm_runs_promtool_check_rules_on_the_chart_rule_files_that_differ(
        tools, built, tmp_path):
    """The chart's rule files that are the very groups of prometheus/rules/ are proven by
    that comparison (promtool checked those); a file that differs is checked by promtool."""
    out = tmp_path / "out"
    shutil.copytree(built("kubernetes"), out)
    steps = {s.name: s for s in check.check_helm(str(out))}
    name = "promtool check rules (helm/k8s-apps PrometheusRules)"
    assert steps[name].ok and steps[name].command == [], steps[name]
    assert "very rule groups of prometheus/rules/" in steps[name].note
    rules = out / "helm" / "k8s-apps" / "files" / "rules" / "hosts-cluster-nodes.yml"
    rules.write_text(rules.read_text().replace("> 0.8", "> > 0.8", 1))
    steps = {s.name: s for s in check.check_helm(str(out))}
    assert not steps[name].ok
    assert "hosts-cluster-nodes.yml" in steps[name].output, steps[name].output
    assert "hosts-cluster-nodes.yml" in " ".join(steps[name].command)


def test_check_helm_runs_amtool_on_the_chart_alertmanager_config(tools, built, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(built("stack"), out)
    template = out / "helm" / "ml-platform" / "templates" / "alertmanager-config.yaml"
    steps = {s.name: s for s in check.check_helm(str(out))}
    name = "amtool check-config (helm/ml-platform Alertmanager config Secret)"
    assert steps[name].ok, steps[name].output
    template.write_text(template.read_text().replace("receiver: ml-team", "receiver: ml-tem"))
    failed = {s.name: s.output for s in check.check_helm(str(out)) if not s.ok}
    assert list(failed) == [name]
    assert 'undefined receiver "ml-tem"' in failed[name]
