"""Validate Talos config patches against the machine-config JSON schema of the pinned version.

The schema (siderolabs/talos pkg/machinery/config/schemas/config.schema.json) is one `oneOf` over
every document type: `v1alpha1.Config` (the classic document, recognised by having no `kind`) and
the typed documents (`network.LinkConfigV1Alpha1`, ...; each pins its `kind` with an enum). We
dispatch on `kind` ourselves instead of using the `oneOf`, so a typo yields "unknown key 'adress'"
rather than "is not valid under any of the given schemas".

A patch is a partial document, which the schema allows: v1alpha1.Config has no required keys
and the typed documents require only apiVersion/kind (and name where Talos needs one).
Schemas are found in $DOMUM_TALOS_SCHEMA_DIR, else in the cache `inv tools.install` fills
(tools/schemas.py: the sha256-pinned schema of the pinned Talos tag).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

V1ALPHA1 = "v1alpha1.Config"


def schema_dir(root: Path) -> Path:
    """`root` is unused since the schema moved to the user cache; kept for the callers."""
    from ... import settings

    return settings.talos_schema_dir()


def minor(talos_version: str) -> str:
    """'v1.13.9' -> 'v1.13'."""
    return ".".join(talos_version.split(".")[:2])


def schema_path(root: Path, talos_version: str) -> Path:
    from ...tools.schemas import talos_schema_name

    return schema_dir(root) / talos_schema_name(talos_version)


@dataclass(frozen=True)
class PatchSchema:
    """One Talos version's schema, ready to validate documents."""

    path: Path
    schema: dict[str, Any]
    kinds: dict[str, str]  # kind -> $defs name

    def validate_doc(self, doc: Any) -> list[str]:
        """Problems of one document, each 'field.path: message' (empty list: valid)."""
        if not isinstance(doc, dict):
            return [f"(document): expected a mapping, got {type(doc).__name__}"]
        kind = doc.get("kind")
        if kind is None:
            def_name = V1ALPHA1
        elif not isinstance(kind, str) or kind not in self.kinds:
            return [f"kind: unknown document kind {kind!r}; valid: {', '.join(sorted(self.kinds))}"]
        else:
            def_name = self.kinds[kind]
        validator = _validator(self.path, def_name)
        problems = []
        for err in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.path]):
            where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            problems.append(f"{where}: {_message(err)}")
        return problems


def _message(err: Any) -> str:
    if err.validator == "additionalProperties":
        return f"{err.message} (the Talos schema forbids unknown keys)"
    return str(err.message)


def load(path: Path) -> PatchSchema:
    return _load(path.resolve())


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> PatchSchema:
    schema = json.loads(path.read_text())
    kinds: dict[str, str] = {}
    for name, definition in schema.get("$defs", {}).items():
        enum = definition.get("properties", {}).get("kind", {}).get("enum")
        if enum and len(enum) == 1:
            kinds[enum[0]] = name
    return PatchSchema(path, schema, kinds)


@functools.lru_cache(maxsize=128)
def _validator(path: Path, def_name: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = _load(path).schema
    root = {k: v for k, v in schema.items() if k != "oneOf"}
    root["$ref"] = f"#/$defs/{def_name}"
    return Draft202012Validator(root)


def validate_text(ps: PatchSchema, rel_path: str, text: str) -> list[str]:
    """Problems of every document in one patch file, each prefixed with file and document."""
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return [f"{rel_path}: not valid YAML: {str(exc).splitlines()[0]}"]
    problems = []
    for i, doc in enumerate(docs, 1):
        label = doc.get("kind", "v1alpha1") if isinstance(doc, dict) else "?"
        problems += [f"{rel_path} doc {i} ({label}): {p}" for p in ps.validate_doc(doc)]
    return problems
