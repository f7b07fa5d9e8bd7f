"""`backup.prune`: restic's own `forget --dry-run` decides; Domum checks it and removes exactly
the snapshots the dry run listed (by id), so what was shown is what is deleted.

Rails: an empty policy is refused (exit 2); the newest complete snapshot of a job is never
removed, whatever restic answers.
"""

from __future__ import annotations

from typing import Any

from ...errors import Refused
from ...inventory.model import Inventory
from .. import plan
from ..jobs import Job
from . import access, restic


def dry_run_rows(inv: Inventory, job: Job, target: str) -> list[dict[str, Any]]:
    r = access.repo_for(inv, target)
    args = plan.forget_args(inv, job, dry_run=True)  # refuses an empty policy first
    res = restic.run(r, args, timeout_s=job.spec.timeout)
    access.check_result(r, res, "forget --dry-run")
    rows = restic.forget_rows(res.stdout, job.name, target)
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


def apply(inv: Inventory, job: Job, target: str, rows: list[dict[str, Any]]) -> list[str]:
    """Forget (and prune) exactly the `remove` rows; returns their short ids."""
    ids = [str(row["id"]) for row in rows if row["action"] == "remove"]
    if not ids:
        return []
    r = access.repo_for(inv, target)
    res = restic.run(r, ["forget", "--prune", *ids], timeout_s=job.spec.timeout)
    access.check_result(r, res, "forget --prune")
    return [i[:8] for i in ids]
