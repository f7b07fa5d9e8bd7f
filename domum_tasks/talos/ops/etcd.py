"""Talos etcd snapshot files: format check and safe placement.

`talosctl etcd snapshot PATH` streams etcd's snapshot API: a bbolt database followed by a
32-byte SHA-256 of everything before it. bbolt pages are multiples of 512 bytes, so a whole file
has `size % 512 == 32`; a restore (`bootstrap --recover-from`) checks exactly the same trailer
(etcd `copyAndVerifyDB`). `etcdctl/etcdutl snapshot status` does NOT check it, so we do.

`verify_snapshot_bytes` is pure; `verify_snapshot_file` streams a file in O(1) memory. Backups
(`inv backup.snapshot`) use both.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import VerifyError

TRAILER = 32
PAGE = 512
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SnapshotInfo:
    size: int
    sha256: str  # hex digest of the database part (what the trailer holds)


def _check_size(size: int, name: str) -> None:
    if size < PAGE + TRAILER or size % PAGE != TRAILER:
        raise VerifyError(
            f"{name}: not a Talos etcd snapshot: size {size} bytes, "
            f"expected a multiple of {PAGE} plus the {TRAILER}-byte sha256 trailer"
        )


def verify_snapshot_bytes(data: bytes, name: str = "snapshot") -> SnapshotInfo:
    """Check size % 512 == 32 and that the last 32 bytes are sha256(data[:-32])."""
    _check_size(len(data), name)
    digest = hashlib.sha256(data[:-TRAILER]).digest()
    if digest != data[-TRAILER:]:
        raise VerifyError(
            f"{name}: sha256 trailer mismatch (trailer {data[-TRAILER:].hex()[:16]}..., "
            f"content {digest.hex()[:16]}...): the snapshot is corrupt or truncated"
        )
    return SnapshotInfo(len(data), digest.hex())


def verify_snapshot_file(path: str | os.PathLike[str]) -> SnapshotInfo:
    """The same check as verify_snapshot_bytes, streaming the file."""
    p = Path(path)
    try:
        size = p.stat().st_size
        _check_size(size, str(p))
        h = hashlib.sha256()
        with p.open("rb") as fh:
            remaining = size - TRAILER
            while remaining:
                chunk = fh.read(min(_CHUNK, remaining))
                if not chunk:
                    raise VerifyError(f"{p}: file shrank while being read")
                h.update(chunk)
                remaining -= len(chunk)
            trailer = fh.read(TRAILER)
    except OSError as exc:
        raise VerifyError(f"{p}: cannot read snapshot: {exc.strerror or exc}") from None
    if h.digest() != trailer:
        raise VerifyError(
            f"{p}: sha256 trailer mismatch (trailer {trailer.hex()[:16]}..., "
            f"content {h.hexdigest()[:16]}...): the snapshot is corrupt or truncated"
        )
    return SnapshotInfo(size, h.hexdigest())


def with_trailer(db: bytes) -> bytes:
    """Append the sha256 trailer to a raw bbolt database, as the etcd snapshot API does.

    For raw database files (e.g. a copied `member/snap/db`); `etcdctl snapshot save` output
    already carries the trailer.
    """
    return db + hashlib.sha256(db).digest()


def finalize_snapshot(part: str | os.PathLike[str], final: str | os.PathLike[str]) -> SnapshotInfo:
    """Verify `part` and atomically rename it to `final`; a bad file never gets the final name.

    On failure the partial file is removed and VerifyError is raised.
    """
    src, dst = Path(part), Path(final)
    try:
        info = verify_snapshot_file(src)
    except VerifyError:
        src.unlink(missing_ok=True)
        raise
    # etcd holds every Kubernetes Secret; talosctl creates the file 0644 (umask permitting)
    os.chmod(src, 0o600)
    with src.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(src, dst)
    return info
