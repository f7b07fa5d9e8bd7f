"""The checks `talosctl validate` (and a node, before it accepts a config) runs, as siderolabs/talos
v1.13.9 runs them, for the document kinds and v1alpha1 sections Domum writes.

The JSON schema (schema.py) proves a field exists; these rules prove the combination is one Talos
accepts. Every rule is registered with the Go function it follows (registry.py; a test holds each
one to its citation). Order as in Talos: decoding (configloader), then one document per kind and
name (container.New), then Validate of v1alpha1 and of each document, then the conflicts between
v1alpha1 and the typed documents (container.Validate). A failed stage stops there, as in Talos.

`validate(docs)` returns problems as "<where>: <Talos's message>"; empty means Talos accepts it.
"""

from __future__ import annotations

from typing import Any

from . import documents, v1alpha1
from .registry import RULES, UPSTREAM_REPO, UPSTREAM_TAG, Doc, Rule, rule

__all__ = ["KIND_RULES", "RULES", "UPSTREAM_REPO", "UPSTREAM_TAG", "Rule", "validate"]

KIND_RULES: dict[str, list[Rule]] = {}
for _r in RULES:
    if _r.kind:
        KIND_RULES.setdefault(_r.kind, []).append(_r)


def _stage(stage: str, secrets: bool) -> list[Rule]:
    return [r for r in RULES if r.stage == stage and (secrets or not r.secrets)]


def _decode_id(doc: Doc) -> str:
    return f"{doc.get('apiVersion', '')}/{doc.get('kind', 'v1alpha1')}/{doc.get('name', '')}"


@rule("machinery/config/configloader/internal/decoder/decoder.go", "Decoder.Decode", "decode")
def decode_documents(docs: list[Any]) -> list[str]:
    """Every document a mapping (null documents are skipped), none twice."""
    out, seen = [], set()
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            out.append(f"expected a YAML document (document {i + 1})")
            continue
        if _decode_id(doc) in seen:
            out.append(f"duplicate document {_decode_id(doc)} is not allowed")
        seen.add(_decode_id(doc))
    return out


def validate(docs: list[Any], mode: str = "metal", *, secrets: bool = False) -> list[str]:
    """Problems of one machine config (all its documents) as Talos v1.13.9 reports them.

    mode: metal (requires install), cloud or container. secrets=False: the documents are
    Domum's offline model, which leaves out the secrets bundle, so the rules that read only CAs
    and keys are skipped; pass True for a whole config as `talosctl gen config` writes it.
    """
    problems = decode_documents(docs)
    maps = [d for d in docs if isinstance(d, dict)]
    for r in _stage("decode", secrets):
        if r.kind:
            for d in (d for d in maps if d.get("kind") == r.kind):
                problems += [f"error decoding document {_decode_id(d)}: {p}" for p in r.check(d)]
    if problems:
        return problems
    typed = [d for d in maps if "kind" in d]
    for r in _stage("container", secrets):
        problems += r.check(typed)
    if problems:
        return problems
    v1 = next((d for d in maps if "kind" not in d), None)
    if v1 is not None:
        problems += [f"v1alpha1.Config: {p}" for p in v1alpha1.machine_required(v1, mode)]
        if not problems:
            for r in _stage("v1alpha1", secrets):
                if r.check is not v1alpha1.machine_required:
                    problems += [f"v1alpha1.Config: {p}" for p in r.check(v1, mode)]
    for d in typed:
        for r in _stage("document", secrets):
            if r.kind == d.get("kind"):
                problems += [f"{documents.doc_id(d)}: {p}" for p in r.check(d)]
    if v1 is not None:
        for d in typed:
            for r in _stage("conflict", secrets):
                if r.kind == d.get("kind"):
                    problems += r.check(d, v1)
    return problems
