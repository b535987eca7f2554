"""Check that the whole output can be written before the first byte is: `build` either writes
everything or nothing.

What is checked: the output folder (not empty, not a file, not a link to a missing folder,
writable, or creatable in a writable parent), every output path (no part longer than the file
system allows, no file where a folder is needed and no folder where a file is, no link that
leads out of the output folder), and the folder of every secret placeholder `build` would
create (a spec read from a pipe, `stackgen build <(cat stack.yaml)`, has no such folder).
"""

from __future__ import annotations

import os

from stackgen.problems import ERROR, Position, Problem


def _limit(folder: str, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError):
        return default


def _existing(path: str) -> str:
    """`path` or its nearest ancestor that exists."""
    path = os.path.abspath(path)
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _writable(folder: str) -> bool:
    """Whether a file can be created in `folder`: tried for real (a temporary file, removed
    at once), since permission bits say nothing for root or for /proc and /dev/fd."""
    import tempfile

    if not os.path.isdir(folder):
        return False
    try:
        fd, tmp = tempfile.mkstemp(prefix=".stackgen-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True


def check_output(out_dir: str, artifacts, secret_paths=()) -> list[Problem]:
    """Every reason the output cannot be written, as problems (none: it can)."""
    from stackgen.writer import _inside, safe_relpath

    problems: list[Problem] = []

    def err(check, message, file=out_dir):
        p = Problem(ERROR, check, message, file, Position())
        if p not in problems:  # a folder in the way of several files: said once
            problems.append(p)

    if not out_dir or not out_dir.strip() or "\0" in out_dir:
        err("output/folder", f"the output folder {out_dir!r} is not a folder name; expected a "
            "folder such as `generated`", file="--out")
        return problems
    if os.path.islink(out_dir) and not os.path.exists(out_dir):
        err("output/folder", f"is a symbolic link to {os.readlink(out_dir)!r}, which does not "
            "exist; create that folder or remove the link")
        return problems
    base = _existing(out_dir)
    if not os.path.isdir(base):
        err("output/folder", f"{base} is a file, not a folder; expected a folder (or a name to "
            "create one)")
        return problems
    if not _writable(base):
        err("output/permission", f"cannot write in {base} (permission denied)")
        return problems
    name_max = _limit(base, "PC_NAME_MAX", 255)
    path_max = _limit(base, "PC_PATH_MAX", 4096)
    seen_dirs: set = set()
    for a in artifacts:
        if not safe_relpath(a.path):  # a generator's bug, never the user's
            err("output/path", f"refusing to write {a.path!r}: not a path inside the folder")
            continue
        parts = a.path.split("/")
        long = [p for p in parts if len(p.encode("utf-8")) > name_max]
        if long:
            err("output/name-too-long", f"the file name {long[0][:60]!r}... is "
                f"{len(long[0].encode('utf-8'))} bytes; the file system allows {name_max}; "
                "shorten the spec's group, KPI or stack name it comes from",
                file=os.path.join(out_dir, a.path[:200]))
            continue
        full = os.path.join(out_dir, a.path)
        if len(os.path.abspath(full).encode("utf-8")) >= path_max:
            err("output/name-too-long", f"the path is longer than the file system allows "
                f"({path_max} bytes)", file=full[:200])
            continue
        cur = out_dir
        for i, part in enumerate(parts):
            cur = os.path.join(cur, part)
            last = i == len(parts) - 1
            if cur in seen_dirs:
                continue
            if not os.path.lexists(cur):
                break
            if os.path.islink(cur) and not _inside(out_dir, cur):
                err("output/outside", f"is a symbolic link that leads out of {out_dir} (to "
                    f"{os.path.realpath(cur)}); remove it", file=cur)
                break
            if last and os.path.isdir(cur):
                err("output/conflict", "is a folder where stackgen writes a file; remove it",
                    file=cur)
            elif not last and not os.path.isdir(cur):
                err("output/conflict", "is a file where stackgen needs a folder; remove it",
                    file=cur)
                break
            elif not last:
                seen_dirs.add(cur)
                if not _writable(cur):
                    err("output/permission", "cannot write in this folder (permission denied)",
                        file=cur)
                    break
    for path in secret_paths:
        folder = _existing(os.path.dirname(path))
        if not _writable(folder):
            err("output/secret", f"cannot create the secret placeholder: {folder} is not a "
                "folder stackgen can write in (a spec read from a pipe such as <(cat spec) has "
                "no folder for its secrets); create the secret file, or pass --no-secrets",
                file=path)
            continue
        limit = _limit(folder, "PC_NAME_MAX", 255)
        long = [p for p in os.path.relpath(path, folder).split(os.sep)
                if len(p.encode("utf-8")) > limit]
        if long:
            err("output/name-too-long", f"cannot create the secret placeholder: the name "
                f"{long[0][:60]!r}... is {len(long[0].encode('utf-8'))} bytes; the file "
                f"system allows {limit}; shorten it in the spec, create the file, or pass "
                "--no-secrets", file=path[:200])
        elif len(os.path.abspath(path).encode("utf-8")) >= _limit(folder, "PC_PATH_MAX", 4096):
            err("output/name-too-long", "cannot create the secret placeholder: the path is "
                "longer than the file system allows; shorten it in the spec, create the "
                "file, or pass --no-secrets", file=path[:200])
    return problems
