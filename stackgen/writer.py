"""The only module that touches the output folder: compare, write atomically, clean up."""

from __future__ import annotations

import json
import os
import secrets as _random
import stat
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
    removed: list = field(default_factory=list)  # by write(): files the last build made

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
    """A regular file's bytes (None for anything else: a FIFO or a device would block)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as fh:
            return fh.read()
    except (OSError, ValueError):
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


def _inside(root: str, path: str) -> bool:
    """Whether `path`, with every symbolic link resolved, is inside the folder `root`."""
    root = os.path.realpath(root)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def safe_relpath(rel) -> bool:
    """A manifest path that can only name a file under the output folder: relative, with
    '/' separators, no '.', '..' or empty parts, no control characters."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel:
        return False
    if any(ord(c) < 32 for c in rel):
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def previous_files(out_dir: str) -> dict[str, str | None]:
    """Files the last build wrote, from its manifest: {path: sha256 or None}.

    The manifest is input like any other (a pull request can edit it): anything that is not
    a relative path under `out_dir` is ignored, and a corrupt manifest means no files."""
    raw = _read(os.path.join(out_dir, MANIFEST))
    if raw is None:
        return {}
    try:
        files = json.loads(raw).get("files", {})
    except (ValueError, AttributeError, RecursionError):
        return {}
    if isinstance(files, list):
        files = {p: None for p in files if isinstance(p, str)}
    if not isinstance(files, dict):
        return {}
    return {p: (h if isinstance(h, str) else None) for p, h in files.items() if safe_relpath(p)}


def _removable(out_dir: str, rel: str, sha: str | None) -> bool:
    """Only a regular file under `out_dir` (links resolved) that is still exactly what
    stackgen wrote (its hash in the manifest) is removed."""
    from stackgen.generators.manifest import sha256

    full = os.path.join(out_dir, rel)
    if os.path.islink(full) or not os.path.isfile(full) or not _inside(out_dir, full):
        return False
    data = _read(full)
    return data is not None and sha is not None and sha256(data) == sha


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


def write_files(out_dir: str, artifacts: list) -> tuple[list, list]:
    """(missing, stale): write each of `artifacts` whose file is missing or holds other
    bytes (atomically), in order; the manifest is not among them."""
    missing, stale = [], []
    for a in artifacts:
        have = _read(os.path.join(out_dir, a.path))
        if have is None:
            missing.append(a.path)
        elif have == a.data:
            continue
        else:
            stale.append(a.path)
        _atomic_write(os.path.join(out_dir, a.path), a.data, a.mode)
    return missing, stale


def write(out_dir: str, artifacts: list, worker=None) -> Diff:
    """Write what changed (each file atomically), then remove files the previous build made
    and this one does not, then the manifest last: an interrupted write never leaves a
    manifest that vouches for files it did not write. With a build `worker`
    (stackgen/parallel.py), `artifacts` holds its files as `Planned`: it writes those
    beside this process, and the manifest waits for it."""
    from stackgen.parallel import Planned

    wanted = {a.path for a in artifacts}
    manifest = next((a for a in artifacts if a.path == MANIFEST), None)
    local = [a for a in artifacts if a is not manifest and not isinstance(a, Planned)]
    if worker is not None:
        worker.write()
    try:
        missing, stale = write_files(out_dir, local)
    finally:
        if worker is not None:  # wait for it even when this process failed
            theirs = worker.written()
    if worker is not None:
        missing += theirs[0]
        stale += theirs[1]
    removed = []
    for rel, sha in sorted(previous_files(out_dir).items()):
        full = os.path.join(out_dir, rel)
        if rel not in wanted and _removable(out_dir, rel, sha):
            os.unlink(full)
            removed.append(rel)
            _prune(os.path.dirname(full), out_dir)
    if manifest is not None:
        m, s = write_files(out_dir, [manifest])
        missing += m
        stale += s
    extra = [p for p in _files_under(out_dir) if p not in wanted] if os.path.isdir(out_dir) \
        else []
    return Diff(missing=sorted(missing), stale=sorted(stale), extra=extra, removed=removed)


def _prune(folder: str, root: str) -> None:
    root = os.path.abspath(root)
    folder = os.path.abspath(folder)
    while folder != root and folder.startswith(root + os.sep) and \
            not os.path.islink(folder) and not os.listdir(folder):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = os.path.dirname(folder)


def create_missing_secrets(model) -> list[str]:
    """Create every missing secret file with random content after a fixed prefix (so that
    `check` and `up` recognise the placeholder), mode 0600; return their paths."""
    from stackgen.secret_check import PLACEHOLDER_PREFIX

    made = []
    for sec in model.secrets:
        if os.path.lexists(sec.path):  # a dangling link is the user's to fix, not ours
            continue
        os.makedirs(os.path.dirname(sec.path), exist_ok=True)
        fd = os.open(sec.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(PLACEHOLDER_PREFIX + _random.token_urlsafe(24) + "\n")
        os.chmod(sec.path, 0o600)
        made.append(sec.path)
        ignore = os.path.join(os.path.dirname(sec.path), ".gitignore")
        if not os.path.exists(ignore):
            with open(ignore, "w") as fh:
                fh.write("# Secret values: never commit them.\n*\n!.gitignore\n")
    return made
