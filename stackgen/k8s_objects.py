"""Kubernetes objects as the API server would take them: core objects through
kubernetes-validate (strict), Prometheus Operator objects against their CRDs' schemas (in
stackgen/data/crds, unknown fields refused), and metadata (names, labels, annotations) as
the API server checks it. Used by `stackgen check` on the rendered Helm chart."""

from __future__ import annotations

import functools
import re

KUBE_VERSION = "1.30.0"  # the Kubernetes version core objects are validated for
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def find_kubernetes_validate():
    """kubernetes-validate's validator (PyPI kubernetes-validate), or None."""
    try:
        from kubernetes_validate import utils
    except ImportError:
        return None
    return utils


def _closed(schema):
    """An OpenAPI schema that rejects the fields it does not list, wherever it lists some
    (the API server would silently drop them), unless it keeps unknown fields."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in ("properties", "patternProperties"):
        if isinstance(schema.get(key), dict):
            out[key] = {k: _closed(v) for k, v in schema[key].items()}
    for key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = _closed(schema[key])
    if "properties" in schema and "additionalProperties" not in schema and \
            not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=1)
def crd_validators() -> dict:
    """{(apiVersion, kind): validator} from the Prometheus Operator CRDs in stackgen/data/crds."""
    from importlib import resources

    import jsonschema
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = {}
    folder = resources.files("stackgen").joinpath("data", "crds")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        crd = yaml.load(entry.read_text(encoding="utf-8"), Loader=loader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _closed(version["schema"]["openAPIV3Schema"])
            out[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return out


def _name(obj: dict) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def _metadata_errors(obj: dict) -> list[str]:
    """What the API server would refuse in metadata (which a CRD's schema leaves open)."""
    meta = obj.get("metadata") or {}
    errors = []
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        errors.append(f"metadata.name {name!r} is not a DNS subdomain name")
    if namespace is not None and (not isinstance(namespace, str) or len(namespace) > 63 or
                                  not _DNS_LABEL.fullmatch(namespace)):
        errors.append(f"metadata.namespace {namespace!r} is not a DNS label")
    for field in ("labels", "annotations"):
        for key, value in (meta.get(field) or {}).items():
            prefix, _, label = str(key).rpartition("/")
            if (prefix and not _DNS_SUBDOMAIN.fullmatch(prefix)) or len(label) > 63 or \
                    not _LABEL_NAME.fullmatch(label):
                errors.append(f"metadata.{field}: invalid key {key!r}")
            if not isinstance(value, str):
                errors.append(f"metadata.{field}.{key}: {value!r} is not a string")
            elif field == "labels" and (len(value) > 63 or not _LABEL_VALUE.fullmatch(value)):
                errors.append(f"metadata.labels.{key}: invalid value {value!r}")
    return [f"{_name(obj)}: {e}" for e in errors]


def validate_core_objects(objects: list[dict]) -> list[str]:
    """kubernetes-validate (strict) on every object that is not a Prometheus Operator kind."""
    kv = find_kubernetes_validate()
    errors = []
    for obj in objects:
        if (obj.get("apiVersion"), obj.get("kind")) in crd_validators():
            continue
        try:
            kv.validate(obj, KUBE_VERSION, strict=True)
        except kv.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) or "(root)"
            errors.append(f"{_name(obj)}: {path}: {exc.message}")
        except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as exc:
            errors.append(f"{_name(obj)}: {exc.message}")
        errors.extend(_metadata_errors(obj))
    return errors


def validate_operator_objects(objects: list[dict]) -> list[str]:
    """Every Prometheus Operator object against its CRD's schema (unknown fields refused)."""
    errors = []
    for obj in objects:
        validator = crd_validators().get((obj.get("apiVersion"), obj.get("kind")))
        if validator is None:
            continue
        for err in sorted(validator.iter_errors(obj), key=lambda e: str(list(e.absolute_path))):
            path = ".".join(str(p) for p in err.absolute_path) or "(root)"
            errors.append(f"{_name(obj)}: {path}: {err.message[:300]}")
        errors.extend(_metadata_errors(obj))
    return errors
