"""Cross-field checks for an inventory that has field errors too, so one pass reports both.

`inv check` promises every independent problem at once: a bad MAC on one node must not hide
`vm.host: pve2` on another. The cross-field checks need a typed Inventory, so this module
builds one from a repaired copy of the data:

* a bad optional value is dropped (its default applies);
* a bad required node field gets a harmless, unique placeholder (mac, hostname);
* a node that cannot be repaired that way is left out, and every cross-field finding that could
  depend on it (counts, uniqueness against it, backup references) is dropped with it.

Findings at a repaired place are dropped: they would judge the placeholder, not the file. If the
data cannot be repaired (a bad cluster: section, say), there are no cross-field findings and the
field errors stand alone, as before.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from .model import Inventory

Loc = tuple[str | int, ...]
Errors = list[tuple[Loc, str]]  # (loc, pydantic error type)

_MAX_ROUNDS = 4


def _placeholder(field: str, node_id: object) -> str | None:
    n = int(str(node_id)) if str(node_id).isdigit() else 0
    if field == "mac":  # locally administered, unique per node id
        return f"02:00:00:00:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"
    if field == "hostname":
        return f"placeholder-node-{n}"
    return None


def _key(container: Any, part: str | int) -> Any:
    """The key of `container` that pydantic reported as `part` (YAML ints vs. pydantic strs)."""
    if isinstance(container, dict):
        for k in (part, str(part)) + ((int(part),) if str(part).isdigit() else ()):
            if k in container:
                return k
        return None
    if isinstance(container, list) and isinstance(part, int) and part < len(container):
        return part
    return None


def _parent(data: Any, loc: Loc) -> tuple[Any, Any] | None:
    node = data
    for part in loc[:-1]:
        k = _key(node, part)
        if k is None:
            return None
        node = node[k]
    k = _key(node, loc[-1]) if loc else None
    return (node, k) if k is not None else (node, loc[-1]) if isinstance(node, dict) else None


def _errors(exc: ValidationError) -> Errors:
    out: Errors = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        if err["type"] == "unknown_key":
            loc = (*loc, (err.get("ctx") or {})["key"])
        out.append((loc, err["type"]))
    return out


class Repair:
    """The repaired inventory and what was changed to get it."""

    def __init__(self) -> None:
        self.touched: set[Loc] = set()  # leaves dropped or replaced
        self.placed: set[Loc] = set()  # leaves holding a placeholder
        self.dropped_nodes: set[int] = set()

    def _drop_node(self, data: dict[str, Any], node_id: Any) -> bool:
        nodes = data.get("nodes")
        k = _key(nodes, node_id)
        if nodes is None or k is None:
            return False
        del nodes[k]
        self.dropped_nodes.add(int(k))
        return True

    def fix(self, data: dict[str, Any], loc: Loc, kind: str) -> bool:
        """Change `data` so the error at `loc` goes away; False if that is not possible."""
        in_node = len(loc) >= 3 and loc[0] == "nodes"
        required = kind == "missing" or loc in self.touched
        if required:
            value = _placeholder(str(loc[-1]), loc[1]) if len(loc) == 3 and in_node else None
            found = _parent(data, loc)
            if value is not None and found is not None and loc not in self.placed:
                found[0][found[1]] = value
                self.touched.add(loc)
                self.placed.add(loc)
                return True
            return in_node and self._drop_node(data, loc[1])
        found = _parent(data, loc)
        if found is None:
            return in_node and self._drop_node(data, loc[1])
        container, k = found
        if isinstance(container, dict) and k in container:
            del container[k]
        elif isinstance(container, list):
            container[k] = None  # keep indices stable; a None item fails again -> node dropped
        self.touched.add(loc)
        return True

    def keeps(self, loc: Loc, message: str) -> bool:
        """Whether a cross-field finding is about the file, not about a repair."""
        if any(loc[: len(t)] == t or t[: len(loc)] == loc for t in self.touched if len(loc) > 1):
            return False
        if not self.dropped_nodes:
            return True
        if loc == ("nodes",) or (loc[:1] == ("backup",) and len(loc) > 3):
            return False  # counts and references would miss the dropped nodes
        return not any(f"node {n}" in message for n in self.dropped_nodes)


def repaired(data: dict[str, Any], exc: ValidationError) -> tuple[Inventory, Repair] | None:
    """A typed Inventory from a repaired copy of `data`, or None if it cannot be had."""
    work = copy.deepcopy(data)
    repair = Repair()
    errors = _errors(exc)
    for _ in range(_MAX_ROUNDS):
        if not all(repair.fix(work, loc, kind) for loc, kind in errors):
            return None
        try:
            return Inventory.model_validate(work), repair
        except ValidationError as again:
            errors = _errors(again)
    return None


def kept(findings: Iterable[Any], repair: Repair) -> list[Any]:
    return [f for f in findings if repair.keeps(tuple(f.loc), f.message)]
