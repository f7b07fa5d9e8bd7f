"""Prometheus textfile metrics, rendered from the state file and written atomically.

Every series of every job is written on every run (a failed job keeps its old
last_success), so the series never disappear; the file's mtime (node_textfile_mtime_seconds)
shows that the timer still runs even when no job was due. `backup.snapshot` rewrites the file
when it starts (`domum_backup_running 1`, with the time by which the run must have ended) and
after every job, so a long run is visible as running, not as a stopped timer.

Verify and drill series exist from the first run, before either ever passed: 0 means never
(as for last_success), and `..._tracked_since_timestamp_seconds` says since when Domum has
expected one, so the staleness alerts fire 8 days after that, not at once on a new install.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...inventory.model import Inventory
from ...run import write_atomic
from .. import jobs

FILE_NAME = "domum_backup.prom"

HELP = {
    "domum_backup_last_success_timestamp_seconds": "End of the job's last fully successful run (0: never)",
    "domum_backup_last_run_timestamp_seconds": "End of the job's last finished run, successful or not",
    "domum_backup_last_run_success": "1 if the job's last run succeeded on every target, else 0",
    "domum_backup_duration_seconds": "Duration of the job's last run",
    "domum_backup_bytes": "Bytes staged by the job's last run",
    "domum_backup_snapshots": "Snapshots of the job kept on a target after its last backup.prune",
    "domum_backup_schedule_period_seconds": "Longest gap between two scheduled runs of the job",
    "domum_backup_job_enabled": "1 if the job is enabled in the inventory",
    "domum_backup_last_verify_success_timestamp_seconds": "Last restic check that passed (per target; unlabelled: every target)",
    "domum_backup_verify_coverage_ratio": "Share of the target's packs read since the current full-verify cycle began",
    "domum_backup_last_drill_success_timestamp_seconds": "Last restore drill that passed (per job; unlabelled: every job)",
    "domum_backup_retention_last_success_timestamp_seconds": "End of the job's last backup.prune that applied its retention on every target (0: never)",
    "domum_backup_retention_last_run_success": "1 if the job's last backup.prune succeeded on every target, else 0",
    "domum_backup_retention_reclaim_last_success_timestamp_seconds": "Last restic prune --max-unused that passed on the target (0: never)",
    "domum_backup_verify_tracked_since_timestamp_seconds": "Since when a passing restic check of the target is expected (first run that knew it)",
    "domum_backup_drill_tracked_since_timestamp_seconds": "Since when a passing restore drill of the job is expected (first run that knew it)",
    "domum_backup_files": "Files staged by the job's last run (the count its guard judged)",
    "domum_backup_last_success_files": "Files of the job's last successful run",
    "domum_backup_files_max_shrink_percent": "The job's guard: largest drop of files against its last successful run",
    "domum_backup_running": "1 while a backup.snapshot run holds the lock, else 0",
    "domum_backup_run_started_timestamp_seconds": "Start of the current (or last) backup.snapshot run",
    "domum_backup_run_deadline_timestamp_seconds": "When the current run must have ended at the latest (its jobs' deadlines)",
}

# The guard's default (max_shrink_percent of a job) until the inventory names one.
DEFAULT_MAX_SHRINK_PERCENT = 50.0


def expected(inv: Inventory) -> tuple[list[str], list[str]]:
    """(restic targets a verify should check, jobs a drill should restore): every enabled
    restic job and its restic targets."""
    enabled = [j for j in jobs.select(inv) if j.uses_restic]
    targets = sorted({t for j in enabled for t in jobs.restic_targets(inv, j)})
    return targets, sorted(j.name for j in enabled)


def track(inv: Inventory, data: dict[str, Any], now: float) -> None:
    """Note (once) when each expected target and job was first seen, in the state."""
    targets, names = expected(inv)
    tracked = data.setdefault("tracked", {})
    for key, items in (("verify", targets), ("drill", names)):
        since = tracked.setdefault(key, {})
        for item in items:
            since.setdefault(item, now)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def render(
    inv: Inventory,
    data: dict[str, Any],
    now: float | None = None,
    run: dict[str, float] | None = None,
) -> str:
    """`run`: {"started", "deadline"} of the backup.snapshot run in progress, else None."""
    now = time.time() if now is None else now
    series: dict[str, list[str]] = {name: [] for name in HELP}

    def add(name: str, labels: dict[str, str], value: float) -> None:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        series[name].append(f"{name}{{{text}}} {_fmt(value)}" if text else f"{name} {_fmt(value)}")

    for name, spec in sorted(inv.backup.jobs.items()):
        entry = data["jobs"].get(name, {})
        last = entry.get("last_run") or {}
        lab = {"job": name}
        add("domum_backup_last_success_timestamp_seconds", lab, entry.get("last_success") or 0)
        add("domum_backup_last_run_timestamp_seconds", lab, last.get("finished") or 0)
        add("domum_backup_last_run_success", lab, 1 if last.get("status") == "ok" else 0)
        add("domum_backup_duration_seconds", lab, last.get("duration_s") or 0)
        add("domum_backup_bytes", lab, last.get("bytes") or 0)
        add("domum_backup_schedule_period_seconds", lab, jobs.period_s(spec.schedule, now))
        add("domum_backup_job_enabled", lab, 1 if spec.enabled else 0)
        if last.get("files") is not None:
            add("domum_backup_files", lab, last["files"])
        if entry.get("last_success_files") is not None:
            add("domum_backup_last_success_files", lab, entry["last_success_files"])
        shrink = getattr(spec, "max_shrink_percent", DEFAULT_MAX_SHRINK_PERCENT)
        add("domum_backup_files_max_shrink_percent", lab, float(shrink))
        for target in spec.targets:
            count = (entry.get("snapshots") or {}).get(target)
            if count is not None:
                add("domum_backup_snapshots", {"job": name, "target": target}, count)
    retention(inv, data, add)
    targets, drilled = expected(inv)
    tracked = data.get("tracked", {})
    _since(add, "verify", "target", data.get("verify", {}), targets, tracked.get("verify", {}))
    for target, v in sorted(data.get("verify", {}).items()):
        add(
            "domum_backup_verify_coverage_ratio",
            {"target": target},
            len(v.get("covered", [])) / max(1, int(v.get("of") or 1)),
        )
    _since(add, "drill", "job", data.get("drill", {}), drilled, tracked.get("drill", {}))
    add("domum_backup_running", {}, 1 if run else 0)
    last_run = run or data.get("run") or {}
    add("domum_backup_run_started_timestamp_seconds", {}, last_run.get("started") or 0)
    add("domum_backup_run_deadline_timestamp_seconds", {}, last_run.get("deadline") or 0)
    lines: list[str] = []
    for name, rows in series.items():
        if rows:
            lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge", *rows]
    return "\n".join(lines) + "\n"


def retention(inv: Inventory, data: dict[str, Any], add: Any) -> None:
    """Retention's own series (issue 16 #10), present for every restic job and target from the
    first write (0: never), so a staleness alert can fire before the first prune."""
    for name, spec in sorted(inv.backup.jobs.items()):
        if spec.kind not in jobs.RESTIC_KINDS:
            continue
        r = data.get("retention", {}).get(name, {})
        lab = {"job": name}
        add(
            "domum_backup_retention_last_success_timestamp_seconds", lab, r.get("last_success") or 0
        )
        add("domum_backup_retention_last_run_success", lab, 1 if r.get("status") == "ok" else 0)
    for target, t in sorted(inv.backup.targets.items()):
        if t.type == "restic":
            got = data.get("reclaim", {}).get(target, {}).get("last_success") or 0
            add(
                "domum_backup_retention_reclaim_last_success_timestamp_seconds",
                {"target": target},
                got,
            )


def _since(
    add: Callable[[str, dict[str, str], float], None],
    what: str,
    label: str,
    done: dict[str, Any],
    expected: list[str],
    tracked: dict[str, float],
) -> None:
    """Last success per item (0: never) for what ran or is expected, the time since when it
    is expected, and unlabelled: the oldest of them (the whole picture in one series)."""
    items = sorted(set(done) | set(expected))
    success = f"domum_backup_last_{what}_success_timestamp_seconds"
    since = f"domum_backup_{what}_tracked_since_timestamp_seconds"
    for item in items:
        add(success, {label: item}, (done.get(item) or {}).get("last_success") or 0)
        if item in tracked:
            add(since, {label: item}, tracked[item])
    if items:
        add(success, {}, min((done.get(i) or {}).get("last_success") or 0 for i in items))
    if tracked:
        add(since, {}, max(tracked.values()))


def write(
    inv: Inventory, data: dict[str, Any], metrics_dir: Path, run: dict[str, float] | None = None
) -> Path:
    target = metrics_dir / FILE_NAME
    write_atomic(target, render(inv, data, run=run).encode())
    return target
