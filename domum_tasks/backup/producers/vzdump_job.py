"""The vzdump job kind: Proxmox writes and prunes the archives (proxmox.vzdump, shared with the
proxmox namespace); Domum judges each guest's task. `WARNINGS` is not success: the job fails.
"""

from __future__ import annotations

import time
from typing import Any

from ...inventory.model import Inventory
from ...plan import Local
from .. import jobs
from ..jobs import Job


def prune_policy(inv: Inventory, job: Job) -> dict[str, int]:
    """The job's retention as PVE prune-backups keys (keep_within has no PVE equivalent)."""
    policy = jobs.retention(inv, job)
    keys = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
    return {k: int(getattr(policy, k)) for k in keys if getattr(policy, k)}


def storage(inv: Inventory, job: Job) -> str | None:
    for name in job.spec.targets:
        target = inv.backup.targets.get(name)
        if target is not None and target.type == "pve-storage":
            return target.repository
    return None


def step(inv: Inventory, job: Job) -> Local:
    """The job as one step: proxmox.vzdump's runner posts one vzdump per guest and judges it."""
    jobs.retention_flags(inv, job)  # an empty policy is refused before anything runs
    return Local(
        "backup.vzdump",
        {
            "job": job.name,
            "vmids": sorted(job.spec.vmids),
            "storage": storage(inv, job),
            "prune": prune_policy(inv, job),
            "deadline_s": job.spec.timeout,
        },
        desc="POST /nodes/{node}/vzdump per guest; WARNINGS fail the job",
    )


def run(inv: Inventory, job: Job) -> dict[str, Any]:
    from ...proxmox.vzdump import run_vzdump

    started = time.time()
    jobs.retention_flags(inv, job)  # an empty policy is refused here too
    results = run_vzdump(
        inv,
        job.spec.vmids,
        storage=storage(inv, job),
        prune=prune_policy(inv, job),
        deadline_s=job.spec.timeout,
    )
    bad = [r for r in results if r.status != "ok"]
    finished = time.time()
    out: dict[str, Any] = {
        "job": job.name,
        "kind": job.kind,
        "started": started,
        "finished": finished,
        "duration_s": round(finished - started, 3),
        "status": "failed" if bad else "ok",
        "snapshots": {f"vm{r.vmid}": r.volid or "" for r in results},
        "kept": {},
        "bytes": 0,
    }
    if bad:
        out["message"] = "; ".join(
            f"guest {r.vmid} on {r.node}: {r.status}: {r.message}" for r in bad
        )
    return out
