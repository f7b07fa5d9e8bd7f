"""Schema validation of every rendered object.

Core kinds: the strict schemas that kubernetes-validate ships, at the newest Kubernetes minor
not newer than the inventory's. Validators are built once per kind and reused (calling
kubernetes_validate.validate() per object re-reads the definitions file every time).
Custom resources: strict JSON schemas in kubeconform's layout `<group>/<kind>_<version>.json`,
looked up in each schema directory in order ($DOMUM_CRD_SCHEMAS, then the cache that
`inv tools.install` fills). An object with no schema anywhere is an error: never passed silently.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ... import settings
from .core import World
from .model import Finding, Obj

MAX_ERRORS = 5


@functools.lru_cache(maxsize=8)
def _k8s_schema_dir(k8s_version: str) -> Path | None:
    """The kubernetes-validate strict schema dir for the newest minor <= k8s_version."""
    import importlib.resources

    from packaging.version import Version

    root = Path(str(importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"))
    want = Version(".".join(k8s_version.lstrip("v").split(".")[:2]))
    best: tuple[Version, Path] | None = None
    for d in root.iterdir():
        m = re.fullmatch(r"v(\d+\.\d+)\.\d+-local-strict", d.name)
        if m and Version(m.group(1)) <= want and (best is None or Version(m.group(1)) > best[0]):
            best = (Version(m.group(1)), d)
    return best[1] if best else None


@functools.lru_cache(maxsize=8)
def _k8s_registry(schema_dir: Path) -> Any:
    from referencing import Registry, Resource

    defs = json.loads((schema_dir / "_definitions.json").read_text())
    return Resource.from_contents(defs) @ Registry()


@functools.lru_cache(maxsize=512)
def _k8s_validator(schema_dir: Path, filename: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Resource

    path = schema_dir / filename
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    registry = Resource.from_contents(schema) @ _k8s_registry(schema_dir)
    return Draft202012Validator(schema, registry=registry)


def k8s_filename(api_version: str, kind: str) -> str:
    """kubernetes-validate's naming: 'rbac.authorization.k8s.io/v1' Role -> 'role-rbac-v1.json'."""
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{api}.json"


@functools.lru_cache(maxsize=512)
def _crd_validator(path: Path) -> Any:
    from jsonschema import Draft7Validator
    from jsonschema.validators import validator_for

    schema = json.loads(path.read_text())
    return validator_for(schema, default=Draft7Validator)(schema)


def crd_schema_path(dirs: list[Path], group: str, kind: str, version: str) -> Path | None:
    for d in dirs:
        p = d / group / f"{kind.lower()}_{version}.json"
        if p.is_file():
            return p
    return None


def _is_k8s_group(group: str) -> bool:
    return group == "" or "." not in group or group.endswith(".k8s.io")


def validator_for_obj(obj: Obj, k8s_version: str, dirs: list[Path]) -> tuple[Any, str]:
    """(validator or None, which schema it is, for messages)."""
    version = obj.api_version.rsplit("/", 1)[-1]
    if _is_k8s_group(obj.group):
        sdir = _k8s_schema_dir(k8s_version)
        if sdir is not None:
            v = _k8s_validator(sdir, k8s_filename(obj.api_version, obj.kind))
            if v is not None:
                return v, f"Kubernetes {sdir.name.split('-')[0]} (kubernetes-validate, strict)"
    path = crd_schema_path(dirs, obj.group, obj.kind, version)
    if path is not None:
        return _crd_validator(path), f"{obj.group}/{path.name}"
    return None, ""


def _path(err: Any) -> str:
    return ".".join(str(p) for p in err.absolute_path) or "(top level)"


def check_schemas(world: World) -> Iterator[Finding]:
    s = world.settings
    missing: dict[tuple[str, str], list[Obj]] = {}
    for obj in world.objects:
        if not obj.api_version or not obj.kind:
            yield obj.finding("schema", "no apiVersion/kind: not a Kubernetes object")
            continue
        validator, which = validator_for_obj(obj, s.k8s_version, s.schema_dirs)
        if validator is None:
            missing.setdefault((obj.api_version, obj.kind), []).append(obj)
            continue
        doc = {k: v for k, v in obj.doc.items() if k != "sops"}  # Flux decrypts first
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
        for err in errors[:MAX_ERRORS]:
            msg = err.message
            if err.validator == "additionalProperties":
                msg += " (the schema is strict: check the spelling against the API)"
            yield obj.finding("schema", f"{_path(err)}: {msg} [schema: {which}]")
        if len(errors) > MAX_ERRORS:
            yield obj.finding("schema", f"... and {len(errors) - MAX_ERRORS} more schema errors")
    if missing and not any(d.is_dir() and any(d.glob("*/*.json")) for d in s.schema_dirs):
        # No CRD schemas at all (a fresh clone): one line, as for the Talos schema; an error
        # under CI (CI=true), where unchecked objects must not pass. With schemas present, a
        # kind without one is an error below.
        kinds = sorted({kind for _, kind in missing})
        yield Finding(
            s.rel(s.tree),
            "-",
            "schema",
            f"custom resources not schema-checked ({len(kinds)} kinds: {', '.join(kinds[:6])}"
            f"{', ...' if len(kinds) > 6 else ''}): run `inv tools.install` (or set DOMUM_CRD_SCHEMAS)",
            "error" if settings.in_ci() else "warning",
        )
        return
    where = ", ".join(str(d) for d in s.schema_dirs) or "no CRD schema directory"
    for (api, kind), objs in sorted(missing.items()):
        group = api.rsplit("/", 1)[0] if "/" in api else ""
        version = api.rsplit("/", 1)[-1]
        for obj in objs:
            yield obj.finding(
                "schema",
                f"no schema for {kind} {api}: looked for {group}/{kind.lower()}_{version}.json in "
                f"{where} and in kubernetes-validate {s.k8s_version}; run `inv tools.install` "
                "or set DOMUM_CRD_SCHEMAS (an unknown apiVersion is also reported here)",
            )
