"""`backup.prune`'s probe: restic's own `forget --dry-run` decides, and Domum checks it.

Rails: an empty policy is refused (exit 2); the newest complete snapshot of a job is never
removed, whatever restic answers (exit 4, before anything runs).
"""

from __future__ import annotations

from typing import Any

from ...errors import Refused
from ...inventory.model import Inventory
from .. import plan
from ..jobs import Job
from . import facts, restic


def dry_run_rows(inv: Inventory, job: Job, target: str, r: restic.Repo) -> list[dict[str, Any]]:
    args = plan.forget_args(inv, job, dry_run=True)  # refuses an empty policy first
    rows = restic.forget_rows(facts.forget_decision(r, args, job.spec.timeout), job.name, target)
    _never_the_newest(rows, job, target)
    return rows


def _never_the_newest(rows: list[dict[str, Any]], job: Job, target: str) -> None:
    if not rows:
        return
    newest = max(rows, key=lambda row: str(row["time"]))
    if newest["action"] == "remove":
        raise Refused(
            f"job {job.name} on {target}: restic would remove the newest snapshot "
            f"{newest['snapshot']}; refusing to prune"
        )
