"""`backup.restore --on-nas`: a `nas` job's snapshot restored by restic ON the NAS into a path
there, from the NAS's own repository. Without --on-nas, `--to` is a path on this machine
(recovery/nas_restore.py); with it nothing of the share crosses the network.

- Destination: read first (a probe over SSH, nothing written): a path that is not a directory is
  bad input; a non-empty directory needs --force (exit 4), as for every restore.
- restic restore writes the snapshot's files under `--to` keeping their share paths, as
  `--target` lays them out, and never deletes what the snapshot does not hold (restic deletes
  only with --delete, cmd_restore.go): a merge. `--verify` re-reads every restored file against
  the repository's blob hashes.
- A restore that would not fit in `df`'s free space there is refused before anything is written
  (the snapshot's restore size from `restic stats`, as the drill does: nas_drill.py).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from ...errors import ConfigError, DomumError, Refused
from ...inventory.model import Inventory
from ...plan import Local, Plan
from ..jobs import Job
from ..repository import on_nas, restic
from . import nas_drill

RESTORE = "backup.nas-restore"


def where(inv: Inventory, job: Job, r: restic.Repo) -> on_nas.OnNas:
    found = on_nas.on_nas(inv, r.name)
    if job.kind != "nas" or found is None:
        raise ConfigError(
            f"--on-nas: job {job.name} on {r.name} is not a nas job's NAS repository; valid: a "
            "nas job and its target on the NAS (sftp:<user>@<nas>:<path>)"
        )
    return found


def check_destination(inv: Inventory, to: str, force: bool) -> None:
    """The destination on the NAS, read over SSH (nothing written)."""
    from ..producers import nas_remote

    if not PurePosixPath(to).is_absolute():
        raise ConfigError(f"--to {to}: with --on-nas, an absolute path on the NAS")
    q = shlex.quote(to)
    probe = f"if [ ! -e {q} ]; then echo absent; elif [ ! -d {q} ]; then echo file; " + (
        f'elif [ -n "$(ls -A {q})" ]; then echo full; else echo empty; fi'
    )
    state = nas_drill.ssh_out(nas_remote.ssh_argv(inv, probe), f"look at {to}").strip()
    if state == "file":
        raise ConfigError(f"--to {to}: exists on the NAS and is not a directory")
    if state == "full" and not force:
        raise Refused(
            f"--to {to} on the NAS is not empty",
            hint="choose an empty directory, or pass --force to merge: the backup's files "
            "replace the same paths, nothing else is touched",
        )


def plan_restore(
    inv: Inventory, job: Job, r: restic.Repo, snap: dict[str, Any], to: str, force: bool
) -> Plan:
    from ..producers import nas_remote

    at = where(inv, job, r)
    check_destination(inv, to, force)
    sid = str(snap.get("short_id") or snap["id"])
    q = shlex.quote(to)
    plan = Plan(f"restore job {job.name} from {r.name} into {to} ON the NAS")
    plan.add(*on_nas.install_steps(inv, [r.name]))
    plan.add(
        Local(
            RESTORE,
            {
                "job": job.name,
                "target": r.name,
                "snapshot": sid,
                "to": to,
                "prepare": nas_remote.ssh_argv(inv, f"mkdir -p -- {q} && df -Pk {q}"),
                "stats": on_nas.remote_args(
                    inv, at, ["--no-lock", "stats", "--json", "--mode", "restore-size", sid], 600
                ),
                "restore": on_nas.remote_args(
                    inv,
                    at,
                    [*r.retry_lock("restore"), "restore", sid, "--target", to, "--verify"],
                    job.spec.timeout,
                ),
            },
            desc=f"on the NAS: restic restore {sid} --target {to} --verify (if it fits; "
            "a merge: nothing the snapshot does not hold is touched)",
        )
    )
    plan.secrets.append(r.password)
    return plan


def restore(r: restic.Repo, args: Mapping[str, Any]) -> tuple[int, int]:
    """(files, bytes) restic's stats give for the restored snapshot; raises on failure."""
    free = nas_drill.free_bytes(nas_drill.ssh_out(list(args["prepare"]), f"prepare {args['to']}"))
    stats = restic.json_value(nas_drill.restic_out(r, args["stats"], "stats")) or {}
    size = int(stats.get("total_size") or 0)
    if free < nas_drill.needed(size):
        raise Refused(
            f"restoring snapshot {args['snapshot']} needs {nas_drill.needed(size)} bytes "
            f"({size} + margin) but {args['to']} on the NAS has {free} free; nothing restored"
        )
    nas_drill.restic_out(r, args["restore"], "restore --verify")
    return int(stats.get("total_file_count") or 0), size


def handlers(r: restic.Repo) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
    def one(args: Mapping[str, Any]) -> tuple[int, int]:
        try:
            return restore(r, args)
        except (OSError, ValueError) as exc:
            raise DomumError(str(exc).splitlines()[0]) from None

    return {**on_nas.handlers({r.name: r}), RESTORE: one}


def report(
    job: str, target: str, to: str, snap: dict[str, Any]
) -> Callable[[list[Any], bool], None]:
    def show(results: list[Any], json_out: bool) -> None:
        entries, size = next(x.value for x in results if getattr(x.step, "action", "") == RESTORE)
        print(
            f"restored {job} snapshot {snap.get('short_id')} ({str(snap.get('time', ''))[:19]}) "
            f"from {target} into {to} ON the NAS: {entries} entries, {size} bytes, every file "
            "verified against the repository (restic restore --verify)"
        )

    return show
