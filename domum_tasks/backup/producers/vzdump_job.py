"""The vzdump job kind: Proxmox writes and prunes the archives (proxmox.vzdump, shared with the
proxmox namespace); Domum judges each guest's task. `WARNINGS` is not success: the job fails.
Guests are VMs and containers alike (`vmids:` takes both); a container PVE backed up in suspend
mode instead of snapshot is named in the run's message. Restore one with `inv proxmox.restore`.
"""

from __future__ import annotations

import time
from typing import Any

from ...errors import ConfigError, DomumError
from ...inventory.model import Inventory
from ...plan import Fanout, Local
from ...pve import Session
from ...run import StepResult
from .. import jobs
from ..jobs import Job


def prune_policy(inv: Inventory, job: Job) -> dict[str, int]:
    """The job's retention as PVE prune-backups keys. PVE has no keep-within (its prune-backups
    schema: keep-all, keep-last ... keep-yearly): a policy of keep_within alone would reach PVE
    as no policy at all (keep everything, or the storage's setting), so it is refused."""
    policy = jobs.retention(inv, job)
    keys = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
    out = {k: int(getattr(policy, k)) for k in keys if getattr(policy, k)}
    if not out and policy.keep_within:
        raise ConfigError(
            f"{_where(job)}: keep_within is the only rule, and Proxmox's prune-backups has no "
            "keep-within: set keep_last/daily/weekly/monthly/yearly for this vzdump job"
        )
    return out


def _where(job: Job) -> str:
    return f"backup.jobs.{job.name}.retention" if job.spec.retention else "backup.retention"


def retention_notes(inv: Inventory, job: Job) -> list[str]:
    """What one retention block means on PVE, said in the plan (it cannot be mapped exactly).

    Proxmox applies the keep rules in sequence: each rule skips the backups an earlier rule kept
    and does not count a period an earlier rule already covered (proxmox/pve-storage,
    src/PVE/Storage.pm, prune_mark_backup_group and its $prune_mark). restic counts every rule
    over all snapshots independently. So `keep_last 1, keep_daily 2` keeps three days of
    archives on PVE when several backups ran today, two in restic."""
    policy = jobs.retention(inv, job)
    notes = [
        f"{job.name}: PVE applies keep rules in sequence (a period kept by an earlier rule is "
        "not counted again), restic counts each independently: on PVE the same retention "
        "keeps as many or more archives"
    ]
    if policy.keep_within:
        notes.append(
            f"{job.name}: keep_within {policy.keep_within} is NOT applied to vzdump archives "
            f"(PVE has no keep-within); only {', '.join(prune_policy(inv, job))} are"
        )
    return notes


def storage(inv: Inventory, job: Job) -> str | None:
    for name in job.spec.targets:
        target = inv.backup.targets.get(name)
        if target is not None and target.type == "pve-storage":
            return target.repository
    return None


VZDUMP = "vzdump per guest"  # the fan-out's desc: the record step knows its outcome by it


def steps(inv: Inventory, job: Job, pve: Session) -> Fanout | Local:
    """The job as plan steps: per guest, proxmox.vzdump's call (waiting for its task) and the
    storage listing that names the archive; one lane per guest, one guest at a time. The
    token's privileges are checked now: lacking, the job is planned as refused (the other
    jobs still run), as the real run would find at its first call."""
    from ...proxmox import permissions
    from ...proxmox.vzdump import locate, plan_vzdump

    jobs.retention_flags(inv, job)  # an empty policy is refused before anything runs
    vzdump = plan_vzdump(
        inv,
        job.spec.vmids,
        storage=storage(inv, job),
        prune=prune_policy(inv, job),
        located=locate(pve, job.spec.vmids),
    )
    try:
        permissions.precheck(pve, vzdump)
    except DomumError as exc:
        message = str(exc.message).splitlines()[0]
        return Local("backup.refused", {"job": job.name, "message": message}, desc="not run")
    lanes = tuple(tuple(vzdump.steps[i : i + 2]) for i in range(0, len(vzdump.steps), 2))
    return Fanout(lanes, parallel=1, desc=VZDUMP)


def verdict(job: Job, outcome: StepResult, started: float) -> dict[str, Any]:
    """The run record of a vzdump job from its fan-out's results: WARNINGS fail the job."""
    from ...proxmox.vzdump import outcomes

    results = outcomes([r for lane in outcome.value or [] for r in lane])
    bad = [r for r in results if r.status != "ok"]
    finished = time.time()
    out: dict[str, Any] = {
        "job": job.name,
        "kind": job.kind,
        "started": started,
        "finished": finished,
        "duration_s": round(finished - started, 3),
        "status": "failed" if bad or not results else "ok",
        "snapshots": {f"vm{r.vmid}": r.volid or "" for r in results},
        "kept": {},
        "bytes": 0,
    }
    # a fallback from snapshot to suspend mode (a frozen container) is said even on success
    said = [r for r in results if r in bad or "fell back" in r.message]
    if said:
        out["message"] = "; ".join(
            f"guest {r.vmid} on {r.node}: {r.status}: {r.message}" for r in said
        )
    return out
