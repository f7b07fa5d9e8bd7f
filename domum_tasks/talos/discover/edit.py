"""Pure: set or remove keys of one node in the inventory text, line by line, so every comment
and the layout of the rest of the file stay as the user wrote them (ruamel.yaml is not a
dependency). The result is parsed again and must differ from the original in exactly those keys.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml

from ...errors import ConfigError

_NODES = re.compile(r"^nodes:\s*(#.*)?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _blank(line: str) -> bool:
    return not line.strip()


def _node_block(lines: list[str], node_id: int) -> tuple[int, int]:
    """[start, end) of the node's child lines (trailing blank lines excluded)."""
    top = next((i for i, ln in enumerate(lines) if _NODES.match(ln.rstrip("\n"))), None)
    if top is None:
        raise ConfigError("no top-level `nodes:` line to edit")
    head = re.compile(rf"^( +)([\"']?){node_id}\2:\s*(#.*)?$")
    for i in range(top + 1, len(lines)):
        line = lines[i].rstrip("\n")
        if not _blank(line) and _indent(line) == 0 and not line.startswith("#"):
            break  # the next top-level section
        m = head.match(line)
        if m:
            own = len(m.group(1))
            end = i + 1
            while end < len(lines) and (_blank(lines[end]) or _indent(lines[end]) > own):
                end += 1
            while end > i + 1 and _blank(lines[end - 1]):
                end -= 1
            return i + 1, end
    raise ConfigError(f"nodes.{node_id}: not found as a block the edit can follow")


def flow(value: Any) -> str:
    """A value as one line of YAML; a selector as a flow mapping. It goes through PyYAML in a
    one-item flow list, so it is quoted wherever YAML would read it as something else."""
    return yaml.safe_dump([value], default_flow_style=True, width=10**6).strip()[1:-1]


def _render(key: str, value: Any, indent: int) -> str:
    return " " * indent + f"{key}: {flow(value)}\n"


def edit_node(text: str, node_id: int, changes: dict[str, Any]) -> str:
    """`text` with nodes.<id>.<key> set to each value (None: the key removed)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start, end = _node_block(lines, node_id)
    body = [ln for ln in lines[start:end] if not _blank(ln) and not ln.lstrip().startswith("#")]
    child = _indent(body[0]) if body else 4
    for key, value in changes.items():
        key_re = re.compile(rf"^ {{{child}}}{re.escape(key)}:(\s|$)")
        at = next((i for i in range(start, end) if key_re.match(lines[i])), None)
        if at is None:
            if value is not None:
                lines.insert(end, _render(key, value, child))
                end += 1
            continue
        stop = at + 1  # a block value's deeper lines go with it
        while stop < end and not _blank(lines[stop]) and _indent(lines[stop]) > child:
            stop += 1
        new = [] if value is None else [_render(key, value, child)]
        lines[at:stop] = new
        end += len(new) - (stop - at)
    result = "".join(lines)
    _verify(text, result, node_id, changes)
    return result


def _verify(old: str, new: str, node_id: int, changes: dict[str, Any]) -> None:
    """The new text must load as the old one with exactly `changes` applied to the node."""
    before, after = yaml.safe_load(old), yaml.safe_load(new)
    nid = next(k for k in before["nodes"] if str(k) == str(node_id))  # 92 or "92"
    want = dict(before["nodes"][nid])
    for key, value in changes.items():
        if value is None:
            want.pop(key, None)
        else:
            want[key] = value
    expected = {**before, "nodes": {**before["nodes"], nid: want}}
    if after != expected:
        raise ConfigError(
            f"nodes.{node_id}: the line edit would change more than "
            f"{', '.join(changes)}; edit the inventory by hand"
        )


def unified_diff(old: str, new: str, shown: str) -> str:
    return "".join(
        difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{shown}", f"b/{shown}")
    )
