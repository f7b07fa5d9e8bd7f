"""The `nas` kind's backup steps: restic on the NAS over SSH (producers/nas_remote.py builds
the remote commands; kept apart from it so the NAS's verify, prune and drill, which use those
commands too, do not import the backup planner)."""

from __future__ import annotations

from pathlib import Path

from ...inventory.model import Inventory
from ...plan import Fanout, Local, ResultOf, Step
from ..jobs import Job
from ..repository.restic import Repo
from .nas_remote import (
    SNAPSHOT,
    install_args,
    login,
    repository_on_nas,
    restic_path,
    restic_remote,
    share_paths,
    ssh_argv,
)


def steps(
    inv: Inventory, job: Job, repos: dict[str, Repo], timeout_s: float, desc: str
) -> list[Step]:
    """Inside the job's process group: the binary in place, then per target restic backup
    on the NAS (tagged partial) and, only after its exit 0, the confirm to `complete` there."""
    from ..plan import backup_args, confirm_args

    login(inv)
    path = restic_path(job)
    lanes = []
    for name, r in repos.items():
        where = repository_on_nas(inv, job.name, name, inv.backup.targets[name])
        args = backup_args(inv, job, Path("/"))[:-1]
        args = [*r.retry_lock("backup"), *args]
        tag = [*r.retry_lock("tag"), *confirm_args(SNAPSHOT)]
        lanes.append(
            (
                Local(
                    "backup.nas-restic",
                    {
                        "job": job.name,
                        "target": name,
                        "timeout_s": timeout_s,
                        "argv": ssh_argv(
                            inv,
                            restic_remote(path, where, [*args, *share_paths(inv, job)]),
                        ),
                    },
                    desc=f"restic backup on the NAS into {where} ({name}; password on stdin)",
                ),
                Local(
                    "backup.nas-confirm",
                    {
                        "job": job.name,
                        "target": name,
                        "argv": ssh_argv(inv, restic_remote(path, where, tag)),
                        "backup": ResultOf(0),
                    },
                    desc=f"only after exit 0: mark the snapshot 'complete' on the NAS ({name})",
                ),
            )
        )
    return [
        Local("backup.nas-install", install_args(inv, job), desc=f"pinned restic at {path}"),
        Fanout(tuple(lanes), parallel=max(1, len(lanes)), desc=desc),
    ]
