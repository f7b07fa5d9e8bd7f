"""Image download cache: resumable `.part` files, sha256 checks, and the trust-on-first-use lock.

* Cache: `<settings.cache_dir()>/images` ($DOMUM_CACHE_DIR, else the user's cache dir).
* A download goes to `<name>.part` through `domum_tasks.download` (https or loopback http only;
  an interrupted one resumes with an HTTP Range request, up to RETRIES times in the same run, and
  again on the next run). The file is renamed into place only when complete and verified; the
  hash computed while streaming is the one checked, so a fresh download is not read twice.
* Verification: the expected sha256 (inventory or lock) of the downloaded file. With no hash
  known and trust on first use, the first hash is recorded in `<repo root>/config/images.lock`
  (keyed by URL) and checked ever after. A mismatch deletes the file and
  raises VerifyError.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ... import settings
from ...download import download, sha256_file
from ...errors import ConfigError, VerifyError
from ...run import write_atomic
from .image import ImageSpec


def cache_dir() -> Path:
    return settings.cache_dir() / "images"


def lock_path() -> Path:
    return settings.repo_root() / "config" / "images.lock"


def read_lock(path: Path | None = None) -> dict[str, dict[str, Any]]:
    path = path or lock_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text() or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    images = data.get("images", {}) if isinstance(data, dict) else None
    if not isinstance(images, dict):
        raise ConfigError(f'{path}: expected {{"images": {{URL: {{"sha256": ...}}}}}}')
    return images


def record_lock(url: str, sha256: str, size: int, path: Path | None = None) -> None:
    path = path or lock_path()
    images = read_lock(path)
    images[url] = {"sha256": sha256, "size": size, "recorded": time.strftime("%Y-%m-%d")}
    text = json.dumps({"version": 1, "images": images}, indent=2, sort_keys=True) + "\n"
    write_atomic(path, text.encode())


def expected_hash(spec: ImageSpec) -> tuple[str | None, str]:
    """(hash the file must have, where that hash comes from)."""
    if spec.sha256:
        return spec.sha256, "inventory image.sha256"
    entry = read_lock().get(spec.source) if spec.trust_on_first_use else None
    if entry:
        return str(entry["sha256"]), f"{lock_path().name} (recorded {entry.get('recorded', '?')})"
    return None, ""


def verify_file(
    path: Path, spec: ImageSpec, *, show_progress: bool | None = None, got: str = ""
) -> str:
    """Check a cached or local file's hash (`got` when already known); record it on first use.

    Returns the sha256."""
    want, where = expected_hash(spec)
    if want is None and not spec.trust_on_first_use:
        return ""  # a local file with no known hash: nothing to compare
    got = got or sha256_file(path, show_progress=show_progress)
    if want is None:
        record_lock(spec.source, got, path.stat().st_size)
        return got
    if got != want:
        if spec.is_url:
            path.unlink(missing_ok=True)  # never keep a bad download around
        raise VerifyError(
            f"{spec.source}: sha256 {got} does not match {want} from {where}"
            + ("; the cached file was deleted" if spec.is_url else ""),
            hint="if the publisher really changed the image, remove its entry from "
            f"{lock_path()} and run again"
            if "lock" in where
            else "",
        )
    return got


def fetch(spec: ImageSpec, *, show_progress: bool | None = None, timeout_s: float = 30.0) -> Path:
    """The image as a local, verified file: downloaded (or resumed) into the cache for URLs."""
    if not spec.is_url:
        path = Path(spec.source).expanduser()
        if not path.is_file():
            raise ConfigError(f"--image {spec.source}: no such file")
        verify_file(path, spec, show_progress=show_progress)
        return path
    dest = spec.local_path(cache_dir())
    if dest.exists():
        verify_file(dest, spec, show_progress=show_progress)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    got = download(
        spec.source,
        part,
        label=dest.name[17:],  # without the cache name's hash prefix
        show_progress=show_progress,
        timeout_s=timeout_s,
    )
    verify_file(part, spec, show_progress=show_progress, got=got)
    os.replace(part, dest)
    return dest
