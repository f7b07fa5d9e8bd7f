"""One backup job, run in a forked process of its own (runner.run_worker).

The parent (runner.py) holds the lock, gives this process a deadline and kills its whole
process group (rsync, ssh, restic) when it passes. The result is a JSON file written atomically
at the end; a killed worker writes none, so its run is recorded as failed, never as done.

Phases: pull (rsync / etcd / copy) -> stage (manifest, sync, rename) -> backup (restic, every
target) -> forget (retention, only when every backup succeeded).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ...errors import DomumError
from ...inventory.model import Inventory
from .. import jobs, plan
from ..jobs import Job
from ..producers import sources, stage
from ..repository import restic

# The job's deadline is enforced by the parent, which kills the whole process group. A tool's own
# timeout is only a backstop for a parent that died, so it sits past the deadline: the job then
# fails as "killed at its deadline", the same way whichever tool was running.
BACKSTOP_S = 60.0


def tool_timeout(job: Job) -> float:
    return job.spec.timeout + BACKSTOP_S


def phase_file(state_dir: Path, job: str) -> Path:
    return state_dir / "run" / f"{job}.phase"


def _phase(state_dir: Path, job: str, name: str, timings: dict[str, float]) -> None:
    now = time.monotonic()
    if timings:
        last = list(timings)[-1]
        timings[last] = round(now - timings[last], 3)
    timings[name] = now
    p = phase_file(state_dir, job)
    try:  # informational (what a killed job was doing): a full disk must not hide the real error
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(name + "\n")
    except OSError:
        pass


def repos(inv: Inventory, job: Job) -> dict[str, restic.Repo]:
    from ...secrets.store import Secrets

    secrets = Secrets()
    return {
        name: restic.repo(inv, name, t, secrets[jobs.password_key(name)])
        for name, t in jobs.restic_targets(inv, job).items()
    }


def produce(inv: Inventory, job: Job, part: Path) -> dict[str, Any]:
    spec, timeout = job.spec, tool_timeout(job)
    if job.kind == "files":
        return sources.pull_files(inv, spec, part, timeout)
    if job.kind == "nas":
        return sources.pull_nas(inv, spec, part, timeout)
    if job.kind == "config":
        return sources.copy_config(inv, spec, part)
    if job.kind == "etcd-snapshot":
        return sources.etcd_snapshot(inv, part)
    raise DomumError(f"job kind {job.kind} has no restic producer")


def _backup_one(inv: Inventory, job: Job, r: restic.Repo, final: Path) -> dict[str, Any]:
    res = restic.run(r, plan.backup_args(inv, job, final), timeout_s=tool_timeout(job))
    summary = restic.backup_summary(res.stdout)
    snap = str(summary.get("snapshot_id") or "")
    out: dict[str, Any] = {"snapshot": snap, "added": int(summary.get("data_added") or 0)}
    outcome = res.outcome
    if outcome == "ok" and snap:
        return {**out, "status": "ok"}
    if outcome == "incomplete":
        # restic made a snapshot that lacks files: mark it in the repository too (restic #5288)
        if snap:
            restic.run(r, ["tag", "--add", jobs.PARTIAL_TAG, snap], timeout_s=600)
        msg = f"restic exit 3: snapshot {snap or '?'} is INCOMPLETE (some files unreadable), tagged {jobs.PARTIAL_TAG!r}: {res.tail(2)}"
        return {**out, "status": "failed", "message": msg}
    if outcome == "no-repo":
        msg = f"{r.repository} is not a restic repository yet: run `inv backup.init`"
        return {**out, "status": "failed", "message": msg}
    return {
        **out,
        "status": "failed",
        "message": f"restic backup {outcome} (exit {res.code}): {res.tail()}",
    }


T = TypeVar("T")


def _each(targets: dict[str, restic.Repo], fn: Callable[[restic.Repo], T]) -> dict[str, T]:
    if len(targets) < 2:
        return {name: fn(r) for name, r in targets.items()}
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        futures = {name: pool.submit(fn, r) for name, r in targets.items()}
        return {name: f.result() for name, f in futures.items()}


def run_job(inv: Inventory, job: Job, state_dir: Path) -> dict[str, Any]:
    started = time.time()
    result: dict[str, Any] = {
        "job": job.name,
        "kind": job.kind,
        "started": started,
        "status": "failed",
        "snapshots": {},
        "kept": {},
        "targets": {},
    }
    timings: dict[str, float] = {}
    phase = "pull"
    try:
        targets = repos(inv, job)
        _phase(state_dir, job.name, phase, timings)
        part = stage.begin(state_dir, job.name, mirror=job.kind in jobs.MIRROR_KINDS)
        notes = produce(inv, job, part)
        phase = "stage"
        _phase(state_dir, job.name, phase, timings)
        cache = state_dir / "cache" / f"{job.name}.hashes.json"
        files, total, changed = stage.write_manifest(part, cache)
        summary = {
            "job": job.name,
            "kind": job.kind,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
            "bytes": total,
            "made_by": socket.gethostname(),
            **notes,
        }
        final = stage.finish(state_dir, job.name, summary, changed)
        result.update(files=files, bytes=total)
        phase = "backup"
        _phase(state_dir, job.name, phase, timings)
        failures: list[str] = []
        # targets are independent repositories: restic runs for them side by side
        backups = _each(targets, lambda r: _backup_one(inv, job, r, final))
        for name, one in backups.items():
            result["targets"][name] = one["status"]
            result["snapshots"][name] = one["snapshot"]
            result.setdefault("added", {})[name] = one["added"]
            if one["status"] != "ok":
                failures.append(f"{name}: {one['message']}")
        if not failures:
            phase = "forget"
            _phase(state_dir, job.name, phase, timings)
            forgets = _each(
                targets,
                lambda r: restic.run(
                    r, plan.forget_args(inv, job, dry_run=False), timeout_s=tool_timeout(job)
                ),
            )
            for name, res in forgets.items():
                if res.outcome != "ok":
                    failures.append(
                        f"{name}: restic forget {res.outcome} (exit {res.code}): {res.tail()}"
                    )
                    continue
                rows = restic.forget_rows(res.stdout, job.name, name)
                result["kept"][name] = sum(1 for row in rows if row["action"] == "keep")
        if failures:
            result["message"] = "; ".join(failures)
        else:
            result["status"] = "ok"
    except DomumError as exc:
        result["message"] = f"{phase}: {str(exc).splitlines()[0]}"
    except OSError as exc:  # disk full, permissions: a clean failure with what failed
        result["message"] = f"{phase}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    result["phase"] = phase
    _phase(state_dir, job.name, "done", timings)
    timings.pop("done")
    result["timings"] = timings
    result["finished"] = time.time()
    result["duration_s"] = round(result["finished"] - started, 3)
    return result
