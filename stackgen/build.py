"""The work behind `build` and `lint`: spec -> model -> artifacts -> disk (or a comparison)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from stackgen.problems import ERROR, WARNING, Position, Problem

DEFAULT_SPEC = "specs/stack.yaml"
DEFAULT_OUT = "generated"


@dataclass
class Result:
    problems: list = field(default_factory=list)
    written: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    secrets_created: list = field(default_factory=list)
    artifacts: list = field(default_factory=list)
    diffs: list = field(default_factory=list)  # unified diffs of stale files (lint --diff)

    @property
    def failed(self) -> bool:
        return any(p.is_error for p in self.problems)


def compile_spec(spec: str, out_dir: str, strict: bool = False):
    """(model, artifacts, warnings); raises SpecError with every problem of a bad spec."""
    from stackgen.generators import build_artifacts
    from stackgen.spec import load

    model, warnings = load(spec, out_dir=out_dir, strict=strict)
    return model, build_artifacts(model), warnings


def _load_all(spec: str, out_dir: str, strict: bool = False, env: str | None = None):
    """([(folder, model)], warnings): the spec's one stack in `out_dir`, or each of its
    environments (or only `env`) in `out_dir/<environment>`. Raises SpecError."""
    import os

    from stackgen.spec import load_all

    loaded, warnings = [], []
    for name, model, w in load_all(spec, out_dir, strict, env):
        loaded.append((os.path.join(out_dir, name) if name else out_dir, model))
        warnings += [p for p in w if p not in warnings]
    return loaded, warnings


def build(spec: str, out_dir: str, strict=False, create_secrets=True, env=None) -> Result:
    from stackgen import parallel
    from stackgen.generators import build_artifacts
    from stackgen.problems import SpecError

    try:
        loaded, warnings = _load_all(spec, out_dir, strict, env)
    except SpecError as exc:
        return Result(problems=exc.problems)
    workers = {}  # folder -> the forked worker of a large stack (stackgen/parallel.py)
    found = []
    for folder, model in loaded:
        if parallel.usable(model):  # each environment's worker waits for every check
            artifacts, workers[folder] = parallel.build_artifacts(model, folder)
        else:
            artifacts = build_artifacts(model)
        found.append((folder, model, artifacts))
    try:
        return _write(found, warnings, out_dir, create_secrets, strict, workers)
    finally:
        for worker in workers.values():
            worker.stop()  # a no-op for a worker that is done


def _write(found, warnings, out_dir, create_secrets, strict, workers) -> Result:
    from stackgen import writer
    from stackgen.outplan import check_output

    if create_secrets and not strict:  # build creates them: saying they are missing is noise
        warnings = [w for w in warnings if w.check != "secrets/missing"]
    # all or nothing: check every folder, path and secret placeholder, then write
    problems = check_output(out_dir, [])  # the folder itself (environments go below it)
    secrets = []
    for folder, model, artifacts in found:
        missing = [s.path for s in model.secrets if create_secrets and
                   not os.path.lexists(s.path) and s.path not in secrets]
        secrets += missing
        problems += [p for p in check_output(folder, artifacts, missing) if p not in problems]
    if problems:
        return Result(problems=warnings + problems)
    res = Result(problems=warnings)
    try:
        for folder, model, artifacts in found:
            d = writer.write(folder, artifacts, workers.pop(folder, None))
            where = _prefix(out_dir, folder)
            res.artifacts += artifacts
            res.written += [where + p for p in sorted(set(d.missing) | set(d.stale))]
            res.removed += [where + p for p in d.removed]
            if create_secrets:
                res.secrets_created += [s for s in writer.create_missing_secrets(model)
                                        if s not in res.secrets_created]
    except OSError as exc:  # the disk filled up, a folder changed under us...
        where = exc.filename or out_dir
        return Result(problems=warnings + [Problem(
            ERROR, "output/write", f"writing failed: {exc.strerror or exc}", str(where))])
    return res


def _prefix(out_dir: str, folder: str) -> str:
    import os

    rel = os.path.relpath(folder, out_dir)
    return "" if rel == "." else rel.replace(os.sep, "/") + "/"


def lint(spec: str, out_dir: str, strict=False, env=None, diffs=False) -> Result:
    from stackgen import lint_cache, writer
    from stackgen.problems import SpecError

    if not out_dir:
        return Result(problems=[Problem(ERROR, "output/folder", "the output folder '' is not "
                                        "a folder name; expected a folder such as `generated`",
                                        "--out", Position())])
    try:
        loaded, warnings = _load_all(spec, out_dir, strict, env)
    except SpecError as exc:
        return Result(problems=exc.problems)
    problems = list(warnings)
    res = Result(problems=problems)

    def finding(path, check, message):
        problems.append(Problem(ERROR, check, message, path, Position()))

    hint = f"run `stackgen build {spec}` and commit the result"
    found = []
    for folder, model in loaded:
        # the model's file hashes from an earlier lint, unless diffs need the contents
        key, known = lint_cache.lookup(model) if not diffs else ("", None)
        if known is not None:
            found.append((folder, model, []))
            d = lint_cache.diff(folder, known)
        else:
            from stackgen.generators import build_artifacts

            artifacts = build_artifacts(model)
            found.append((folder, model, artifacts))
            d = writer.diff(folder, artifacts)
            lint_cache.remember(key, artifacts)
        artifacts = found[-1][2]
        res.artifacts += artifacts
        if d.missing and not (d.stale or d.unchanged or d.extra):
            finding(f"{folder}/", "lint/missing", f"holds none of the {len(d.missing)} files "
                    f"the spec generates (never built); {hint}")
            continue
        for path in d.stale:
            finding(f"{folder}/{path}", "lint/stale", f"differs from what the spec generates "
                    f"(edited by hand, or the spec changed without a rebuild); {hint}")
            if diffs:
                res.diffs.append(writer.unified_diff(folder, path, artifacts))
        for path in d.missing:
            finding(f"{folder}/{path}", "lint/missing",
                    f"is generated by the spec but missing; {hint}")
        for path in d.extra:
            finding(f"{folder}/{path}", "lint/extra",
                    f"is not generated by the spec; remove it or {hint}")
    if env is None and found and found[0][1].env:  # files beside the environments' folders
        from stackgen.writer import files_outside

        for path in files_outside(out_dir, [m.env for _, m, _ in found]):
            finding(f"{out_dir}/{path}", "lint/extra", f"is not generated by the spec (its "
                    f"environments are built into {out_dir}/<environment>/); remove it")
    return res


def strict_warnings(problems: list) -> list:
    return [Problem(ERROR, p.check, p.message, p.file, p.pos) if p.severity == WARNING else p
            for p in problems]
