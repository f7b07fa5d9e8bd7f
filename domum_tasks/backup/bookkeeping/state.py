"""The state file <state_dir>/state.json: last runs, verify rotation, drill results.

Written atomically (temp file, fsync, rename) by the process holding the lock, so readers
(`backup.list`, the metrics) never see half a file. Only finished runs are recorded: a run killed
half-way leaves the previous record, never a "success".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...run import write_atomic

STATE_NAME = "state.json"
VERSION = 1
KEEP_SIZES = 500  # snapshot id -> bytes, for `backup.list` (restic 0.14's JSON has no size)
# jobs.<job>.<this>: files of the job's last ok (complete) run. One baseline for the shrink
# guard (snapshot/guards.py) and the shrink alert (domum_backup_last_success_files).
BASELINE = "last_success_files"
OLD_BASELINES = ("last_complete_files",)  # written beside it until 2026-12; folded in on read


def path(state_dir: Path) -> Path:
    return state_dir / STATE_NAME


def load(state_dir: Path) -> dict[str, Any]:
    p = path(state_dir)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{p}: unreadable state file ({exc}); move it away to start afresh"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: not a JSON object; move it away to start afresh")
    data.setdefault("version", VERSION)
    for key in ("jobs", "verify", "drill", "sizes"):
        data.setdefault(key, {})
    for entry in data["jobs"].values():
        if isinstance(entry, dict):
            migrate_baseline(entry)
    return data


def migrate_baseline(entry: dict[str, Any]) -> None:
    """An old state's duplicate baseline: the same ok run wrote both, so BASELINE (when there)
    is as new as any; an old key alone becomes BASELINE."""
    for old in OLD_BASELINES:
        value = entry.pop(old, None)
        if isinstance(value, int) and not isinstance(entry.get(BASELINE), int):
            entry[BASELINE] = value


def save(state_dir: Path, data: dict[str, Any]) -> None:
    sizes = data.get("sizes", {})
    if len(sizes) > KEEP_SIZES:  # oldest first (dicts keep insertion order)
        data["sizes"] = dict(list(sizes.items())[-KEEP_SIZES:])
    write_atomic(path(state_dir), (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def job(data: dict[str, Any], name: str) -> dict[str, Any]:
    entry: dict[str, Any] = data["jobs"].setdefault(name, {})
    return entry


def record_run(data: dict[str, Any], name: str, result: dict[str, Any]) -> None:
    """Store a finished run; only an `ok` run moves last_success."""
    entry = job(data, name)
    entry["last_run"] = result
    if result.get("status") == "ok":
        entry["last_success"] = result["finished"]
        entry["last_success_started"] = result["started"]
        if isinstance(result.get("files"), int):  # the shrink guard's and alert's baseline
            entry[BASELINE] = result["files"]
    for target, count in (result.get("kept") or {}).items():
        entry.setdefault("snapshots", {})[target] = count
    for snap_id in (result.get("snapshots") or {}).values():
        if snap_id:
            data["sizes"][snap_id] = int(result.get("bytes") or 0)
