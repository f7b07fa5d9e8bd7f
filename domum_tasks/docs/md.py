"""Markdown helpers shared by the generated pages."""

from __future__ import annotations

import re
from collections.abc import Iterable

_CODE_SPAN = re.compile(r"(`[^`]*`)")


def prose(text: str) -> str:
    """Plain text as Markdown: code spans stay, `\\`, `*` and `<` outside them are literal
    (`DOMUM_<KEY>` would otherwise be an HTML tag and vanish)."""
    parts = _CODE_SPAN.split(text)
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("\\", "\\\\").replace("*", "\\*").replace("<", "&lt;")
    return "".join(parts)


def cell(value: object) -> str:
    """A table cell: one line, pipes escaped, never empty."""
    return " ".join(str(value).split()).replace("|", "\\|") or "-"


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]
