"""The `up` state file: which phases finished, with which inventory, when.

    {"version": 1, "inventory": "<path>", "phases": {"talos": {"hash": "...", "finished": "..."}}}

Written atomically (temp file in the same directory, then rename) after each finished phase,
so a kill at any moment leaves the previous consistent file; an interrupted phase is never
recorded. Location: settings.up_state_file().
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import settings
from ..run import write_atomic
from .phases import PHASES, SECTIONS

VERSION = 1


def path() -> Path:
    return settings.up_state_file()


def load(file: Path | None = None) -> dict[str, Any]:
    """The recorded state; a missing, unreadable or foreign file is an empty one (run all)."""
    try:
        data = json.loads((file or path()).read_text())
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {"version": VERSION, "phases": {}}
    if not isinstance(data.get("phases"), dict):
        data["phases"] = {}
    return data


def finished(data: Mapping[str, Any], inventory: str) -> dict[str, str]:
    """phase -> recorded hash, for the phases recorded for this inventory file."""
    if data.get("inventory") not in (None, inventory):
        return {}
    return {
        name: str(entry.get("hash", ""))
        for name, entry in data.get("phases", {}).items()
        if isinstance(entry, dict)
    }


def record(phase: str, digest: str, inventory: str, file: Path | None = None) -> None:
    """Mark `phase` finished (read, update, atomic replace). Already recorded with this hash:
    left as it is (a second `up` writes nothing, not even here)."""
    target = file or path()
    data = load(target)
    if data.get("inventory") not in (None, inventory):
        data = {"version": VERSION, "phases": {}}
    entry = data["phases"].get(phase)
    if isinstance(entry, dict) and entry.get("hash") == digest and data.get("inventory"):
        return
    data["inventory"] = inventory
    data["phases"][phase] = {
        "hash": digest,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    data["phases"] = {p: data["phases"][p] for p in PHASES if p in data["phases"]}
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, (json.dumps(data, indent=2) + "\n").encode())


def hashes(raw: Mapping[str, Any]) -> dict[str, str]:
    """Per phase: sha256 of the inventory sections it reads (the parsed YAML, canonical JSON,
    so comments and formatting do not count; the whole document for preflight/summary)."""
    out = {}
    for phase in PHASES:
        keys = SECTIONS[phase]
        part = raw if keys is None else {k: raw.get(k) for k in keys}
        text = json.dumps(part, sort_keys=True, default=str)
        out[phase] = hashlib.sha256(text.encode()).hexdigest()
    return out


def inventory_hashes(file: Path) -> dict[str, str]:
    import yaml

    raw = yaml.safe_load(file.read_text()) or {}
    return hashes(raw if isinstance(raw, dict) else {})
