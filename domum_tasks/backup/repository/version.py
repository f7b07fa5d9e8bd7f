"""Which restic Domum runs, and whether it is new enough (a version probe; its answer is
kept per binary in the state dir, so a backup run does not start restic just to ask)."""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path
from typing import Any

from . import restic


def require_restic(cache_dir: Path | None = None) -> None:
    """restic >= 0.16 (restic.MIN_VERSION) or exit 3: older ones count a live client's lock
    older than 30 minutes as stale and have no --retry-lock (issue 16). With `cache_dir`, the
    version of a binary already probed is read back (`_cached`) instead of run again."""
    from ...tools import require_tool

    _check_version(require_tool("restic"), cache_dir)


def _identity(path: Path) -> list[Any]:
    """What changes when the binary is replaced, rewritten or touched: path, inode, size,
    mtime and ctime (rsync's and restic's own quick check trust less)."""
    real = path.resolve()
    st = real.stat()
    return [str(real), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _cached(path: Path, cache_dir: Path | None) -> tuple[str | None, str]:
    """(version, why) from the probe, or from cache_dir/restic-version.json when the binary is
    the one probed last time (a backup run saves one restic process start)."""
    from ...tools.versions import probe_version

    if cache_dir is None:
        return probe_version("restic", path)
    cache = cache_dir / "restic-version.json"
    try:
        me = _identity(path)
        saved = json.loads(cache.read_text())
        if saved.get("binary") == me and isinstance(saved.get("version"), str):
            return saved["version"], ""
    except (OSError, ValueError, AttributeError):
        pass
    found, why = probe_version("restic", path)
    if found and cache_dir.is_dir():  # never creates the state dir (a dry run may ask)
        from ...run import write_atomic

        with contextlib.suppress(OSError):  # only a cache: the next run probes again
            write_atomic(cache, json.dumps({"binary": _identity(path), "version": found}).encode())
    return found, why


@functools.cache
def _check_version(path: Path, cache_dir: Path | None = None) -> None:
    from ...errors import ToolMissing
    from ...tools.pins import RESTIC_VERSION

    found, why = _cached(path, cache_dir)
    parts = tuple(int(p) for p in (found or "").split("-")[0].split(".")[:2] if p.isdigit())
    if len(parts) == 2 and parts >= restic.MIN_VERSION:
        return
    need = ".".join(map(str, restic.MIN_VERSION))
    raise ToolMissing(
        f"restic {found or '(version unknown: ' + why + ')'} at {path}: Domum needs restic "
        f">= {need}",
        hint=f"run `inv tools.install --tool restic` for the pinned {RESTIC_VERSION} in .bin/",
    )
