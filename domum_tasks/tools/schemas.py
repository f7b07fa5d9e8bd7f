"""Schemas for users: the pinned Talos config schema and the CRD schemas of the tree's kinds.

`inv tools.install` downloads them, each verified against its sha256 pin (tools/schema_pins.py),
into `$DOMUM_CACHE_DIR/schemas` (else the user cache dir, platformdirs `domum/schemas`):
    talos/talos-config.<v1.13>.schema.json    from siderolabs/talos at the pinned tag
    crd/<group>/<kind>_<version>.json         from datreeio/CRDs-catalog (kubeconform's layout)
`inv check` and `inv flux.validate` read them from there; $DOMUM_TALOS_SCHEMA_DIR and
$DOMUM_CRD_SCHEMAS point elsewhere (tests and CI use the reference copies).
$DOMUM_SCHEMAS_BASE_URL replaces https://raw.githubusercontent.com (a mirror; tests use loopback).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from ..plan import Local, Plan
from .schema_pins import CRD_CATALOG_COMMIT, CRD_SCHEMAS, TALOS_SCHEMAS

RAW = "https://raw.githubusercontent.com"
TALOS_SCHEMA_PATH = "pkg/machinery/config/schemas/config.schema.json"
# Kinds whose schemas come with Kubernetes itself (kubernetes-validate ships them).
_CORE_GROUP = re.compile(r"^([a-z0-9-]+|[a-z0-9.-]+\.k8s\.io)$")
_K8S_CRD_GROUPS = ("gateway.networking.k8s.io", "snapshot.storage.k8s.io")


def cache_root() -> Path:
    return settings.cache_dir() / "schemas"


def crd_cache_dir() -> Path:
    return cache_root() / "crd"


def talos_cache_dir() -> Path:
    return cache_root() / "talos"


def talos_schema_name(talos_version: str) -> str:
    """'v1.13.9' -> 'talos-config.v1.13.schema.json' (one schema per minor)."""
    return f"talos-config.{'.'.join(talos_version.split('.')[:2])}.schema.json"


def _base() -> str:
    return settings.schemas_base_url(RAW)


@dataclass(frozen=True)
class SchemaFile:
    name: str  # what it is, for messages
    url: str
    sha256: str
    dest: Path

    def to_args(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url, "sha256": self.sha256, "dest": str(self.dest)}


def talos_schema(talos_version: str) -> SchemaFile | None:
    digest = TALOS_SCHEMAS.get(talos_version)
    if digest is None:
        return None
    url = f"{_base()}/siderolabs/talos/{talos_version}/{TALOS_SCHEMA_PATH}"
    dest = talos_cache_dir() / talos_schema_name(talos_version)
    return SchemaFile(f"Talos {talos_version} config schema", url, digest, dest)


def crd_schema(key: str) -> SchemaFile | None:
    digest = CRD_SCHEMAS.get(key)
    if digest is None:
        return None
    url = f"{_base()}/datreeio/CRDs-catalog/{CRD_CATALOG_COMMIT}/{key}"
    return SchemaFile(f"CRD schema {key}", url, digest, crd_cache_dir() / key)


def schema_key(api_version: str, kind: str) -> str | None:
    """'helm.toolkit.fluxcd.io/v2', 'HelmRelease' -> 'helm.toolkit.fluxcd.io/helmrelease_v2.json';
    None for core Kubernetes kinds."""
    if "/" not in api_version:
        return None
    group, version = api_version.rsplit("/", 1)
    if _CORE_GROUP.match(group) and group not in _K8S_CRD_GROUPS:
        return None
    return f"{group}/{kind.lower()}_{version}.json"


def kinds_in_tree(tree: Path) -> set[str]:
    """Schema keys of the custom resources the tree's YAML files declare (plus Flux's own kinds,
    which every tree has once bootstrapped)."""
    import yaml

    keys = {
        "kustomize.toolkit.fluxcd.io/kustomization_v1.json",
        "source.toolkit.fluxcd.io/gitrepository_v1.json",
    }
    for path in tree.rglob("*.y*ml") if tree.is_dir() else ():
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            continue
        for d in docs:
            if isinstance(d, dict) and isinstance(d.get("apiVersion"), str) and d.get("kind"):
                key = schema_key(d["apiVersion"], str(d["kind"]))
                if key:
                    keys.add(key)
    return keys


def wanted(talos_version: str, tree: Path) -> tuple[list[SchemaFile], list[str]]:
    """(pinned schema files to have, kinds of the tree that have no pin)."""
    files: list[SchemaFile] = []
    unpinned: list[str] = []
    talos = talos_schema(talos_version)
    if talos is None:
        unpinned.append(f"Talos {talos_version} config schema")
    else:
        files.append(talos)
    for key in sorted(kinds_in_tree(tree)):
        sf = crd_schema(key)
        if sf is None:
            unpinned.append(key)
        else:
            files.append(sf)
    return files, unpinned


def plan_schemas(plan: Plan, files: list[SchemaFile], unpinned: list[str], *, force: bool) -> None:
    """Pure apart from hashing files already in the cache: a step per schema to (re)fetch."""
    from ..download import sha256_file

    have = 0
    for sf in files:
        if (
            not force
            and sf.dest.is_file()
            and sha256_file(sf.dest, show_progress=False) == sf.sha256
        ):
            have += 1
            continue
        plan.add(Local("tools.schema", sf.to_args(), desc=f"{sf.name}, verified by pinned sha256"))
    if have:
        plan.note(f"{have} schema(s) already in {cache_root()} with their pinned sha256")
    for what in unpinned:
        plan.note(
            f"no pinned schema for {what}: not downloaded (add its sha256 to tools/schema_pins.py)"
        )


def install_schema(args: Mapping[str, Any]) -> dict[str, str]:
    """Download one schema to a .part beside it, check the pin, rename into place."""
    from ..download import download
    from ..errors import VerifyError

    dest = Path(args["dest"])
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.parent / f".{dest.name}.part"
    try:
        got = download(args["url"], part, label=args["name"], show_progress=False, timeout_s=60.0)
        if got != args["sha256"]:
            raise VerifyError(
                f"sha256 mismatch for {args['url']}: expected {args['sha256']} (pinned in "
                f"domum_tasks/tools/schema_pins.py), got {got}; nothing installed"
            )
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return {"schema": args["name"], "path": str(dest), "sha256": args["sha256"]}
