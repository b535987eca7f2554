"""`stackgen docs`: the reference pages travel with the package, so a pip user reads them
offline (`docs/*.md` is installed as `stackgen/docs/`; a source checkout reads `docs/`)."""

from __future__ import annotations

import os

TOPICS = {"spec": "the KPI spec: every key, unit and default",
          "runtime": "`up`, `demo` and `smoke`: the native run and its checks",
          "helm": "the Helm chart for kube-prometheus-stack"}


def path(topic: str) -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (os.path.join(here, "docs"), os.path.join(os.path.dirname(here), "docs")):
        candidate = os.path.join(folder, f"{topic}.md")
        if os.path.isfile(candidate):
            return candidate
    return None
