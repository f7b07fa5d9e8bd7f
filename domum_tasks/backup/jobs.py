"""Pure rules about jobs and targets: which ones run, their retention flags, when they are due.

No I/O here: the inventory (and the state file's timestamps) in, decisions out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import ConfigError
from ..inventory.model import BackupJob, BackupTarget, Inventory, Retention

RESTIC_KINDS = ("etcd-snapshot", "config", "files", "nas", "postgres")
# Kinds whose staging directory is a persistent mirror that rsync updates in place.
MIRROR_KINDS = ("files",)  # a nas job's restic runs on the NAS (producers/nas_remote.py)
TAG = "domum"
# Completeness is marked positively (issue 16): every snapshot is saved tagged `partial` by the
# `restic backup` call itself, and only after restic exited 0 does `restic tag` swap that for
# `complete`. Any failure or kill before the swap leaves `partial`: nothing incomplete can
# count. Snapshots with neither tag were made before this scheme: never counted, never forgotten.
PARTIAL_TAG = "partial"
COMPLETE_TAG = "complete"


def job_tag(job: str) -> str:
    return f"job={job}"


def password_key(target: str) -> str:
    """The secret holding a restic target's password (env: DOMUM_BACKUP_TARGETS_<NAME>_PASSWORD)."""
    return f"backup.targets.{target}.password"


@dataclass(frozen=True)
class Job:
    name: str
    spec: BackupJob

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def uses_restic(self) -> bool:
        return self.spec.kind in RESTIC_KINDS


def select(inv: Inventory, job: str = "", *, include_disabled: bool = False) -> list[Job]:
    """`--job J` (even a disabled one: asked for by name), else every enabled job."""
    jobs = inv.backup.jobs
    if job:
        if job not in jobs:
            valid = ", ".join(sorted(jobs)) or "(no backup.jobs defined)"
            raise ConfigError(f"--job {job}: no such job under backup.jobs; valid: {valid}")
        return [Job(job, jobs[job])]
    return [Job(n, s) for n, s in sorted(jobs.items()) if s.enabled or include_disabled]


def restic_targets(inv: Inventory, job: Job) -> dict[str, BackupTarget]:
    return {
        t: inv.backup.targets[t]
        for t in job.spec.targets
        if t in inv.backup.targets and inv.backup.targets[t].type == "restic"
    }


def retention(inv: Inventory, job: Job) -> Retention:
    return job.spec.retention or inv.backup.retention


def retention_flags(inv: Inventory, job: Job) -> list[str]:
    """restic forget flags for the job's policy; an empty policy is refused, never 'delete all'."""
    policy = retention(inv, job)
    flags: list[str] = []
    for field in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
        n = int(getattr(policy, f"keep_{field}"))
        if n > 0:
            flags += [f"--keep-{field}", str(n)]
    if policy.keep_within:
        flags += ["--keep-within", policy.keep_within]
    if not flags:
        where = f"backup.jobs.{job.name}.retention" if job.spec.retention else "backup.retention"
        raise ConfigError(
            f"{where}: empty retention policy (every keep_* is 0); restic would keep nothing. "
            "Set at least one of keep_last/hourly/daily/weekly/monthly/yearly above 0"
        )
    return flags


def _local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts).astimezone()


def is_due(schedule: str, last_success_start: float | None, now: float) -> bool:
    """Due when a scheduled time has passed since the start of the last successful run.

    Measured from the start, so a fire time that passed while that run was going is not lost;
    a machine that was off catches up on its next tick.
    """
    from croniter import croniter

    if last_success_start is None:
        return True
    nxt = croniter(schedule, _local(last_success_start)).get_next(float)
    return float(nxt) <= now


_PERIODS: dict[tuple[str, int, int], float] = {}


def period_s(schedule: str, now: float, samples: int = 40) -> float:
    """The longest gap between consecutive fire times (a weekly job: 7 days), for the alert.
    Computed once per schedule and hour: the metrics are rewritten at the start of a run and
    after every job, and croniter costs start-up time on each."""
    key = (schedule, int(now // 3600), samples)
    if key not in _PERIODS:
        from croniter import croniter

        it = croniter(schedule, _local(now))
        times = [float(it.get_next(float)) for _ in range(samples)]
        _PERIODS[key] = max(b - a for a, b in itertools.pairwise(times))
    return _PERIODS[key]


def due(selected: list[Job], data: dict[str, Any], now: float) -> list[Job]:
    """The jobs of `selected` whose schedule came due since their last successful start."""
    last = data.get("jobs", {})
    return [
        j
        for j in selected
        if is_due(j.spec.schedule, last.get(j.name, {}).get("last_success_started"), now)
    ]
