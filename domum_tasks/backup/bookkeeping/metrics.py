"""Prometheus textfile metrics, rendered from the state file and written atomically.

Every series of every job is written on every run (a failed job keeps its old
last_success), so the series never disappear; the file's mtime (node_textfile_mtime_seconds)
shows that the timer still runs even when no job was due.
"""

from __future__ import annotations

import time
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
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def render(inv: Inventory, data: dict[str, Any], now: float | None = None) -> str:
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
        for target in spec.targets:
            count = (entry.get("snapshots") or {}).get(target)
            if count is not None:
                add("domum_backup_snapshots", {"job": name, "target": target}, count)
    retention(inv, data, add)
    verify = data.get("verify", {})
    for target, v in sorted(verify.items()):
        add(
            "domum_backup_last_verify_success_timestamp_seconds",
            {"target": target},
            v.get("last_success") or 0,
        )
        add(
            "domum_backup_verify_coverage_ratio",
            {"target": target},
            len(v.get("covered", [])) / max(1, int(v.get("of") or 1)),
        )
    if verify:
        add(
            "domum_backup_last_verify_success_timestamp_seconds",
            {},
            min(v.get("last_success") or 0 for v in verify.values()),
        )
    drill = data.get("drill", {})
    for name, d in sorted(drill.items()):
        add(
            "domum_backup_last_drill_success_timestamp_seconds",
            {"job": name},
            d.get("last_success") or 0,
        )
    if drill:
        add(
            "domum_backup_last_drill_success_timestamp_seconds",
            {},
            min(d.get("last_success") or 0 for d in drill.values()),
        )
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


def write(inv: Inventory, data: dict[str, Any], metrics_dir: Path) -> Path:
    target = metrics_dir / FILE_NAME
    write_atomic(target, render(inv, data).encode())
    return target
