"""`nas` jobs at run time: the pinned restic put on the NAS (checksum-verified), restic run
there with the password on its stdin, its JSON read back (see producers/nas_remote.py)."""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Mapping
from typing import Any

from ...errors import CommandFailed, DomumError
from ...plan import Local
from ...run import StepResult, resolve_program, run_cmd
from .. import jobs
from ..jobs import Job
from ..producers.nas_remote import SNAPSHOT
from ..repository import restic

_CHUNK = 1 << 20
# what `uname -m` says for the architectures Go's restic is built for (local name: remote)
_SAME_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64", "armv7l": "armv7l"}


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _ssh(argv: list[str], what: str, timeout_s: float = 120.0) -> str:
    proc = run_cmd(argv, timeout_s=timeout_s, check=False, inherit_fds=True)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        raise CommandFailed(f"NAS: {what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def _digest(out: str) -> str:
    """The hex digest of `sha256sum` output ("" when it printed none)."""
    for line in out.splitlines():
        head = line.split(" ", 1)[0].lstrip("\\")
        if len(head) == 64 and all(c in "0123456789abcdef" for c in head):
            return head
    return ""


def install(args: Mapping[str, Any]) -> dict[str, Any]:
    """Copy the local pinned restic to the NAS unless the same bytes are already there."""
    local = os.path.realpath(resolve_program(str(args["local"])))
    want = sha256_file(local)
    out = _ssh(list(args["probe"]), "probe the restic binary")
    arch = (out.splitlines() or [""])[0].strip()
    mine = _SAME_ARCH.get(platform.machine(), platform.machine())
    if arch != mine:
        raise DomumError(
            f"NAS is {arch or 'of unknown architecture'}, the pinned restic here is for {mine}: "
            "install that restic on the NAS and name it in the job's restic_path"
        )
    if _digest(out) == want:
        return {"copied": False, "sha256": want, "path": args["path"]}
    _ssh(list(args["prepare"]), "prepare the restic directory")
    copy = [local if a == "<local pinned restic>" else str(a) for a in args["copy"]]
    _ssh(copy, "copy restic", timeout_s=600.0)
    got = _digest(_ssh(list(args["check"]), "hash the copied restic"))
    if got != want:  # never run a binary that is not the pinned one
        raise DomumError(
            f"NAS: the copied restic's sha256 {got or '(none)'} is not the pinned {want}: "
            "not installed"
        )
    _ssh(list(args["commit"]), "move restic into place")
    return {"copied": True, "sha256": want, "path": args["path"]}


def run_restic(r: restic.Repo, args: Mapping[str, Any]) -> StepResult:
    """restic on the NAS; its exit code, stdout and stderr as a restic Cmd step's result, so
    the run record reads it the same way. The password goes only into ssh's stdin."""
    proc = run_cmd(
        list(args["argv"]),
        timeout_s=float(args["timeout_s"]),
        secrets=[r.password],
        check=False,
        input_text=r.password + "\n",
        inherit_fds=True,
    )
    step = Local("backup.nas-restic", dict(args))
    # restic's status lines, if any (--quiet keeps them out): not part of the result
    out = "".join(
        line
        for line in proc.stdout.splitlines(keepends=True)
        if '"message_type":"status"' not in line
    )
    return StepResult(step, proc.returncode == 0, out, proc.stderr, proc.returncode)


def confirm(
    r: restic.Repo, args: Mapping[str, Any], job: Job, last_complete: int | None
) -> dict[str, str]:
    """As marking.confirm, on the NAS: reached only after exit 0; a failure leaves `partial`.

    The guards (snapshot/guards.py) run here, on restic's own count of the shares: with no
    staged copy there is nothing to count before restic ran. A stopped Unraid array or an
    unmounted disk then leaves a near-empty snapshot tagged `partial`, which nothing counts
    (retention, restore, drill, copy_to) and backup.prune removes."""
    from .guards import GuardFailed, problems

    summary = restic.backup_summary(args["backup"].stdout)
    snap = str(summary.get("snapshot_id") or "")
    if not snap:
        raise DomumError("restic backup reported no snapshot id: nothing marked complete")
    files = int(summary.get("total_files_processed") or 0)
    found = problems(job, files, set(), last_complete)
    if found:
        raise GuardFailed(
            f"guard failed: snapshot {snap[:8]} stays {jobs.PARTIAL_TAG!r} (not counted), "
            f"retention skipped: {'; '.join(found)}"
        )
    argv = [str(a).replace(f"'{SNAPSHOT}'", snap) for a in args["argv"]]
    proc = run_cmd(
        argv,
        timeout_s=600,
        secrets=[r.password],
        check=False,
        input_text=r.password + "\n",
        inherit_fds=True,
    )
    res = restic.Result(proc.returncode, proc.stdout, proc.stderr)
    new = restic.tag_result(proc.stdout)
    if res.outcome != "ok" or not new:
        raise CommandFailed(
            f"snapshot {snap[:8]} saved but NOT marked 'complete' on the NAS: restic tag "
            f"{res.outcome} (exit {res.code}): {res.tail(2)}; it stays 'partial' and does not "
            "count",
            returncode=res.code,
        )
    return {"snapshot": new, "original": snap}
