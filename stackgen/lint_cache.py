"""What `stackgen lint` remembers between runs: the hash of every file a model generates.

Generators are pure functions of the model, so the output of a spec is known from the
model and the code that generates it. After a full lint, the file hashes are kept under
$XDG_CACHE_HOME/stackgen/lint/ (or ~/.cache/...), keyed by the model (its full repr),
the stackgen version and every source and template file's name, size and mtime. A later
lint of the same model with the same code compares the files on disk with those hashes
instead of generating everything again (which imports grafanalib, jinja2 and promql_parser
and builds every artifact: most of lint's time). The spec itself is always loaded and
validated (by jsonschema unless the schema passed the very same data before:
stackgen.spec.schema_cache). STACKGEN_NO_CACHE=1 turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

VERSION = 1


def _enabled() -> bool:
    return os.environ.get("STACKGEN_NO_CACHE", "") in ("", "0")


def _folder() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "stackgen", "lint")


def _code_fingerprint() -> str:
    import stackgen

    h = hashlib.sha256()
    roots = [os.path.dirname(os.path.abspath(stackgen.__file__))]
    try:
        import stackgen.templates as t

        roots.append(os.path.dirname(os.path.abspath(t.__file__)))
    except ImportError:
        pass
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".py", ".j2", ".json", ".yaml", ".tpl", ".md")):
                    st = os.stat(os.path.join(folder, name))
                    h.update(f"{os.path.relpath(os.path.join(folder, name), root)}|"
                             f"{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def key(model) -> str:
    from stackgen import __version__

    h = hashlib.sha256(f"{VERSION}|{__version__}|{_code_fingerprint()}|".encode())
    h.update(repr(model).encode("utf-8"))
    return h.hexdigest()


def lookup(model) -> tuple[str, dict | None]:
    """(the model's key, {path: sha256} of its files, or None when unknown)."""
    if not _enabled():
        return "", None
    k = key(model)
    try:
        with open(os.path.join(_folder(), f"{k}.json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return k, None
    files = data.get("files") if isinstance(data, dict) else None
    return k, files if isinstance(files, dict) else None


def remember(k: str, artifacts) -> None:
    """Keep the hashes of `artifacts` under key k (quietly skipped if the cache is unwritable)."""
    if not k or not _enabled():
        return
    files = {a.path: hashlib.sha256(a.data).hexdigest() for a in artifacts}
    folder = _folder()
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".lint-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"files": files}, fh)
        os.replace(tmp, os.path.join(folder, f"{k}.json"))
    except OSError:
        pass


def diff(out_dir: str, files: dict):
    """writer.diff's answer for the files whose hashes are `files`."""
    from stackgen import writer

    d = writer.Diff()
    for path, sha in files.items():
        try:
            with open(os.path.join(out_dir, path), "rb") as fh:
                have = hashlib.sha256(fh.read()).hexdigest()
        except OSError:
            d.missing.append(path)
            continue
        (d.unchanged if have == sha else d.stale).append(path)
    if os.path.isdir(out_dir):
        d.extra = [p for p in writer._files_under(out_dir) if p not in files]
    return d
