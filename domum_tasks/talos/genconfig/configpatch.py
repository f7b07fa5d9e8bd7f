"""talosctl's configpatcher on plain YAML data: how `--config-patch` changes a machine config.

Written from siderolabs/talos v1.13.9, pkg/machinery/config/: configpatcher/{load,apply,strategic,
json6902}.go, configloader/internal/decoder/{decoder,delete,selector}.go, container/container.go,
merge/merge.go and the custom `Merge` methods of the config types. Talos merges typed Go structs;
here the documents are dicts, so what the types decide is spelled out in the tables below.

Known gaps (no schema here): unknown fields are not rejected; a zero int in a patch never
overwrites (Talos does overwrite through `*int` fields); deleting an absent key of a struct is a
no-op, of a map (KEYED_MAPS) a "lookup failed" error, as Talos does.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from .. import yaml12
from . import patchmerge

Doc = dict[str, Any]
PatchError = patchmerge.PatchError


@dataclass(frozen=True)
class Selector:
    """One `$patch: delete` (decoder/delete.go makeSelector): a path in a document, and for a list
    item the first other key and its value (makeSequenceSelector)."""

    doc_id: tuple[str, str, str]
    path: tuple[str, ...]
    key: str = ""
    value: str = ""


@dataclass
class StrategicPatch:
    """A strategic merge patch, its parts in the order container.Documents() gives them."""

    parts: list[Selector | Doc] = field(default_factory=list)


@dataclass
class JsonPatch:
    ops: list[dict[str, Any]]


Patch = StrategicPatch | JsonPatch


def doc_id(doc: Doc) -> tuple[str, str, str]:
    """decoder.go parse's documentID; the legacy v1alpha1 document is ("", "v1alpha1", "")."""
    if "kind" not in doc:
        return ("", "v1alpha1", "")
    return (str(doc.get("apiVersion") or ""), str(doc["kind"]), str(doc.get("name") or ""))


def _scalar_text(value: Any) -> str:
    """A YAML scalar node's Value, as the selector compares it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None or isinstance(value, (dict, list)) else str(value)


def _selector(root: Doc, path: list[str], item: Doc | None) -> Selector:
    # decoder/delete.go makeSelector: apiVersion and kind both set, or both absent (legacy)
    api, kind = root.get("apiVersion"), root.get("kind")
    if not path and (not api or not kind):
        missing = "apiVersion" if not api else "kind"
        raise PatchError(f"missing {missing} in document for which $patch: delete is used")
    if bool(api) != bool(kind):
        raise PatchError(f"kind and apiVersion must be both set for path {'.'.join(path)}")
    ident = (str(api), str(kind), str(root.get("name") or "")) if kind else ("", "v1alpha1", "")
    if item is None:
        return Selector(ident, tuple(path))
    for key, value in item.items():  # makeSequenceSelector: first key aside from $patch
        if key != "$patch":
            return Selector(ident, tuple(path), str(key), _scalar_text(value))
    raise PatchError(f"no key:val found in sequence node for path {'.'.join(path)}")


def _strip_deletes(
    root: Doc, node: Any, path: list[str], in_seq: bool, out: list[Selector]
) -> bool:
    """decoder/delete.go processNode: collect the deletes, drop them from the patch; True when
    `node` itself goes (it was deleted, or deleting emptied it)."""
    if isinstance(node, dict):
        for key in list(node):
            if key == "$patch" and node[key] == "delete":
                if not in_seq and any(p.startswith("[") for p in path):  # ensureNoSeqInChain
                    raise PatchError(f"cannot delete an inner key in '{'.'.join(path)}'")
                out.append(_selector(root, path, node if in_seq else None))
                return True
            if _strip_deletes(root, node[key], [*path, str(key)], False, out):
                del node[key]
                if not node:
                    return True
    elif isinstance(node, list):
        i = 0
        while i < len(node):
            if _strip_deletes(root, node[i], [*path, f"[{i}]"], True, out):
                del node[i]
                if not node:
                    return True
                continue
            i += 1
    return False


def _empty_doc(doc: Doc) -> bool:
    # decoder/delete.go isEmptyDoc: only scalar version/kind/name keys left
    return all(
        k in ("version", "kind", "name") and not isinstance(v, dict | list) for k, v in doc.items()
    )


def _document_errors(doc: Doc) -> None:
    """decoder.go decode: the legacy document is recognised by its top-level keys."""
    legacy = any(k in doc for k in ("machine", "cluster", "debug", "persist")) or (
        doc.get("apiVersion") == "v1alpha1" and not doc.get("kind")
    )
    if not legacy and not doc.get("kind"):
        raise PatchError("missing kind")
    if not legacy and not doc.get("apiVersion"):
        raise PatchError("missing apiVersion")


def _trim_manifests(doc: Doc) -> None:
    # v1alpha1_types.go ClusterInlineManifests.UnmarshalYAML trims leading "\t\n\v\f\r"
    cluster = doc.get("cluster") if "kind" not in doc else None
    for m in (cluster or {}).get("inlineManifests") or []:
        if isinstance(m, dict) and isinstance(m.get("contents"), str):
            m["contents"] = m["contents"].lstrip("\t\n\v\f\r")


def load_parts(text: str, *, allow_delete: bool = False) -> list[Selector | Doc]:
    """configloader.NewFromBytes: the documents of a text, in order; with allow_delete each
    document's deletes come just before what is left of it (decoder.go parse)."""
    try:
        raw = list(yaml.load_all(text, Loader=yaml12.Yaml12Loader))
    except yaml.YAMLError as exc:
        raise PatchError(f"decode error: {str(exc).splitlines()[0]}") from None
    parts: list[Selector | Doc] = []
    seen: set[tuple[str, str, str]] = set()
    for doc in raw:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise PatchError("expected a YAML document")
        if allow_delete:
            deletes: list[Selector] = []
            gone = _strip_deletes(doc, doc, [], False, deletes)
            parts += deletes
            if gone or _empty_doc(doc):
                continue
        _document_errors(doc)
        ident = doc_id(doc)
        if ident in seen:  # decoder.go parse
            raise PatchError("duplicate document {}/{}/{} is not allowed".format(*ident))
        seen.add(ident)
        _trim_manifests(doc)
        parts.append(doc)
    return parts


def load_documents(text: str) -> list[Doc]:
    """A machine config's documents (no deletes allowed)."""
    return [p for p in load_parts(text) if isinstance(p, dict)]


def _json_ops(text: str) -> list[dict[str, Any]] | None:
    """A JSON Patch as JSON or as a YAML list of mappings (load.go LoadPatch), else None."""
    try:
        ops = json.loads(text)
    except ValueError:
        try:
            ops = yaml.load(text, Loader=yaml12.Yaml12Loader)
        except yaml.YAMLError:
            return None
    if isinstance(ops, list) and all(isinstance(o, dict) for o in ops):
        return ops
    return None


def load_patch(text: str) -> Patch:
    """load.go LoadPatch: a strategic merge patch if the config loader takes it, else a JSON
    Patch; when neither, the loader's error (or JSON's when the text starts with `[`)."""
    try:
        loaded = load_parts(text, allow_delete=True)
    except PatchError as strategic_err:
        ops = _json_ops(text)
        if ops is not None:
            return JsonPatch(ops)
        if text.strip().startswith("["):
            raise PatchError(f"invalid JSON Patch: {text.strip()[:40]}") from None
        raise strategic_err from None
    # container.go Documents(): v1alpha1 deletes, the v1alpha1 document, then the rest in order
    legacy = ("", "v1alpha1", "")

    def is_legacy(p: Selector | Doc) -> bool:
        return (p.doc_id if isinstance(p, Selector) else doc_id(p)) == legacy

    parts: list[Selector | Doc] = [p for p in loaded if isinstance(p, Selector) and is_legacy(p)]
    parts += [p for p in loaded if isinstance(p, dict) and is_legacy(p)]
    parts += [p for p in loaded if not is_legacy(p)]
    return StrategicPatch(parts)


def load_patches(texts: list[str]) -> list[Patch]:
    """load.go LoadPatches (texts already read): consecutive JSON Patches become one."""
    out: list[Patch] = []
    for text in texts:
        patch = load_patch(text)
        if isinstance(patch, JsonPatch) and out and isinstance(out[-1], JsonPatch):
            out[-1] = JsonPatch([*out[-1].ops, *patch.ops])
        else:
            out.append(patch)
    return out


def apply(docs: list[Doc], patches: list[Patch]) -> list[Doc]:
    """apply.go Apply: each patch in turn; returns new documents (legacy document first)."""
    out = copy.deepcopy(docs)
    for patch in patches:
        if isinstance(patch, JsonPatch):
            if len(out) != 1:  # json6902.go JSON6902
                raise PatchError(
                    "JSON6902 patches are not supported for multi-document machine configuration"
                )
            out = [patchmerge.json6902(out[0], patch.ops)]
        else:
            out = strategic_merge(out, patch)
    return out


def strategic_merge(docs: list[Doc], patch: StrategicPatch) -> list[Doc]:
    """strategic.go StrategicMerge: documents matched by (apiVersion, kind, name) merge or take a
    delete; others are appended. A delete for a document that is not there is dropped (Talos
    carries it along unapplied)."""
    left = copy.deepcopy(docs)
    index = {doc_id(d): d for d in left}  # built once, as upstream's leftIndex
    for part in patch.parts:
        if isinstance(part, Selector):
            target = index.get(part.doc_id)
            if target is None:
                continue
            if patchmerge.apply_delete(target, part.doc_id, part.path, part.key, part.value):
                left = [d for d in left if d is not target]  # ErrZeroedDocument
                del index[part.doc_id]
        elif doc_id(part) in index:
            patchmerge.merge_document(index[doc_id(part)], copy.deepcopy(part))
        else:
            left.append(copy.deepcopy(part))
    return left
