"""`backup.drill` of a `nas` job from the NAS's own repository, done ON the NAS.

Restoring a whole Unraid share to the admin machine for every drill needs the share's size
again here and pulls it all over the network. Instead restic on the NAS (repository/on_nas.py)
restores into a temporary directory next to the repository (or the job's `drill_dir`):

1. prepare: remove what a killed drill left there, make the directory anew, and ask
   `df -Pk` for the free space;
2. size: `restic stats --mode restore-size` of the snapshot (restic 0.18 cmd/restic/cmd_stats.go,
   statsWalkTree: every node counted, sizes summed with each hard-linked inode once). A restore
   that would not fit (with a margin) is refused before anything is written;
3. restore with `--verify` (restic re-reads every restored file against the repository's blob
   hashes, cmd_restore.go), --retry-lock as every restic Domum runs, never an unlock;
4. count what was restored (`find`) against restic's own count and size of the snapshot: a
   restore that left anything out fails the drill (what the manifest check is for the others);
5. the directory is removed again: right after the drill, and in the plan's finally steps
   (a failure, SIGTERM); a drill killed outright leaves it for the next drill's step 1.

Failures are the drill's outcome (recorded per job and target), never a crash of the plan.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from ...errors import CommandFailed, DomumError
from ...inventory.model import Inventory
from ...plan import Local, Step
from ..jobs import Job
from ..repository import on_nas, restic

DRILL = "backup.nas-drill"
REMOVE = "backup.nas-remove"
MARGIN = 0.10  # of the snapshot's size, plus MARGIN_MIN: directories, filesystem overhead
MARGIN_MIN = 16 << 20
# every entry restored (as restic counts nodes) and the bytes of regular files, each
# hard-linked inode once (as restic sums them); GNU find's -printf, as on Unraid
_COUNT = (
    "find {w} -mindepth 1 -printf '%y %n %i %s\\n' | "
    'awk \'{{n++}} $1=="f" {{f++}} $1=="f" && ($2==1 || !s[$3]++) {{b+=$4}} '
    "END {{print n+0, f+0, b+0}}'"
)


def work_dir(inv: Inventory, job: Job, where: on_nas.OnNas) -> tuple[str, str]:
    """(base, work): where the drill restores on the NAS. base: the job's drill_dir, else the
    repository's parent directory there (same disk as the repository)."""
    base = job.spec.drill_dir or posixpath.dirname(where.path.rstrip("/")) or "."
    return base, posixpath.join(base, f".domum-drill-{job.name}")


def steps(
    inv: Inventory, job: Job, r: restic.Repo, snap: dict[str, Any]
) -> tuple[list[Step], Step] | None:
    """The drill steps on the NAS and the removal (also for the finally steps), or None when
    this target is not the NAS's own repository (the drill then restores here)."""
    from ..producers import nas_remote

    where = on_nas.on_nas(inv, r.name)
    if job.kind != "nas" or where is None:
        return None
    sid = str(snap.get("short_id") or snap["id"])
    base, work = work_dir(inv, job, where)
    w, b = shlex.quote(work), shlex.quote(base)
    remove = Local(
        REMOVE,
        {"argv": nas_remote.ssh_argv(inv, f"rm -rf -- {w}")},
        desc=f"remove the drill's copy {work} on the NAS",
    )

    def remote(args: list[str], timeout_s: float) -> dict[str, Any]:
        return on_nas.remote_args(inv, where, args, timeout_s)

    drill = Local(
        DRILL,
        {
            "job": job.name,
            "target": r.name,
            "snapshot": sid,
            "base": base,
            "work": work,
            "prepare": nas_remote.ssh_argv(inv, f"rm -rf -- {w} && mkdir -p -- {w} && df -Pk {b}"),
            "stats": remote(["--no-lock", "stats", "--json", "--mode", "restore-size", sid], 600),
            "restore": remote(
                [*r.retry_lock("restore"), "restore", sid, "--target", work, "--verify"],
                job.spec.timeout,
            ),
            "count": nas_remote.ssh_argv(inv, _COUNT.format(w=w)),
        },
        desc=f"on the NAS: restore snapshot {sid} into {work} (if it fits), restic --verify, "
        "count against the snapshot",
    )
    return [*on_nas.install_steps(inv, [r.name]), drill], remove


def free_bytes(df_out: str) -> int:
    """Available bytes from POSIX `df -Pk` (the last line's 4th column, in 1024-byte units)."""
    lines = [ln for ln in df_out.strip().splitlines() if ln.strip()]
    try:
        return int(lines[-1].split()[3]) * 1024
    except (IndexError, ValueError):
        raise DomumError(f"NAS: cannot read the free space from df: {df_out.strip()!r}") from None


def needed(size: int) -> int:
    return size + max(int(size * MARGIN), MARGIN_MIN)


def ssh_out(argv: list[str], what: str) -> str:
    from ...run import run_cmd

    proc = run_cmd([str(a) for a in argv], timeout_s=600, check=False)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        raise CommandFailed(f"NAS: {what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def restic_out(r: restic.Repo, args: Mapping[str, Any], what: str) -> str:
    done = on_nas.run(r, args)
    res = restic.Result(done.value, done.stdout, done.stderr)
    if res.outcome != "ok":
        raise CommandFailed(
            f"restic {what} on the NAS {res.outcome} (exit {res.code}): {res.tail(2)}"
        )
    return str(done.stdout)


def drill(r: restic.Repo, args: Mapping[str, Any]) -> dict[str, Any]:
    """Run the drill on the NAS: {"ok": True, "files", "bytes"} (regular files, their bytes)
    or {"ok": False, "error"}."""
    try:
        free = free_bytes(ssh_out(args["prepare"], f"prepare {args['work']}"))
        stats = restic.json_value(restic_out(r, args["stats"], "stats")) or {}
        size, nodes = int(stats.get("total_size") or 0), int(stats.get("total_file_count") or 0)
        if free < needed(size):
            return {
                "ok": False,
                "error": f"refused: restoring snapshot {args['snapshot']} needs {needed(size)} "
                f"bytes ({size} + margin) but {args['base']} on the NAS has {free} free; "
                f"nothing restored (set backup.jobs.{args['job']}.drill_dir to a larger place)",
            }
        restic_out(r, args["restore"], "restore --verify")
        got = ssh_out(args["count"], "count the restored files").split()
        n, f, b = int(got[0]), int(got[1]), int(got[2])
        if (n, b) != (nodes, size):
            return {
                "ok": False,
                "error": f"restored {n} entries, {b} bytes on the NAS; the snapshot holds "
                f"{nodes} entries, {size} bytes (restic stats): the restore is incomplete",
            }
        return {"ok": True, "files": f, "bytes": b}
    except (DomumError, OSError, ValueError, IndexError) as exc:
        return {"ok": False, "error": str(exc).splitlines()[0]}


def outcome(done: Any) -> tuple[int, int]:
    """A drill step's result for DrillRun.record: (files, bytes), or the failure raised."""
    value = getattr(done, "value", done)
    if not isinstance(value, dict) or not value.get("ok"):
        error = value.get("error") if isinstance(value, dict) else None
        raise DomumError(str(error or "the drill on the NAS did not run"))
    return int(value["files"]), int(value["bytes"])


def handlers(repos: Mapping[str, restic.Repo]) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
    def remove(args: Mapping[str, Any]) -> None:
        ssh_out(list(args["argv"]), "remove the drill's copy")

    return {
        **on_nas.handlers(repos),
        DRILL: lambda a: drill(repos[str(a["target"])], a),
        REMOVE: remove,
    }
