"""`stackgen init`: a starter spec, its JSON Schema for editors, a root docker-compose.yml
that includes the generated one, and git-ignored secret placeholders."""

from __future__ import annotations

import os
import re

SCHEMA_FILE = "stackgen.schema.json"  # beside the spec: its first line names it
COMPOSE_FILE = "docker-compose.yml"  # in the current folder: `docker compose up` finds it

ROOT_COMPOSE = """\
# The monitoring stack: `stackgen build && docker compose up`.
# The services live in {out}/compose.yaml, which `stackgen build` writes from {spec};
# this file only pulls it in, so edit the spec, not the services.
include:
  - {out}/compose.yaml
"""


class InitError(Exception):
    pass


def init(spec: str, name: str, force: bool = False, out_dir: str = "generated") -> list[str]:
    """Write the starter files; return what was written ("path" or "path (kept: ...)")."""
    from stackgen import writer
    from stackgen.problems import SpecError, render_text
    from stackgen.spec import load
    from stackgen.spec.schema import schema_text
    from stackgen.templating import render

    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise InitError(f"invalid stack name {name!r}: expected [a-z][a-z0-9-]*")
    if os.path.exists(spec) and not force:
        raise InitError(f"{spec} exists; pass --force to overwrite it")
    os.makedirs(os.path.dirname(os.path.abspath(spec)), exist_ok=True)
    with open(spec, "w", encoding="utf-8") as fh:
        fh.write(render("init/stack.yaml.j2", name=name))
    try:
        model, _ = load(spec)
    except SpecError as exc:  # the starter itself is broken: a bug, say so plainly
        raise InitError("the starter spec does not validate:\n" + render_text(exc.problems))
    made = [spec]
    schema_path = os.path.join(os.path.dirname(spec), SCHEMA_FILE)
    made.append(_write(schema_path, schema_text(), force))
    rel_out = os.path.relpath(os.path.abspath(out_dir)).replace(os.sep, "/")
    made.append(_write(COMPOSE_FILE, ROOT_COMPOSE.format(
        out=rel_out, spec=os.path.relpath(spec).replace(os.sep, "/")), force))
    return made + writer.create_missing_secrets(model)


def _write(path: str, text: str, force: bool) -> str:
    if os.path.exists(path) and not force:
        return f"{path} (kept: it exists; --force overwrites it)"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
