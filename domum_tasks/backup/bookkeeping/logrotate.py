"""Size-based rotation of backup.log, as logrotate's `size` + `rotate N` would do it, but done by
the run itself at its start under its flock: no second writer can append while the files move,
and no logrotate configuration has to be installed beside the timer.

backup.log -> backup.log.1 -> ... -> backup.log.<keep>; the oldest beyond `keep` is deleted.
"""

from __future__ import annotations

import os
from pathlib import Path


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def rotate(path: Path, max_bytes: int, keep: int) -> bool:
    """Rotate when `path` has reached `max_bytes`; True when it did. keep=0: the full log is
    deleted, nothing kept."""
    try:
        if path.stat().st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    if keep == 0:
        path.unlink()
        return True
    rotated(path, keep).unlink(missing_ok=True)
    for n in range(keep - 1, 0, -1):
        if rotated(path, n).exists():
            os.replace(rotated(path, n), rotated(path, n + 1))
    os.replace(path, rotated(path, 1))
    return True
