"""Output for people (rich tables) and for scripts (--json). rich is imported only when used."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

PIPE_WIDTH = 200
STYLES = {"ok": "green", "error": "red", "warning": "yellow", "missing": "red", "down": "red"}


def json_key(column: str) -> str:
    """A table heading as a JSON key: lower snake_case."""
    return "_".join(column.lower().replace("-", " ").split())


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    json_out: bool = False,
) -> None:
    """One table, or with json_out a JSON list of objects keyed by column name in snake_case
    ("env var" -> "env_var"), so scripts read the same data the table shows."""
    if json_out:
        keys = [json_key(c) for c in columns]
        print(
            json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2, default=str)
        )
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        cells = [str(c) if c is not None else "-" for c in row]
        # Cells are text, not rich markup: "[bootstrap] ..." or "[schema: ...]" must stay visible.
        table.add_row(*(f"[{STYLES[c]}]{c}[/]" if c in STYLES else escape(c) for c in cells))
    # Off a terminal (cron mail, a log file, a pipe) rich would squeeze the table into 80
    # columns; give it room instead, since nobody's window is there to fit.
    width = None if sys.stdout.isatty() else PIPE_WIDTH
    stdout_console(width).print(table)


def stdout_console(width: int | None = None) -> Any:
    """A rich Console on stdout that lets a broken pipe raise BrokenPipeError.

    rich's default ends the process with exit 1 there; Domum's task wrapper wants the exception,
    to exit 141 quietly as shell tools do (`inv check | head`)."""
    from rich.console import Console

    class StdoutConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return StdoutConsole(file=sys.stdout, soft_wrap=True, width=width)
