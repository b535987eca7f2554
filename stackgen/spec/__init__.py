"""Load a spec: YAML with positions -> JSON Schema -> semantic checks -> model."""

from __future__ import annotations

import hashlib

from stackgen.problems import SpecError


def load(spec_path: str, out_dir: str = "generated", strict: bool = False):
    """Return (model, warnings); raise SpecError carrying every problem if any is an error."""
    from stackgen.spec import mapping, schema, source

    src, problems = source.load_file(spec_path)
    if problems or src.data is None:
        raise SpecError(problems)
    problems = schema.validate(src)
    if problems:
        raise SpecError(problems)
    with open(spec_path, "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    model, problems = mapping.to_model(src, spec_path, out_dir, sha, strict=strict)
    if any(p.is_error for p in problems):
        raise SpecError(problems)
    return model, sorted(problems, key=lambda p: p.sort_key())
