"""A chart's values.schema.json, applied the way the Helm in helm-controller applies it.

Flux v2.9's helm-controller (v1.6.3) embeds Helm v4.2.4 (fluxcd/helm v4.2.4-flux.1), which
validates with santhosh-tekuri/jsonschema v6 (helm/helm pkg/chart/common/util/jsonschema.go,
ValidateAgainstSingleSchema):
  - the schema is added as `file:///values.schema.json`, so relative $refs of a schema without
    an $id resolve to the controller's own filesystem (they fail there, and fail here);
  - the draft is the schema's `$schema` (http or https, with or without the empty fragment;
    `json-schema.org/schema` means the latest), else draft 2020-12 (santhosh-tekuri
    jsonschema v6 draft.go, draftFromURL and draftLatest);
  - `format` is asserted for drafts 4, 6 and 7 only (v6 objcompiler.go, assertFormat: "draftVersion
    < 2019"); here with python-jsonschema's format checker (the formats it can check);
  - http(s) $refs are fetched at install time. Offline they are read from the chart directory:
    the file whose path ends like the URL (app-template's schema is a $ref to its `common`
    library's, which is stored under charts/common/); one that is not there is reported as not
    checked.
Compiled validators are kept per chart for the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .chartstore import Chart
from .valuekeys import SchemaView

ROOT_URI = "file:///values.schema.json"
MAX_ERRORS = 10

_DRAFTS = {
    "json-schema.org/schema": "2020-12",
    "json-schema.org/draft/2020-12/schema": "2020-12",
    "json-schema.org/draft/2019-09/schema": "2019-09",
    "json-schema.org/draft-07/schema": "7",
    "json-schema.org/draft-06/schema": "6",
    "json-schema.org/draft-04/schema": "4",
}


class Unresolvable(Exception):
    """A $ref the schema needs that is not available offline (or not to Helm either)."""

    def __init__(self, ref: str, helm_fails: bool) -> None:
        super().__init__(ref)
        self.ref = ref
        self.helm_fails = helm_fails


def draft_of(schema: Any) -> str:
    url = schema.get("$schema") if isinstance(schema, dict) else None
    if not isinstance(url, str):
        return "2020-12"
    base, _, frag = url.partition("#")
    if frag:
        return "2020-12"
    return _DRAFTS.get(re.sub(r"^https?://", "", base), "2020-12")


def _validator_class(draft: str) -> Any:
    from jsonschema import (
        Draft4Validator,
        Draft6Validator,
        Draft7Validator,
        Draft201909Validator,
        Draft202012Validator,
    )

    return {
        "4": Draft4Validator,
        "6": Draft6Validator,
        "7": Draft7Validator,
        "2019-09": Draft201909Validator,
    }.get(draft, Draft202012Validator)


def _local_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*.json")}


def _retriever(chart: Chart) -> Any:
    from referencing import Resource
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import DRAFT202012

    files = _local_files(chart.path)

    def retrieve(uri: str) -> Any:
        parts = urlparse(uri)
        if parts.scheme not in ("http", "https"):
            raise Unresolvable(uri, helm_fails=True)
        segs = [s for s in parts.path.split("/") if s]
        for n in range(len(segs), 1, -1):  # the longest tail of the URL path that is stored
            tail = "/".join(segs[-n:])
            for rel, path in files.items():
                if rel == tail or rel.endswith("/" + tail):
                    contents = json.loads(path.read_text(encoding="utf-8"))
                    return Resource.from_contents(contents, default_specification=DRAFT202012)
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]

    return retrieve


def compile_schema(chart: Chart) -> Any:
    """(validator, root resolver) for the chart's schema, or None when it has none."""
    from referencing import Registry, Resource
    from referencing.jsonschema import specification_with

    if not isinstance(chart.schema, dict | bool):
        return None
    schema = chart.schema
    if isinstance(schema, dict) and "$id" not in schema:
        schema = {**schema, "$id": ROOT_URI}
    draft = draft_of(schema)
    cls = _validator_class(draft)
    spec = specification_with(cls.META_SCHEMA["$schema"])
    resource = Resource.from_contents(schema, default_specification=spec)
    base = schema.get("$id", ROOT_URI) if isinstance(schema, dict) else ROOT_URI
    registry: Any = Registry(retrieve=_retriever(chart)).with_resource(base, resource)  # type: ignore[call-arg]
    checker = cls.FORMAT_CHECKER if draft in ("4", "6", "7") else None
    validator = cls(schema, registry=registry, format_checker=checker)
    return validator, registry.resolver(base_uri=base), schema


def schema_errors(compiled: Any, values: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key path, message) per error, additionalProperties split into one line per key."""
    from jsonschema.exceptions import best_match

    validator = compiled[0]
    errors = sorted(validator.iter_errors(values), key=lambda e: [str(p) for p in e.absolute_path])
    for err in errors:
        path = [str(p) for p in err.absolute_path]
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            schema = err.schema if isinstance(err.schema, dict) else {}
            props = schema.get("properties") or {}
            pats = list((schema.get("patternProperties") or {}).keys())
            for key in err.instance:
                if key in props or any(re.search(p, key) for p in pats):
                    continue
                yield ".".join([*path, key]), _not_allowed(path, key, props)
            continue
        msg = err.message
        if err.context:
            msg += f" ({best_match(err.context).message})"
        if len(msg) > 300:
            msg = msg[:297] + "..."
        yield ".".join(path) or "(top level)", msg


def _not_allowed(path: list[str], key: str, props: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(props), n=1, cutoff=0.6)
    where = ".".join(path) or "the top level"
    hint = (
        f"did you mean {'.'.join([*path, close[0]])}?"
        if close
        else f"{where} allows: {', '.join(sorted(props)[:12])}{', ...' if len(props) > 12 else ''}"
    )
    return f"{key!r} is not allowed under {where} (additionalProperties: false): {hint}"


def _expand(nodes: list[tuple[Any, Any]]) -> list[tuple[dict[str, Any], Any]]:
    """The nodes, with $refs followed and allOf/anyOf/oneOf branches flattened."""
    out: list[tuple[dict[str, Any], Any]] = []
    seen: set[int] = set()
    todo = list(nodes)
    while todo:
        node, resolver = todo.pop()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        out.append((node, resolver))
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                found = resolver.lookup(ref)
                todo.append((found.contents, found.resolver))
            except Exception:  # an unresolvable $ref: the schema check reports it
                pass
        for comb in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(comb) or []:
                todo.append((sub, resolver))
    return out


def view_at(compiled: Any, path: tuple[str, ...]) -> SchemaView | None:
    """What the schema says about the map at `path`; None where it says nothing."""
    _, resolver, schema = compiled
    nodes: list[tuple[Any, Any]] = [(schema, resolver)]
    for seg in path:
        nxt: list[tuple[Any, Any]] = []
        for node, res in _expand(nodes):
            named = node.get("properties")
            if isinstance(named, dict) and seg in named:
                nxt.append((named[seg], res))
                continue
            pats = node.get("patternProperties") or {}
            hits = [s for p, s in pats.items() if re.search(p, seg)]
            nxt += [(s, res) for s in hits]
            extra = node.get("additionalProperties")
            if not hits and isinstance(extra, dict):
                nxt.append((extra, res))
        if not nxt:
            return None
        nodes = nxt
    props: set[str] = set()
    free = closed = False
    for node, _ in _expand(nodes):
        own = node.get("properties")
        if isinstance(own, dict):
            props |= set(own)
        extra = node.get("additionalProperties")
        types = node.get("type")
        is_object = types == "object" or (isinstance(types, list) and "object" in types)
        if extra is True or isinstance(extra, dict) or node.get("patternProperties"):
            free = True
        elif extra is False:
            closed = True
        elif is_object and not own:
            free = True
    return SchemaView(frozenset(props), free and not closed, closed)
