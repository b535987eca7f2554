"""The only module that touches the output folder: compare, write atomically, clean up."""

from __future__ import annotations

import json
import os
import secrets as _random
import tempfile
from dataclasses import dataclass, field

from stackgen.artifact import Artifact
from stackgen.generators.manifest import PATH as MANIFEST


@dataclass
class Diff:
    missing: list = field(default_factory=list)  # generated, not on disk
    stale: list = field(default_factory=list)  # on disk with other content
    extra: list = field(default_factory=list)  # on disk, not generated
    unchanged: list = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def _files_under(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            out.append(os.path.relpath(full, root).replace(os.sep, "/"))
    return out


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def diff(out_dir: str, artifacts: list[Artifact]) -> Diff:
    d = Diff()
    wanted = {a.path: a for a in artifacts}
    for a in artifacts:
        have = _read(os.path.join(out_dir, a.path))
        if have is None:
            d.missing.append(a.path)
        elif have != a.data:
            d.stale.append(a.path)
        else:
            d.unchanged.append(a.path)
    if os.path.isdir(out_dir):
        d.extra = [p for p in _files_under(out_dir) if p not in wanted]
    return d


def unified_diff(out_dir: str, path: str, artifacts: list[Artifact]) -> str:
    """What `build` would change in `path`: a unified diff, on disk -> generated."""
    import difflib

    want = next(a for a in artifacts if a.path == path).content
    have = (_read(os.path.join(out_dir, path)) or b"").decode("utf-8", errors="replace")
    return "".join(difflib.unified_diff(
        have.splitlines(keepends=True), want.splitlines(keepends=True),
        fromfile=f"{out_dir}/{path} (on disk)", tofile=f"{out_dir}/{path} (generated)"))


def files_outside(out_dir: str, folders: list[str]) -> list[str]:
    """Files under `out_dir` that are in none of its sub-folders `folders`."""
    if not os.path.isdir(out_dir):
        return []
    return [p for p in _files_under(out_dir) if p.split("/", 1)[0] not in folders]


def previous_files(out_dir: str) -> list[str]:
    """Files the last build wrote, from its manifest (nothing if there is none)."""
    raw = _read(os.path.join(out_dir, MANIFEST))
    if raw is None:
        return []
    try:
        files = json.loads(raw).get("files", {})
    except (ValueError, AttributeError):
        return []
    return [p for p in files if isinstance(p, str) and ".." not in p.split("/")]


def _atomic_write(path: str, data: bytes, mode: int) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".stackgen-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(out_dir: str, artifacts: list[Artifact]) -> Diff:
    """Write what changed (each file atomically), then remove files the previous build made
    and this one does not, then the manifest last: an interrupted write never leaves a
    manifest that vouches for files it did not write."""
    d = diff(out_dir, artifacts)
    wanted = {a.path for a in artifacts}
    changed = set(d.missing) | set(d.stale)
    manifest = None
    for a in artifacts:
        if a.path == MANIFEST:
            manifest = a
        elif a.path in changed:
            _atomic_write(os.path.join(out_dir, a.path), a.data, a.mode)
    removed = []
    for rel in previous_files(out_dir):
        full = os.path.join(out_dir, rel)
        if rel not in wanted and os.path.isfile(full):
            os.unlink(full)
            removed.append(rel)
            _prune(os.path.dirname(full), out_dir)
    if manifest is not None and manifest.path in changed:
        _atomic_write(os.path.join(out_dir, manifest.path), manifest.data, manifest.mode)
    d.extra = [p for p in d.extra if p not in removed]
    return d


def _prune(folder: str, root: str) -> None:
    root = os.path.abspath(root)
    folder = os.path.abspath(folder)
    while folder != root and folder.startswith(root) and not os.listdir(folder):
        os.rmdir(folder)
        folder = os.path.dirname(folder)


def create_missing_secrets(model) -> list[str]:
    """Create every missing secret file with random content, mode 0600; return their paths."""
    made = []
    for sec in model.secrets:
        if os.path.exists(sec.path):
            continue
        os.makedirs(os.path.dirname(sec.path), exist_ok=True)
        fd = os.open(sec.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(_random.token_urlsafe(24) + "\n")
        os.chmod(sec.path, 0o600)
        made.append(sec.path)
        ignore = os.path.join(os.path.dirname(sec.path), ".gitignore")
        if not os.path.exists(ignore):
            with open(ignore, "w") as fh:
                fh.write("# Secret values: never commit them.\n*\n!.gitignore\n")
    return made
