"""RFC 6902 JSON Patch for the stand-in talosctl (configpatcher/json6902.go applies
evanphx/json-patch to the single document). Standard library only."""

from __future__ import annotations

import copy
from typing import Any


class PatchFailure(ValueError):
    """A patch talosctl would refuse."""


# ---------------------------------------------------------------- JSON Patch (json6902.go)
def _walk(doc: Any, ptr: str) -> tuple[Any, str]:
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in ptr.split("/")[1:]]
    if not tokens:
        raise PatchFailure("patching the document root is not supported")
    cur = doc
    for t in tokens[:-1]:
        try:
            cur = cur[int(t)] if isinstance(cur, list) else cur[t]
        except (LookupError, ValueError, TypeError):
            raise PatchFailure(f"missing path {ptr}") from None
    return cur, tokens[-1]


def json6902(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(doc)

    def take(ptr: str, remove: bool) -> Any:
        parent, last = _walk(out, ptr)
        try:
            key: Any = int(last) if isinstance(parent, list) else last
            value = parent[key]
        except (LookupError, ValueError, TypeError):
            raise PatchFailure(f"missing path {ptr}") from None
        if remove:
            del parent[key]
        return copy.deepcopy(value)

    def put(ptr: str, value: Any, insert: bool) -> None:
        parent, last = _walk(out, ptr)
        if isinstance(parent, list):
            i = len(parent) if last == "-" else int(last)
            if i < 0 or i > len(parent) or (not insert and i == len(parent)):
                raise PatchFailure(f"index out of range in {ptr}")
            if insert:
                parent.insert(i, value)
            else:
                parent[i] = value
        elif isinstance(parent, dict):
            if not insert and last not in parent:
                raise PatchFailure(f"missing key {ptr}")
            parent[last] = value
        else:
            raise PatchFailure(f"missing path {ptr}")

    try:
        for op in ops:
            kind, ptr = op.get("op"), str(op.get("path", ""))
            if kind in ("add", "replace"):
                put(ptr, copy.deepcopy(op.get("value")), kind == "add")
            elif kind == "remove":
                take(ptr, True)
            elif kind in ("move", "copy"):
                put(ptr, take(str(op.get("from", "")), kind == "move"), True)
            elif kind == "test":
                if take(ptr, False) != op.get("value"):
                    raise PatchFailure("testing value failed")
            else:
                raise PatchFailure(f"Unexpected kind: {kind}")
    except PatchFailure as exc:
        raise PatchFailure(
            f"failure applying rfc6902 patches to talos machine config: {exc}"
        ) from None
    return out
