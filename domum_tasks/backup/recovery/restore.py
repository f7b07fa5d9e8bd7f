"""`backup.restore` and `backup.drill`: restic restores a snapshot, Domum re-checks every file
against MANIFEST.sha256 (and an etcd snapshot's own sha256 trailer) before saying it is good.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ...errors import ConfigError, DomumError, Refused, VerifyError
from ...inventory.model import Inventory
from ..jobs import Job
from ..producers import stage
from ..repository import access, restic
from ..repository.listing import parse_time

_HEX = re.compile(r"^[0-9a-f]{4,64}$")


def choose(snaps: list[dict[str, Any]], at: str, job: str, target: str) -> dict[str, Any]:
    """--at: a snapshot id (prefix), or a time (the newest complete one not after it);
    default the newest complete snapshot. Partial snapshots only by explicit id."""
    if at and _HEX.match(at):
        found = [s for s in snaps if str(s.get("id", "")).startswith(at)]
        if len(found) != 1:
            raise ConfigError(
                f"--at {at}: {'no' if not found else 'more than one'} snapshot of job {job} on {target} matches"
            )
        return found[0]
    good = access.complete(snaps)
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise ConfigError(
                f"--at {at!r}: not a snapshot id or a time like 2026-11-20T03:00"
            ) from None
        limit = (when if when.tzinfo else when.astimezone()).timestamp()
        good = [s for s in good if parse_time(str(s["time"])) <= limit]
    if not good:
        raise DomumError(
            f"job {job} on {target}: no complete snapshot" + (f" at or before {at}" if at else "")
        )
    return good[-1]


def tree_path(snap: dict[str, Any], job: str) -> str:
    """Where the job's staging dir sits inside the snapshot: restic keeps an absolute
    backup path whole (/var/lib/domum/staging/<job>)."""
    paths = snap.get("paths") or []
    return "/" + (str(paths[0]).lstrip("/") if paths else job)


def snapshot_root(restored: Path, snap: dict[str, Any], job: str) -> Path:
    return restored / tree_path(snap, job).lstrip("/")


def restore_into(
    r: restic.Repo,
    job: Job,
    snap: dict[str, Any],
    to: Path,
    *,
    timeout_s: float,
    force: bool = False,
) -> tuple[int, int]:
    """Restore the job's tree of `snap` into `to` (its contents, not the staging path), verify."""
    to.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".domum-restore-", dir=to))
    try:
        sid = str(snap.get("short_id") or snap["id"])
        res = restic.run(r, ["restore", sid, "--target", str(tmp)], timeout_s=timeout_s)
        access.check_result(r, res, "restore")
        root = snapshot_root(tmp, snap, job.name)
        if not root.is_dir():
            raise VerifyError(
                f"snapshot {sid} holds no {job.name}/ tree: not a Domum backup of this job"
            )
        for entry in sorted(root.iterdir()):
            dest = to / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.rename(entry, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files, size = stage.verify_tree(to, allow_extra=force)
    if job.kind == "etcd-snapshot":
        from ...talos.ops import etcd

        etcd.verify_snapshot_file(to / "etcd.snapshot")
    return files, size


def check_destination(to: Path, force: bool) -> None:
    if to.exists() and not to.is_dir():
        raise ConfigError(f"--to {to}: exists and is not a directory")
    if to.is_dir() and any(to.iterdir()) and not force:
        raise Refused(
            f"--to {to} is not empty",
            hint="choose an empty directory, or pass --force to overwrite what the backup holds",
        )


def recovery_steps(inv: Inventory, to: Path) -> list[str]:
    """What to do with a restored etcd snapshot: talosctl's documented disaster recovery."""
    from ...talos.argv import talosctl

    cps = list(inv.controlplanes.items())
    first_id, first = cps[0]
    snap = to / "etcd.snapshot"
    lines = [
        "etcd disaster recovery (Talos): the snapshot alone is not enough, restore the config job too",
        "  1. restore the secrets and inventory: inv backup.restore --job <config job> --to <dir>;",
        "     regenerate machine configs from the same secrets bundle: inv talos.genconfig",
        "  2. wipe every control plane's EPHEMERAL partition (etcd data), e.g. for each one:",
    ]
    for _, node in cps:
        argv = talosctl(
            inv,
            "reset",
            "--graceful=false",
            "--reboot",
            "--system-labels-to-wipe=EPHEMERAL",
            nodes=[str(node.ip)],
        )
        lines.append("       " + " ".join(argv))
    lines += [
        f"  3. wait until `talosctl service etcd` on {first.hostname} shows STATE Preparing, then on exactly ONE node:",
        "       "
        + " ".join(talosctl(inv, "bootstrap", f"--recover-from={snap}", nodes=[str(first.ip)])),
        f"     (node {first_id}); the other control planes rejoin by themselves",
    ]
    return lines


def drill(inv: Inventory, job: Job, data: dict[str, Any], work: Path) -> str:
    """Restore the newest snapshot of `job` from its first target into a temp dir, verify it,
    delete it; record the result. Returns a one-line outcome (raises on failure)."""
    entry = data["drill"].setdefault(job.name, {})
    entry["last_run"] = time.time()
    target = next(iter(access.job_repos(inv, job)), None)
    try:
        if target is None:
            raise ConfigError(f"job {job.name} has no restic target to drill")
        r = access.repo_for(inv, target)
        snap = choose(access.snapshots(r, job.name), "", job.name, target)
        work.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"drill-{job.name}-", dir=work))
        try:
            files, size = restore_into(r, job, snap, tmp, timeout_s=job.spec.timeout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        msg = f"{job.name}: snapshot {snap.get('short_id')} from {target}: {files} files, {size} bytes, byte-identical"
        entry.update(last_success=time.time(), ok=True, message=msg)
        return msg
    except DomumError as exc:
        entry.update(ok=False, message=str(exc).splitlines()[0])
        raise
