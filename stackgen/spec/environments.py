"""`environments:`: one spec, several deployments.

Each environment is a partial spec deep-merged onto the base (the spec without its
`environments` key): mappings merge key by key, lists and scalars replace, and `null` removes
a key. The merged spec is then validated and mapped like any spec, so every error of an
environment is found; the merged `Source` keeps each value's position, so an error about a
value the overlay set points at the overlay's own line, and one about a base value at the
base's line.
"""

from __future__ import annotations

import copy
import re

from stackgen.problems import ERROR, Problem
from stackgen.spec.schema import did_you_mean
from stackgen.spec.source import Source

KEY = "environments"
# Keys an overlay may not set: they describe the spec itself, not a deployment.
NOT_IN_OVERLAY = ("version", KEY)


def names(src: Source) -> list[str]:
    """The environments' names, in spec order ([] when the spec has none)."""
    envs = src.data.get(KEY) if isinstance(src.data, dict) else None
    return [str(k) for k in envs] if isinstance(envs, dict) else []


def check(src: Source) -> list[Problem]:
    """Problems of the `environments` section itself (the schema checks names and types)."""
    out = []
    for env in names(src):
        overlay = src.data[KEY][env]
        if not isinstance(overlay, dict):
            continue
        for key in NOT_IN_OVERLAY:
            if key in overlay:
                out.append(src.problem((KEY, env, key), "environments/key",
                                       f"environments.{env}: `{key}` cannot differ between "
                                       "environments; set it once at the top of the spec",
                                       at_key=True))
    return out


def usable(src: Source, env: str) -> bool:
    """Whether environment `env` can be merged (`check` and the schema report why not)."""
    overlay = src.data[KEY][env]
    return bool(re.fullmatch(r"[a-z][a-z0-9-]*", env)) and (
        overlay is None or (isinstance(overlay, dict)
                            and not any(k in overlay for k in NOT_IN_OVERLAY)))


def select(src: Source, wanted: str | None) -> tuple[list[str], list[Problem]]:
    """The environments to build: all, or the one `--env` names (an unknown name is an
    error with a did-you-mean; so is `--env` on a spec without environments)."""
    envs = names(src)
    if wanted is None:
        return envs, []
    if not envs:
        return [], [Problem(ERROR, "environments/unknown",
                            f"--env {wanted}: the spec has no `environments:`; build it "
                            "without --env", src.file)]
    if wanted not in envs:
        return [], [Problem(ERROR, "environments/unknown",
                            f"--env {wanted}: no such environment{did_you_mean(wanted, envs)} "
                            f"(environments: {', '.join(envs)})", src.file,
                            src.key_pos((KEY,)))]
    return [wanted], []


class _Merge:
    def __init__(self, src: Source, env: str):
        self.src = src
        self.prefix = (KEY, env)
        self.values = {p: v for p, v in src.values.items() if p[:1] != (KEY,)}
        self.keys = {p: v for p, v in src.keys.items() if p[:1] != (KEY,)}

    def _drop(self, path: tuple) -> None:
        n = len(path)
        for index in (self.values, self.keys):
            for p in [p for p in index if p[:n] == path]:
                del index[p]

    def _take(self, path: tuple) -> None:
        """Positions of the overlay's value at `path` (and everything under it)."""
        src_path = self.prefix + path
        n = len(src_path)
        for index, theirs in ((self.values, self.src.values), (self.keys, self.src.keys)):
            for p, pos in theirs.items():
                if p[:n] == src_path:
                    index[path + p[n:]] = pos

    def into(self, base: dict, overlay: dict, path: tuple = ()) -> None:
        for k, v in overlay.items():
            p = path + (k,)
            if v is None:
                base.pop(k, None)
                self._drop(p)
            elif isinstance(v, dict) and isinstance(base.get(k), dict):
                self.into(base[k], v, p)
            else:
                base[k] = copy.deepcopy(v)
                self._drop(p)
                self._take(p)


def merged(src: Source, env: str) -> Source:
    """The spec of environment `env`: the base with the overlay merged onto it.

    Unless the overlay sets `stack.environment`, it is the environment's name (the `env`
    external label of its Prometheus, so that its alerts say where they come from)."""
    base = {k: copy.deepcopy(v) for k, v in src.data.items() if k != KEY}
    overlay = src.data[KEY][env] or {}
    m = _Merge(src, env)
    m.into(base, overlay)
    stack = base.get("stack")
    if isinstance(stack, dict) and "environment" not in (overlay.get("stack") or {}):
        stack["environment"] = env
        m.values[("stack", "environment")] = src.key_pos((KEY, env))
        m.keys[("stack", "environment")] = src.key_pos((KEY, env))
    return Source(file=src.file, data=base, values=m.values, keys=m.keys)


def distinct_labels(src: Source, models: list) -> list[Problem]:
    """Two environments with the same `env` label would mix their alerts and series."""
    out, seen = [], {}
    for env, model in models:
        label = model.stack.environment
        if label in seen:
            path = (KEY, env, "stack", "environment")
            out.append(src.problem(path if path in src.values else (KEY, env),
                                   "environments/label",
                                   f"environments.{env}: stack.environment {label!r} is also "
                                   f"environment {seen[label]!r}'s; each environment needs "
                                   "its own `env` label", at_key=path not in src.values))
        seen.setdefault(label, env)
    return out


def stack_folders(out_dir: str, env: str | None = None) -> tuple[list[str], str | None]:
    """The generated stacks in `out_dir` for `stackgen check`: `out_dir` itself, or each
    `out_dir/<environment>/` (only `env`'s with --env); or ([], why not)."""
    import os

    marker = os.path.join("prometheus", "prometheus.yml")
    envs = sorted(d for d in (os.listdir(out_dir) if os.path.isdir(out_dir) else [])
                  if os.path.isfile(os.path.join(out_dir, d, marker)))
    if env is not None:
        if env in envs:
            return [os.path.join(out_dir, env)], None
        if envs:
            return [], (f"--env {env}: {out_dir} holds no environment {env!r}"
                        f"{did_you_mean(env, envs)} (environments: {', '.join(envs)})")
        return [], (f"--env {env}: {out_dir} holds no environments; run `stackgen build` on "
                    "a spec with `environments:` first")
    if os.path.isfile(os.path.join(out_dir, marker)):
        return [out_dir], None
    if envs:
        return [os.path.join(out_dir, e) for e in envs], None
    return [], (f"{out_dir} holds no generated stack (no prometheus/prometheus.yml, nor "
                f"<environment>/prometheus/prometheus.yml); run `stackgen build --out "
                f"{out_dir}` first")


def materialize(spec_path: str, env: str, folder: str) -> tuple[str, list[Problem]]:
    """Write environment `env` of the spec as a spec of its own into `folder` (for the
    smoke test, which rewrites a spec's data); return its path, or problems."""
    import os

    import yaml

    from stackgen.spec import source

    src, problems = source.load_file(spec_path)
    if problems or src.data is None:
        return spec_path, problems
    chosen, problems = select(src, env)
    if problems:
        return spec_path, problems
    path = os.path.join(folder, os.path.basename(spec_path))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# environment {env} of {spec_path}, merged by stackgen\n")
        yaml.safe_dump(merged(src, chosen[0]).data, fh, sort_keys=False, allow_unicode=True)
    return path, []
