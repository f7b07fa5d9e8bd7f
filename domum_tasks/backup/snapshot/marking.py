"""The step that decides what counts, run inside a job's process group: marking a snapshot
`complete` after restic exited 0 (retention is `backup.prune`'s, repository/prune.py).

Why a positive mark (issue 16 #2, #3): restic has no option to refuse saving a snapshot when it
cannot read some files (exit 3 still saves one), and `restic tag` is a second command that can
fail or be killed. So the `restic backup` call itself saves every snapshot tagged `partial`,
atomically with the snapshot, and only this step, reached only after exit 0, swaps that for
`complete`. A failure or kill at any point leaves `partial`: there is no window in which an
incomplete snapshot counts. `restic tag` writes the re-tagged copy first and deletes the old
one, so a kill in between leaves a `complete` copy and a `partial` duplicate (removed later by
`backup.prune`), never the reverse. It also gives the snapshot a new id: the record names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import CommandFailed, DomumError
from ...run import run_cmd
from .. import jobs
from ..repository import restic
from .plan import SNAPSHOT


def confirm(r: restic.Repo, args: Mapping[str, Any]) -> dict[str, str]:
    """The lane ran this only because `restic backup` exited 0: swap the snapshot's
    `partial` tag for `complete` (the planned argv, the snapshot id filled in). A failure
    here leaves it `partial`, which is safe: it is not counted, and says so."""
    snap = str(restic.backup_summary(args["backup"].stdout).get("snapshot_id") or "")
    if not snap:
        raise DomumError("restic backup reported no snapshot id: nothing marked complete")
    argv = [snap if a == SNAPSHOT else str(a) for a in args["argv"]]
    proc = run_cmd(
        argv,
        timeout_s=600,
        env=r.env(),
        secrets=[r.password],
        check=False,
        inherit_fds=True,
    )
    res = restic.Result(proc.returncode, proc.stdout, proc.stderr)
    new = restic.tag_result(proc.stdout)
    if res.outcome != "ok" or not new:
        raise CommandFailed(
            f"snapshot {snap[:8]} saved but NOT marked {jobs.COMPLETE_TAG!r}: restic tag "
            f"{res.outcome} (exit {res.code}): {res.tail(2)}; it stays "
            f"{jobs.PARTIAL_TAG!r} and does not count",
            returncode=res.code,
        )
    return {"snapshot": new, "original": snap}
