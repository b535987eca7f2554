"""Generators: each a pure function `generate(model) -> list[Artifact]`.

A reader finds the generator of any output file from its path alone:

| output path                          | module                    |
| ------------------------------------ | ------------------------- |
| prometheus/prometheus.yml            | prometheus_config         |
| prometheus/rules/*.yml               | prometheus_rules          |
| prometheus/rules/slo-*.yml           | slo_rules (via the above) |
| prometheus/tests/*.test.yml          | rule_tests                |
| alertmanager/alertmanager.yml        | alertmanager_config       |
| alertmanager/templates/*.tmpl        | alertmanager_config       |
| alertmanager/tests/routing.test.yml  | routing_tests             |
| grafana/dashboards/*.json            | grafana_dashboards        |
| grafana/provisioning/**              | grafana_provisioning      |
| compose.yaml                         | compose                   |
| helm/<stack>/**                      | helm_chart                |
| manifest.json                        | manifest (written last)   |
"""

from __future__ import annotations

import importlib

from stackgen.artifact import Artifact

# A fixed list; the output is sorted by path and the manifest added by `build_artifacts`.
# The generators that read the rule files' data (routing_tests, helm_chart) run before
# rule_tests, the largest, so that the data is let go first (memory: see build_artifacts).
GENERATORS = (
    "prometheus_config",
    "prometheus_rules",
    "alertmanager_config",
    "routing_tests",
    "grafana_dashboards",
    "grafana_provisioning",
    "compose",
    "helm_chart",
    "rule_tests",
)


def build_artifacts(model) -> list[Artifact]:
    """Every artifact of `model`, sorted by path, with the manifest last."""
    out: list[Artifact] = []
    from stackgen.generators import prometheus_rules

    for name in GENERATORS:
        if name == "rule_tests":
            prometheus_rules.release(model)  # the rule files' data: no longer read
        module = importlib.import_module(f"stackgen.generators.{name}")
        out.extend(module.generate(model))
    return finish(model, out)


def finish(model, out: list) -> list:
    """`out` (artifacts, or files a build worker made: stackgen/parallel.py) sorted by path,
    with the manifest last; two files of one path are a generator's bug."""
    from stackgen.generators import manifest

    seen: set = set()
    dupes = {a.path for a in out if a.path in seen or seen.add(a.path)}
    if dupes:  # a bug in a generator, never a user error
        raise RuntimeError(f"two generators wrote the same path: {sorted(dupes)}")
    out.sort(key=lambda a: a.path)
    hashes = {a.path: getattr(a, "sha", None) or manifest.sha256(a.data) for a in out}
    out.append(manifest.generate(model, hashes))
    return out
