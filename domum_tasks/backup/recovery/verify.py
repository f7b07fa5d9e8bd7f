"""`backup.verify`: `restic check --read-data-subset=n/N` with n rotating, so every pack is read
within N runs, plus a structural check of each job's newest snapshot against its manifest.

The rotation lives in the state file: `next` advances only after a passing check, so a failed
slice is read again; `covered` lists the slices passed since the cycle began.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ...errors import DomumError, VerifyError
from ...inventory.model import Inventory
from ..jobs import Job
from ..producers import stage
from ..repository import access, restic


def next_slice(entry: dict[str, Any], subset: int) -> int:
    if int(entry.get("of") or 0) != subset:
        entry.clear()
        entry.update(of=subset, next=1, covered=[])
    return int(entry.get("next") or 1)


def advance(entry: dict[str, Any], n: int, subset: int, now: float) -> None:
    covered = sorted({*entry.get("covered", []), n})
    entry["last_success"] = now
    if len(covered) >= subset:
        entry["last_full"] = now
        covered = []
    entry["covered"] = covered
    entry["next"] = n % subset + 1


def check_target(r: restic.Repo, n: int, subset: int, timeout_s: float) -> None:
    res = restic.run(r, ["check", f"--read-data-subset={n}/{subset}"], timeout_s=timeout_s)
    if res.outcome == "ok":
        return
    if res.outcome != "failed":  # no repository, wrong password: say that, not "damaged"
        access.check_result(r, res, "check")
    packs = restic.bad_packs(res.stdout + "\n" + res.stderr)
    named = f": damaged pack(s) {', '.join(packs)}" if packs else f": {res.tail()}"
    raise VerifyError(f"restic check {n}/{subset} on {r.name} FAILED{named}")


def _dump(r: restic.Repo, snap: str, path: str) -> str:
    res = restic.run(r, ["dump", snap, path], timeout_s=600)
    access.check_result(r, res, f"dump {path}")
    return res.stdout


def check_newest_manifest(r: restic.Repo, job: Job) -> str:
    """The newest complete snapshot lists every file its manifest names, with the summary's
    total size (reads the tree, not the data: `restic check` reads the data)."""
    snaps = access.complete(access.snapshots(r, job.name))
    if not snaps:
        raise VerifyError(f"job {job.name} on {r.name}: no complete snapshot")
    snap = snaps[-1]
    sid = str(snap.get("short_id") or snap["id"])
    res = restic.run(r, ["ls", "--json", sid], timeout_s=600)
    access.check_result(r, res, "ls")
    from .restore import tree_path

    root = tree_path(snap, job.name)
    files = {
        str(n["path"])[len(root) + 1 :]: int(n.get("size") or 0)
        for n in restic.json_lines(res.stdout)
        if n.get("struct_type") == "node"
        and n.get("type") == "file"
        and str(n.get("path", "")).startswith(root + "/")
    }
    manifest_text = _dump(r, sid, f"{root}/{stage.MANIFEST}")
    summary = json.loads(_dump(r, sid, f"{root}/{stage.SUMMARY}"))
    names = set()
    for line in manifest_text.splitlines():
        body = line[1:] if line.startswith("\\") else line
        names.add(body.partition("  ")[2])
    data_files = {k: v for k, v in files.items() if k not in stage.META}
    missing = sorted(names - set(data_files))
    if missing:
        raise VerifyError(
            f"job {job.name} snapshot {sid} on {r.name}: {len(missing)} manifest file(s) missing, e.g. {missing[0]}"
        )
    if sum(data_files.values()) != int(summary.get("bytes", -1)):
        raise VerifyError(
            f"job {job.name} snapshot {sid} on {r.name}: size differs from summary.json"
        )
    return sid


def verify(inv: Inventory, selected: list[Job], data: dict[str, Any], subset: int) -> list[str]:
    """Check every restic target of the jobs; returns failure lines (state updated in place)."""
    failures: list[str] = []
    targets: dict[str, list[Job]] = {}
    for job in selected:
        if job.uses_restic:
            for t in job.spec.targets:
                if inv.backup.targets[t].type == "restic":
                    targets.setdefault(t, []).append(job)
    for name, its_jobs in sorted(targets.items()):
        entry = data["verify"].setdefault(name, {})
        try:
            r = access.repo_for(inv, name)
            n = next_slice(entry, subset)
            check_target(r, n, subset, max(j.spec.timeout for j in its_jobs))
            for job in its_jobs:
                if data["jobs"].get(job.name, {}).get("last_success"):  # a job not yet run has none
                    check_newest_manifest(r, job)
            advance(entry, n, subset, time.time())
            entry["last_result"] = "ok"
        except DomumError as exc:
            entry["last_result"] = str(exc).splitlines()[0]
            failures.append(f"{name}: {entry['last_result']}")
        entry["last_run"] = time.time()
    return failures
