"""The screen (one table) or --json (a list of rows), then the exit: 1 naming every row that
is not healthy, with its reason."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..errors import DomumError
from .model import Row

COLUMNS = ("part", "name", "state", "detail")


def show(rows: Sequence[Row], json_out: bool) -> None:
    if json_out:
        print(json.dumps([r.to_json() for r in rows], indent=2, default=str))
        return
    from ..console import print_table

    cells = [(r.part, r.name, "ok" if r.ok else "error", r.detail) for r in rows]
    print_table("domum status", COLUMNS, cells)


def _short(text: str, limit: int = 100) -> str:
    """stderr gets one line: the table (or --json) has each reason in full."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def verdict(rows: Sequence[Row]) -> None:
    """Raise (exit 1) when anything is not healthy; each bad row on the line, with its reason."""
    bad = [r for r in rows if not r.ok]
    if bad:
        reasons = "; ".join(f"{r.part} {r.name}: {_short(r.detail)}" for r in bad)
        raise DomumError(f"status: {len(bad)} of {len(rows)} not healthy: {reasons}")
