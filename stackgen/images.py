"""Container images: the pins stackgen ships, the newest upstream releases it knows of, and a
parser for image references (`[registry[:port]/]path[:tag][@digest]`).

The grammar follows the distribution project's reference format (docker/distribution
`reference/regexp.go`): a name of lowercase path components, the first of which is a
registry when it holds a `.` or a `:` or is `localhost`; a tag of up to 128 word characters,
dots and dashes; a digest `algorithm:hex`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Upstream releases, as seen in the projects' own repositories on 2026-11-29
# (../shared/design/TOOLS.md; Alertmanager v0.34.0: tag in prometheus/alertmanager, released
# 2026-08-16; Grafana 12.4.5: pinned with its digest by several public projects, 2026-07-15).
CHECKED = "2026-11-29"

DEFAULT_IMAGES = {
    "prometheus": "prom/prometheus:v3.5.5",
    "alertmanager": "prom/alertmanager:v0.34.0",
    "grafana": "grafana/grafana:12.4.5",
    "node_exporter": "prom/node-exporter:v1.12.1",
    "cadvisor": "ghcr.io/google/cadvisor:v0.60.5",
}

# component -> (newest release known, where to look for a newer one, a note)
UPSTREAM = {
    "prometheus": ("v3.5.5", "https://github.com/prometheus/prometheus/releases",
                   "the 3.5 LTS line; v3.14.0 is the newest feature release"),
    "alertmanager": ("v0.34.0", "https://github.com/prometheus/alertmanager/releases", ""),
    "grafana": ("12.4.5", "https://github.com/grafana/grafana/releases",
                "13.x exists; its exact newest tag was not verified"),
    "node_exporter": ("v1.12.1", "https://github.com/prometheus/node_exporter/releases", ""),
    "cadvisor": ("v0.60.5", "https://github.com/google/cadvisor/releases",
                 "images from v0.53.0 on are published at ghcr.io/google/cadvisor only"),
}

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_REGISTRY = re.compile(_DOMAIN)


@dataclass(frozen=True)
class ImageRef:
    registry: str | None  # "registry.local:5000", "ghcr.io"; None: Docker Hub
    path: str  # "prom/prometheus"
    tag: str | None
    digest: str | None


class ImageError(ValueError):
    """An image reference that cannot be used; the message says why and what is expected."""


def parse(ref: str) -> ImageRef:
    """Parse `ref`; raise ImageError for a malformed, untagged or `:latest` reference."""
    if not isinstance(ref, str) or not ref or ref != ref.strip() or any(c.isspace() for c in ref):
        raise ImageError("is not an image reference (empty or with spaces)")
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise ImageError(f"has a malformed digest {digest!r}; expected "
                             "sha256: and 64 hex digits")
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise ImageError(f"has a malformed tag {tag!r}; expected letters, digits, '.', "
                             "'_' and '-' (up to 128), e.g. v3.5.5")
    registry, path = None, name
    first, _, remainder = name.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        if not _REGISTRY.fullmatch(first):
            raise ImageError(f"has a malformed registry {first!r}; expected host[:port]")
        registry, path = first, remainder
    if not _PATH.fullmatch(path):
        raise ImageError(f"has a malformed repository {path!r}; expected lowercase path "
                         "components such as prom/prometheus")
    if tag is None and digest is None:
        raise ImageError("has no tag, so it means the moving tag 'latest'; pin a version "
                         "(name:tag, or name@sha256:...) so that every machine runs the same "
                         "stack")
    if tag == "latest" and digest is None:
        raise ImageError("uses the moving tag 'latest'; pin a version so that every machine "
                         "runs the same stack")
    return ImageRef(registry, path, tag, digest)


def checked(given: dict, error) -> dict:
    """Every component's image (the spec's, else the pin); `error(path, check, message)`
    for each of the spec's that cannot be used."""
    for key, ref in given.items():
        try:
            parse(ref)
        except ImageError as exc:
            error(("stack", "images", key), "images/reference",
                  f"stack.images.{key}: {ref!r} {exc}")
    return {**DEFAULT_IMAGES, **given}


def report(images: dict) -> list[tuple]:
    """(component, pinned, newest known, status, note) for each image; status is `current`,
    `behind` (older than the newest release known), `other` (another repository, or pinned
    by digest only: not comparable)."""
    rows = []
    for comp, ref in images.items():
        newest, _url, note = UPSTREAM[comp]
        try:
            parsed = parse(ref)
        except ImageError:
            rows.append((comp, ref, newest, "other", note))
            continue
        default = parse(DEFAULT_IMAGES[comp])
        same_repo = parsed.path == default.path  # on any registry: a mirror is the same image
        if not same_repo or parsed.tag is None:
            status = "other"
        elif _version(parsed.tag) >= _version(newest):
            status = "current"
        else:
            status = "behind"
        rows.append((comp, ref, newest, status, note))
    return rows


def _version(tag: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", tag.split("-")[0])[:3])
