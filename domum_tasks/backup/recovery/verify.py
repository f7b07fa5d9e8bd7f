"""`backup.verify`: `restic check --read-data-subset=n/N` with n rotating, so every pack is read
within N runs, plus a structural check of each job's newest snapshot against its manifest.

The rotation lives in the state file: `next` advances only after a passing check, so a failed
slice is read again; `covered` lists the slices passed since the cycle began.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import DomumError, VerifyError
from ...inventory.model import Inventory
from ...plan import Local, Plan, ResultOf
from ...ssh import repo_path
from ..bookkeeping import interrupt, session
from ..jobs import Job
from ..producers import stage
from ..repository import access, facts, restic


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


def check_failure(r: restic.Repo, res: restic.Result, n: int, subset: int) -> str:
    """restic check's answer: "" when it passed, else why (the damaged packs by name)."""
    if res.outcome == "ok":
        return ""
    if res.outcome != "failed":  # no repository, wrong password: say that, not "damaged"
        try:
            access.check_result(r, res, "check")
        except DomumError as exc:
            return str(exc).splitlines()[0]
    packs = restic.bad_packs(res.stdout + "\n" + res.stderr)
    named = f": damaged pack(s) {', '.join(packs)}" if packs else f": {res.tail()}"
    return f"restic check {n}/{subset} on {r.name} FAILED{named}"


def _dump(r: restic.Repo, snap: str, path: str) -> str:
    res = facts.probe(r, ["--no-lock", "dump", snap, path])
    access.check_result(r, res, f"dump {path}")
    return res.stdout


def check_newest_manifest(r: restic.Repo, job: Job) -> str:
    """The newest complete snapshot lists every file its manifest names, with the summary's
    total size (reads the tree, not the data: `restic check` reads the data)."""
    snaps = access.complete(facts.snapshots(r, job.name))
    if not snaps:
        raise VerifyError(f"job {job.name} on {r.name}: no complete snapshot")
    snap = snaps[-1]
    sid = str(snap.get("short_id") or snap["id"])
    res = facts.probe(r, ["--no-lock", "ls", "--json", sid])
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


def targets_of(inv: Inventory, selected: list[Job]) -> dict[str, list[Job]]:
    from ..repository.copying import holders

    out: dict[str, list[Job]] = {}
    for job in selected:
        if job.uses_restic:
            for t in holders(inv, job):  # its restic targets and their copy_to copies
                out.setdefault(t, []).append(job)
    return dict(sorted(out.items()))


def plan_verify(
    inv: Inventory,
    selected: list[Job],
    data: dict[str, Any],
    subset: int,
    repos: dict[str, restic.Repo],
) -> Plan:
    """Per target: `restic check` of this run's slice (n from the state file; another
    client's lock is waited for, never removed), then the verdict, the newest manifests and the rotation (backup.verify-target)."""
    sd = repo_path(inv.backup.state_dir)
    plan = Plan(f"verify restic targets ({subset} slice(s) per full read)")
    from ..repository import on_nas  # the NAS's own repository: checked on the NAS

    plan.add(session.lock_step(sd), *on_nas.install_steps(inv, targets_of(inv, selected)))
    for name, its_jobs in targets_of(inv, selected).items():
        r = repos[name]
        n = next_slice(dict(data["verify"].get(name, {})), subset)
        timeout = max(j.spec.timeout for j in its_jobs)
        check = on_nas.restic_step(
            inv,
            r,
            ["check", f"--read-data-subset={n}/{subset}"],
            desc=f"read slice {n} of {subset} of the packs ({name})",
            timeout_s=timeout,
            lock="check",
        )
        plan.add(interrupt.grouped(check, f"check-{name}"))
        plan.add(
            Local(
                "backup.verify-target",
                {
                    "target": name,
                    "slice": n,
                    "subset": subset,
                    "check": ResultOf(len(plan.steps) - 1),
                    "manifests": [j.name for j in its_jobs],
                },
                desc="newest snapshot of each job that ran vs its manifest; advance the rotation",
            )
        )
    plan.add(session.save_step(sd), session.metrics_step(inv))
    plan.finally_steps.append(session.unlock_step(sd))
    plan.secrets.extend(r.password for r in repos.values())
    return plan


@dataclass
class VerifyRun(interrupt.Interruptible):
    repos: dict[str, restic.Repo] = field(default_factory=dict)
    locked: list[str] = field(default_factory=list)  # targets another client's lock stopped

    def verify_target(self, args: Mapping[str, Any]) -> None:
        name, n, subset = str(args["target"]), int(args["slice"]), int(args["subset"])
        entry = self.data["verify"].setdefault(name, {})
        next_slice(entry, subset)
        r = self.repos[name]
        done = interrupt.inner(args["check"])
        res = restic.Result(
            done.value if isinstance(done.value, int) else None, done.stdout, done.stderr
        )
        if res.outcome == "locked":
            self.locked.append(name)
        try:
            failure = check_failure(r, res, n, subset)
            if failure:
                raise VerifyError(failure)
            for job in args["manifests"]:
                if self.inv.backup.jobs[job].kind in ("nas", "postgres"):
                    continue  # restic read the shares or pg_dumpall: no manifest (the check
                    # read the data; a postgres snapshot exists only when the dump exited 0)
                if self.data["jobs"].get(job, {}).get("last_success"):  # not yet run: none
                    check_newest_manifest(r, Job(job, self.inv.backup.jobs[job]))
            advance(entry, n, subset, time.time())
            entry["last_result"] = "ok"
        except DomumError as exc:
            entry["last_result"] = str(exc).splitlines()[0]
            self.failures.append(f"{name}: {entry['last_result']}")
        entry["last_run"] = time.time()
        self.done("verify", name)  # not reached when a signal ends the manifest check

    def handlers(self) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
        return {**super().handlers(), "backup.verify-target": self.verify_target}

    def report(self, results: list[Any], json_out: bool) -> None:
        self.finish("backup.verify", locked=len(self.locked) == len(self.failures))
        self.say("verify: ok")
