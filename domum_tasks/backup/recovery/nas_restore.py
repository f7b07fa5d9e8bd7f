"""Placing a restored `nas` snapshot: restic ran on the NAS over the shares themselves, so the
snapshot holds the share paths (/mnt/user/appdata/...) and no MANIFEST.sha256. The check is
restic's own: `restore --verify` re-reads every restored file against the repository's blob
hashes (restic cmd/restic/cmd_restore.go, --verify) and fails the step on a mismatch; here the
files are then moved one by one under --to, keeping the share paths (as `restic restore
--target` lays them out). Nothing under --to that the snapshot does not hold is touched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ...errors import VerifyError


def place(tmp: Path, to: Path) -> tuple[int, int]:
    """Move every restored file from `tmp` into `to` (same relative path): (files, bytes)."""
    if not tmp.is_dir() or not any(tmp.iterdir()):
        raise VerifyError("the snapshot restored nothing: no share in it")
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(tmp):
        rel = Path(dirpath).relative_to(tmp)
        dest_dir = to / rel
        if dest_dir.is_symlink() or (dest_dir.exists() and not dest_dir.is_dir()):
            dest_dir.unlink()  # the snapshot has a directory here
        dest_dir.mkdir(parents=True, exist_ok=True)
        for name in dirnames:  # symlinks to directories are entries, not walked
            src = Path(dirpath) / name
            if src.is_symlink():
                _replace(src, dest_dir / name)
        for name in filenames:
            src = Path(dirpath) / name
            if not src.is_symlink():
                files += 1
                size += src.lstat().st_size
            _replace(src, dest_dir / name)
    shutil.rmtree(tmp, ignore_errors=True)
    return files, size


def _replace(src: Path, dest: Path) -> None:
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)  # the snapshot has a file here
    os.replace(src, dest)
