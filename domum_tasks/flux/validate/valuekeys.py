"""Value keys a chart does not have: typos that Helm ignores silently in a chart without a schema.

A key of the release's values is checked where the chart's defaults (values.yaml) hold a
non-empty map at its parent: it must be one of that map's keys, a key the chart documents there
in a comment (`# hostPort: 8000`, the usual way to show an optional key), or a property the
chart's schema declares there. Not checked, because the chart leaves them open:
  - a parent whose default is an empty map (`podLabels: {}`), null, a scalar or a list;
  - a parent the comment block above it documents as free-form (an INI file, `free-form`,
    `arbitrary` keys, "additional entries", environment variables: grafana's `grafana.ini`,
    couchdb's `couchdbConfig`, Traefik's `service.spec`, Pi-hole's `extraEnvVars`);
  - a parent the schema leaves open (`additionalProperties` or `patternProperties`, or an object
    type without `properties`). Where the schema closes a map (`additionalProperties: false`),
    the schema check reports the key instead, once.
Subcharts' keys are checked against the subchart's defaults plus what the parent sets for it;
`global` against the globals of every chart in the tree (Helm hands them to all of them).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chartstore import Chart

Path_ = tuple[str, ...]

_KEY = re.compile(
    r"""^(\s*)("[^"]*"|'[^']*'|[^\s#\-'"{\[][^:#]*?|-[^\s:#][^:#]*?)\s*:(?:\s|$)(.*)$"""
)
_COMMENTED_KEY = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.\-/]*)\s*:(?:\s|$)")
# What a chart's comment says when a map takes keys of the user's choosing.
_FREE = re.compile(
    r"\bini (?:file|format)|\.ini\b|free[- ]?form|arbitrary|additional entries|envi\w*ment variables",
    re.IGNORECASE,
)


@dataclass
class Documented:
    """What values.yaml says in comments: keys shown commented out under each map, and maps
    whose comment block documents them as free-form."""

    commented: dict[Path_, set[str]] = field(default_factory=dict)
    free: set[Path_] = field(default_factory=set)


def scan_values(text: str) -> Documented:
    """One pass over values.yaml's lines, tracking the key path by indentation."""
    doc = Documented()
    stack: list[tuple[int, Path_ | None]] = []  # (indent, path); None: inside a list
    block: int | None = None  # indent of a key whose value is a block scalar (| or >)
    pending: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if block is not None:
            if not stripped or indent > block:
                continue
            block = None
        if not stripped:
            pending = []
            continue
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            pending.append(body)
            m = _COMMENTED_KEY.match(body)
            parent = _parent(stack, indent)
            if m and parent is not None:
                doc.commented.setdefault(parent, set()).add(m.group(1))
            continue
        if stripped.startswith("- ") or stripped == "-":
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, None))
            pending = []
            continue
        m = _KEY.match(line)
        if not m:
            pending = []
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ()
        path = None if parent is None else (*parent, m.group(2).strip("\"'"))
        if path is not None and any(_FREE.search(c) for c in pending):
            doc.free.add(path)
        stack.append((indent, path))
        if m.group(3).strip().startswith(("|", ">")):
            block = indent
        pending = []
    return doc


def _parent(stack: list[tuple[int, Path_ | None]], column: int) -> Path_ | None:
    for indent, path in reversed(stack):
        if indent < column:
            return path
    return ()


@dataclass(frozen=True)
class SchemaView:
    """What a chart's schema says about the map at one path."""

    props: frozenset[str] = frozenset()
    free: bool = False  # additionalProperties/patternProperties allow keys of any name
    closed: bool = False  # additionalProperties: false: the schema check reports unknown keys


ViewFn = Callable[["Chart", Path_], SchemaView | None]


@dataclass(frozen=True)
class _Layer:
    chart: Chart
    offset: Path_


def _node(values: Any, path: Path_) -> Any:
    for p in path:
        if not isinstance(values, dict) or p not in values:
            return None
        values = values[p]
    return values


def unknown_keys(
    chart: Chart, user: dict[str, Any], enabled: Callable[[Chart, str], bool], view: ViewFn
) -> Iterator[tuple[str, str]]:
    """(dotted key path, message) for each key of `user` that `chart` does not have."""
    yield from _walk(user, [_Layer(chart, ())], (), (), chart, enabled, view)


def _all_charts(chart: Chart) -> list[Chart]:
    return [chart, *(c for d in chart.deps for c in _all_charts(d.chart))]


def _walk(
    user: dict[str, Any],
    layers: list[_Layer],
    rel: Path_,
    shown: Path_,
    owner: Chart,
    enabled: Callable[[Chart, str], bool],
    view: ViewFn,
) -> Iterator[tuple[str, str]]:
    known: set[str] = set()
    has_map = False
    free = closed = False
    for i, layer in enumerate(layers):
        at = layer.offset + rel
        node = _node(layer.chart.values, at)
        if isinstance(node, dict) and node:
            has_map = True
            known |= set(node)
        known |= layer.chart.documented.commented.get(at, set())
        free = free or at in layer.chart.documented.free
        sv = view(layer.chart, at)
        if sv is not None:
            known |= sv.props
            free = free or sv.free
            closed = closed or (i == 0 and sv.closed)
    if free:
        return
    deps = {d.key: d for d in owner.deps} if rel == () else {}
    for key, value in user.items():
        where = (*shown, key)
        if key in deps:
            dep = deps[key]
            if isinstance(value, dict) and enabled(owner, key):
                sub = [_Layer(dep.chart, ())] + [
                    _Layer(lay.chart, (*lay.offset, key)) for lay in layers
                ]
                yield from _walk(value, sub, (), where, dep.chart, enabled, view)
            continue
        if rel == () and key == "global" and isinstance(value, dict):
            every = [_Layer(c, ("global",)) for c in _all_charts(owner)]
            yield from _walk(value, every, (), where, owner, enabled, view)
            continue
        if key not in known:
            if has_map and not closed:
                yield ".".join(where), _message(where, key, known, owner)
            continue
        if isinstance(value, dict):
            yield from _walk(value, layers, (*rel, key), where, owner, enabled, view)


def _message(where: Path_, key: str, known: set[str], owner: Chart) -> str:
    parent = ".".join(where[:-1]) or "the top level"
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {'.'.join((*where[:-1], close[0]))}?"
    else:
        some = sorted(known)
        hint = f"{parent} has: {', '.join(some[:12])}{', ...' if len(some) > 12 else ''}"
    return (
        f"values key {'.'.join(where)} is not a value of chart {owner.label()} "
        f"(Helm ignores it silently): {hint}"
    )
