"""Backups, per enabled job and target: the newest complete snapshot's age against the job's
schedule (backup.list's rows), and the last verify and drill from the state file."""

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


def job_rows(inv: Inventory, job: Job, timeout_s: float) -> list[Row]:
    from ..backup import jobs
    from ..backup.bookkeeping import state
    from ..backup.plan import state_dir
    from ..backup.repository import listing

    now = time.time()
    data = state.load(state_dir(inv))
    period = jobs.period_s(job.spec.schedule, now)
    out = []
    for r in listing.rows(inv, [job], now, timeout_s=timeout_s):
        fields = {"last_run": r.get("last_run"), "newest": r.get("newest")}
        if r.get("error"):
            out.append(Row("backup", f"{job.name} -> {r['target']}", False, r["error"], fields))
        elif job.uses_restic:
            newest = r.get("newest")
            age = newest["age_s"] if newest else None
            out.append(_row(job, r["target"], age, period, "complete snapshot", fields, data, now))
        else:  # vzdump: PVE keeps the archives; the state file knows the last success
            last = r.get("last_success")
            age = now - float(last) if last else None
            out.append(_row(job, r["target"], age, period, "successful run", fields, data, now))
    return out


def probes(inv: Inventory, timeout_s: float | None) -> list[Probe]:
    from ..backup.jobs import select

    t = timeout_s or DEFAULT_TIMEOUT_S
    return [Probe("backup", j.name, t, partial(job_rows, inv, j)) for j in select(inv)]
