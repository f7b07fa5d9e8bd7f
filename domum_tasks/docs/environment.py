"""docs/reference/environment.md from settings.py's docstring: its table is the one list of the
variables Domum reads (settings.py is the only module that reads the environment), so the page
is that table, copied, never a second list."""

from __future__ import annotations

from .. import settings
from .md import prose

PAGE = "docs/reference/environment.md"


def table(doc: str) -> list[str]:
    """The Markdown table of a docstring: its consecutive lines starting with `|`."""
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| variable")), None)
    if start is None:
        raise ValueError("settings.py's docstring has no `| variable | default | purpose |` table")
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(prose(line))
    return rows


def render() -> str:
    lines = [
        "# Environment variables",
        "",
        "<!-- Generated from domum_tasks/settings.py by `python -m domum_tasks.docs`; do not edit. -->",
        "",
        "Every variable Domum reads. `domum_tasks/settings.py` is the only module that reads the "
        "environment; this table is its docstring's. Values are read when used, so a cron job's "
        "environment and a shell's are both seen as they are.",
        "",
        *table(settings.__doc__ or ""),
    ]
    return "\n".join(lines) + "\n"
