"""`stackgen init`: a starter spec and its git-ignored secret placeholders."""

from __future__ import annotations

import os
import re


class InitError(Exception):
    pass


def init(spec: str, name: str, force: bool = False) -> list[str]:
    from stackgen import writer
    from stackgen.problems import SpecError, render_text
    from stackgen.spec import load
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
    return [spec, *writer.create_missing_secrets(model)]
