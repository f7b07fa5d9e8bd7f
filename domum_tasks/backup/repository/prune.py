"""`backup.prune`'s probe: restic's own `forget --dry-run` decides over complete snapshots,
Domum decides over partial ones, and checks both.

Rails: an empty policy is refused (exit 2); the job's newest complete snapshot (from its own
listing, not from restic's answer) is never removed, whatever restic answers (exit 4, before
anything runs). Partial snapshots do not count toward retention: every one is removed except
the newest, when it is newer than the newest complete one (kept for inspection). Unmarked
snapshots (made before Domum marked completeness) are neither counted nor removed.
"""

from __future__ import annotations

from typing import Any

from ...errors import Refused
from ...inventory.model import Inventory
from .. import plan
from ..jobs import Job
from . import access, facts, restic
from .listing import parse_time


def dry_run_rows(inv: Inventory, job: Job, target: str, r: restic.Repo) -> list[dict[str, Any]]:
    args = plan.forget_args(inv, job, dry_run=True)  # refuses an empty policy first
    rows = restic.forget_rows(facts.forget_decision(r, args, job.spec.timeout), job.name, target)
    snaps = facts.snapshots(r, job.name)
    rows += partial_rows(snaps, job.name, target)
    never_the_newest(rows, snaps, job, target)
    rows.sort(key=lambda row: str(row["time"]), reverse=True)
    return rows


def partial_rows(snaps: list[dict[str, Any]], job: str, target: str) -> list[dict[str, Any]]:
    """Partial snapshots: removed, but the newest one newer than every complete one stays."""
    good = access.complete(snaps)
    newest_good = max((parse_time(str(s["time"])) for s in good), default=float("-inf"))
    partial = sorted(
        (s for s in snaps if access.is_partial(s)), key=lambda s: parse_time(str(s["time"]))
    )
    rows = []
    for i, s in enumerate(partial):
        inspect = i == len(partial) - 1 and parse_time(str(s["time"])) > newest_good
        if inspect:
            rows.append(
                restic.snapshot_row(
                    s, job, target, "keep", ["partial, newer than any complete one"]
                )
            )
        else:
            rows.append(restic.snapshot_row(s, job, target, "remove", ["partial (does not count)"]))
    rows += [
        restic.snapshot_row(
            s, job, target, "keep", ["unmarked (older Domum): never counted, never removed"]
        )
        for s in snaps
        if access.state_of(s) == "unmarked"
    ]
    return rows


def never_the_newest(
    rows: list[dict[str, Any]], snaps: list[dict[str, Any]], job: Job, target: str
) -> None:
    """The newest complete snapshot of the listing must not be among the removals, and
    nothing complete may be removed unless something complete is kept."""
    good = access.complete(snaps)
    doomed = {str(row["id"]) for row in rows if row["action"] == "remove"}
    if good:
        newest = max(good, key=lambda s: parse_time(str(s["time"])))
        if str(newest.get("id")) in doomed:
            raise Refused(
                f"job {job.name} on {target}: restic would remove the newest complete snapshot "
                f"{newest.get('short_id') or str(newest.get('id'))[:8]}; refusing to prune"
            )
    if good and all(str(s.get("id")) in doomed for s in good):
        raise Refused(f"job {job.name} on {target}: every complete snapshot would go; refusing")


def raise_failures(results: list[Any], secrets: list[str]) -> None:
    """The forget steps run unchecked (a lock is an outcome): exit 5 naming the holder when only
    locks stopped them, exit 1 for any other failure."""
    from ...errors import CommandFailed, LockHeld
    from ...plan import Cmd, mask

    bad = [
        (x.step, restic.Result(x.value if isinstance(x.value, int) else None, x.stdout, x.stderr))
        for x in results
        if isinstance(x.step, Cmd) and not x.ok
    ]
    lines = [f"{step.desc}: {mask(res.tail(3), secrets)}" for step, res in bad]
    if bad and all(res.outcome == "locked" for _, res in bad):
        raise LockHeld("; ".join(lines))
    if bad:
        raise CommandFailed("; ".join(lines))
