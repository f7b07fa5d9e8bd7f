"""Byte progress bars with rate and ETA (downloads, writes, read-backs, hashing).

rich is imported only when a bar is really shown, and bars are shown only when stderr is a
terminal (unless the caller decides): cron, pipes, `--json` and tests stay quiet.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Advance = Callable[[int], None]


def enabled() -> bool:
    return sys.stderr.isatty()


@contextmanager
def bar(
    label: str,
    total: int | None,
    *,
    show: bool | None = None,
    done: int = 0,
    transient: bool = False,
) -> Iterator[Advance]:
    """Yield `advance(nbytes)`; a no-op when not shown. `show=None` means "if stderr is a TTY"."""
    if not (enabled() if show is None else show):
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=transient,
    ) as progress:
        task = progress.add_task(label, total=total, completed=done)

        def advance(n: int) -> None:
            progress.update(task, advance=n)

        yield advance
