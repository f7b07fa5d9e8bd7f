"""Byte progress bars with rate and ETA (downloads, writes, read-backs, hashing).

rich is imported only when a bar is really shown, and bars are shown only when stderr is a
terminal (unless the caller decides): cron, pipes, `--json` and tests stay quiet.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        speed_column(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=transient,
    ) as progress:
        task = progress.add_task(label, total=total, completed=done)

        def advance(n: int) -> None:
            progress.update(task, advance=n)

        yield advance


def speed_column() -> Any:
    """A rich column showing the rate in binary units (rich's own counts MB/s)."""
    from rich.progress import TransferSpeedColumn

    class BinarySpeedColumn(TransferSpeedColumn):
        """rich's speed column counts in MB/s; the sizes and Domum's summaries use MiB."""

        def render(self, task: Any) -> Any:
            from rich.filesize import pick_unit_and_suffix
            from rich.text import Text

            speed = task.finished_speed or task.speed
            if speed is None:
                return Text("?", style="progress.data.speed")
            units = ["B", "KiB", "MiB", "GiB", "TiB"]
            unit, suffix = pick_unit_and_suffix(int(speed), units, 1024)
            return Text(f"{speed / unit:.1f} {suffix}/s", style="progress.data.speed")

    return BinarySpeedColumn()
