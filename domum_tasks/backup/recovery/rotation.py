"""Which target `backup.drill` restores a job from: every target in turn (issue 16 #12).

Drilling only the first target would leave the off-site copy, the one that matters when the
house burns, never restored. The state file keeps each (job, target) pair's last drill; the one
drilled longest ago (never drilled: first, in the job's order) goes next, so with N targets each
is restored at least every N drills, whatever failed in between.
"""

from __future__ import annotations

from typing import Any


def pick(targets: list[str], entry: dict[str, Any]) -> str:
    """The target of `targets` (the job's restic targets, in inventory order) drilled longest
    ago according to the job's drill state `entry` ({"targets": {name: {"last_run": ts}}})."""
    if not targets:
        raise ValueError("no target to pick from")
    seen = entry.get("targets") or {}

    def last(name: str) -> float:
        return float((seen.get(name) or {}).get("last_run") or 0.0)

    # min() keeps the first of equals: inventory order breaks ties (never drilled = 0.0)
    return min(targets, key=last)


def record(entry: dict[str, Any], target: str, now: float, ok: bool, message: str) -> None:
    entry.setdefault("targets", {})[target] = {"last_run": now, "ok": ok, "message": message}
