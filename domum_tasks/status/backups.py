"""Backups, per enabled job and target: the newest complete snapshot's age against the job's
schedule, and the last verify and drill from the state file. One restic listing per target
(not per job and target): over sftp or rclone each restic run is a connection and a key
derivation."""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any

from .model import Probe, Row

if TYPE_CHECKING:
    from ..backup.jobs import Job
    from ..inventory.model import Inventory

DEFAULT_TIMEOUT_S = 60.0  # restic lists snapshots over sftp/rclone: slower than a local read
# The backup alert's grace (cluster/apps/infra/monitoring/rules/domum-backup.yaml): a job is
# stale once its newest success is older than its schedule's longest gap plus an hour.
STALE_GRACE_S = 3600.0


def _checks(data: dict[str, Any], job: str, target: str, now: float) -> tuple[list[str], list[str]]:
    """(texts, failures) for the last verify of `target` and the last drill of `job`."""
    from ..backup.repository.listing import age_text

    texts, failures = [], []
    verify = data.get("verify", {}).get(target) or {}
    if verify:
        result = str(verify.get("last_result") or "ok")
        when = verify.get("last_success")
        texts.append(f"verify {age_text(now - when)} ago" if when else "verify never passed")
        if result != "ok":
            failures.append(f"last verify failed: {result}")
    drill = data.get("drill", {}).get(job) or {}
    if drill:
        when = drill.get("last_success")
        texts.append(f"drill {age_text(now - when)} ago" if when else "drill never passed")
        if drill.get("ok") is False:
            failures.append(f"last drill failed: {drill.get('message', '')}")
    return texts, failures


def _row(job: Job, target: str, age_s: float | None, period: float, what: str, fields: dict[str, Any],
         data: dict[str, Any], now: float) -> Row:  # fmt: skip
    from ..backup.repository.listing import age_text

    name = f"{job.name} -> {target}"
    texts, failures = _checks(data, job.name, target, now)
    every = f"schedule every {age_text(period)}"
    fields = {**fields, "job": job.name, "target": target, "period_s": period,
              "verify": data.get("verify", {}).get(target), "drill": data.get("drill", {}).get(job.name)}  # fmt: skip
    if age_s is None:
        return Row("backup", name, False, f"no {what} yet ({every})", fields)
    summary = f"{what} {age_text(age_s)} old ({every})"
    if age_s > period + STALE_GRACE_S:
        failures.insert(0, f"stale: {summary}")
    if failures:
        return Row("backup", name, False, "; ".join(failures), fields)
    return Row("backup", name, True, "; ".join([summary, *texts]), fields)


def _jobs_by_target(inv: Inventory) -> dict[str, list[Job]]:
    """Every restic target holding an enabled job's snapshots (its own targets, then their
    `copy_to` copies), with those jobs."""
    from ..backup.jobs import select
    from ..backup.repository.copying import holders

    out: dict[str, list[Job]] = {}
    for job in select(inv):
        if job.uses_restic:
            for target in holders(inv, job):
                out.setdefault(target, []).append(job)
    return out


def target_rows(inv: Inventory, target: str, jobs_: list[Job], timeout_s: float) -> list[Row]:
    """One `restic snapshots` per target for all its jobs (restic ORs repeated --tag), then
    per job: its newest complete snapshot's age (only `complete` ones count, as in backup.list)."""
    from ..backup import jobs
    from ..backup.bookkeeping import state
    from ..backup.plan import state_dir
    from ..backup.repository import access, restic
    from ..backup.repository.facts import probe
    from ..backup.repository.listing import parse_time
    from ..errors import DomumError

    now = time.time()
    data = state.load(state_dir(inv))
    try:
        r = access.repo_for(inv, target)
        args = ["--no-lock", "snapshots", "--json"]
        for job in jobs_:
            args += ["--tag", jobs.job_tag(job.name)]
        res = probe(r, args, timeout_s=timeout_s)
        access.check_result(r, res, "snapshots")
        snaps = restic.json_value(res.stdout) or []
    except DomumError as exc:
        why = str(exc).splitlines()[0]
        return [Row("backup", f"{j.name} -> {target}", False, why, {"job": j.name, "target": target})
                for j in jobs_]  # fmt: skip
    rows = []
    for job in jobs_:
        tag = jobs.job_tag(job.name)
        good = access.complete([s for s in snaps if tag in (s.get("tags") or [])])
        newest = max(good, key=lambda s: parse_time(str(s["time"])), default=None)
        age = now - parse_time(str(newest["time"])) if newest else None
        fields = {"newest": {"id": newest.get("short_id"), "time": newest["time"]} if newest else None,
                  "snapshots": len(good), "last_run": (data["jobs"].get(job.name) or {}).get("last_run")}  # fmt: skip
        period = jobs.period_s(job.spec.schedule, now)
        rows.append(_row(job, target, age, period, "complete snapshot", fields, data, now))
    return rows


def vzdump_rows(inv: Inventory, job: Job, timeout_s: float) -> list[Row]:
    """A vzdump job: PVE keeps the archives; the state file knows its last success."""
    from ..backup import jobs
    from ..backup.bookkeeping import state
    from ..backup.plan import state_dir

    now = time.time()
    data = state.load(state_dir(inv))
    entry = data["jobs"].get(job.name) or {}
    last = entry.get("last_success")
    age = now - float(last) if last else None
    fields = {"last_run": entry.get("last_run"), "last_success": last}
    period = jobs.period_s(job.spec.schedule, now)
    target = ",".join(job.spec.targets)
    return [_row(job, target, age, period, "successful run", fields, data, now)]


def probes(inv: Inventory, timeout_s: float | None) -> list[Probe]:
    from ..backup.jobs import select

    t = timeout_s or DEFAULT_TIMEOUT_S
    out = [
        Probe("backup", f"target {name}", t, partial(target_rows, inv, name, jobs_))
        for name, jobs_ in sorted(_jobs_by_target(inv).items())
    ]
    out += [Probe("backup", j.name, t, partial(vzdump_rows, inv, j))
            for j in select(inv) if not j.uses_restic]  # fmt: skip
    return out
