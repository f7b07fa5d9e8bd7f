"""Which restic Domum runs, and whether it is new enough (a version probe, read-only)."""

from __future__ import annotations

import functools
from pathlib import Path

from . import restic


def require_restic() -> None:
    """restic >= 0.16 (restic.MIN_VERSION) or exit 3: older ones count a live client's lock
    older than 30 minutes as stale and have no --retry-lock (issue 16)."""
    from ...tools import require_tool

    _check_version(require_tool("restic"))


@functools.cache
def _check_version(path: Path) -> None:
    from ...errors import ToolMissing
    from ...tools.pins import RESTIC_VERSION
    from ...tools.versions import probe_version

    found, why = probe_version("restic", path)
    parts = tuple(int(p) for p in (found or "").split("-")[0].split(".")[:2] if p.isdigit())
    if len(parts) == 2 and parts >= restic.MIN_VERSION:
        return
    need = ".".join(map(str, restic.MIN_VERSION))
    raise ToolMissing(
        f"restic {found or '(version unknown: ' + why + ')'} at {path}: Domum needs restic "
        f">= {need}",
        hint=f"run `inv tools.install --tool restic` for the pinned {RESTIC_VERSION} in .bin/",
    )
