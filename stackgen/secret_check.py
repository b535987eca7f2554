"""Secret files that still hold the placeholder `stackgen build` created.

`build` fills a missing secret file with `PLACEHOLDER_PREFIX` + random text, so that the
stack starts; Alertmanager then sends to a "URL" that is no URL and Grafana keeps a password
nobody knows. `stackgen check` (through `placeholder_steps`) and `stackgen up` say which
files still hold it.
"""

from __future__ import annotations

import os

PLACEHOLDER_PREFIX = "stackgen-placeholder-"


def is_placeholder(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(len(PLACEHOLDER_PREFIX)) == PLACEHOLDER_PREFIX
    except OSError:
        return False


def placeholders(paths) -> list[str]:
    return [p for p in paths if is_placeholder(p)]


def compose_secret_files(out_dir: str) -> list[str]:
    """The secret files the generated Compose stack mounts (paths as found from here)."""
    import yaml

    path = os.path.join(out_dir, "compose.yaml")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    files = [s.get("file") for s in (data.get("secrets") or {}).values() if isinstance(s, dict)]
    return sorted(os.path.normpath(os.path.join(out_dir, f)) for f in files if f)


def placeholder_steps(out_dir: str) -> list:
    from stackgen.check import Step

    files = compose_secret_files(out_dir)
    if not files:
        return []
    found = placeholders(files)
    if not found:
        return [Step(f"secret files hold values, not build's placeholder ({len(files)} files)",
                     True)]
    return [Step(f"secret files: {len(found)} of {len(files)} still hold the placeholder that "
                 "`stackgen build` created", True,
                 note="write the real values before the stack sends anything (a placeholder "
                      "is no Slack URL, webhook URL, routing key or password): "
                      + ", ".join(found))]
