"""`backup.prune`'s own record: retention has its own status, apart from the backups.

Issue 16 #10: retention used to run inside each backup job, so a failing `forget` failed the job
and `backup.snapshot --due` re-ran the whole backup every 15 minutes. Now `backup.prune` (daily
timer) applies retention and records it here, per job (state "retention") and per target for
the weekly `restic prune --max-unused` (state "reclaim"); the metrics show both
(domum_backup_retention_*). A job's last_success (what --due reads) is never touched here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import CommandFailed, LockHeld
from ...plan import mask
from ...run import StepResult
from ..repository import restic
from .interrupt import Interruptible, inner
from .session import say

# worst first: a job's status over its targets is the worst of theirs
_ORDER = ("failed", "locked", "ok")


def _worst(a: str, b: str) -> str:
    return a if _ORDER.index(a) <= _ORDER.index(b) else b


def outcome_of(r: StepResult | None, secrets: list[str]) -> tuple[str, str]:
    """(status, message) of one restic step: ok, locked (another client's lock), failed."""
    if r is None:
        return "ok", ""
    res = restic.Result(r.value if isinstance(r.value, int) else None, r.stdout, r.stderr)
    if r.ok:
        return "ok", ""
    status = "locked" if res.outcome == "locked" else "failed"
    return status, mask(f"{res.outcome} (exit {res.code}): {res.tail(3)}", secrets)


def entry(data: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    table: dict[str, Any] = data.setdefault(key, {})
    e: dict[str, Any] = table.setdefault(name, {})
    return e


@dataclass
class RetentionRun(Interruptible):
    secrets: list[str] = field(default_factory=list)
    this_run: dict[str, str] = field(default_factory=dict)  # job or target -> status so far
    locked_only: bool = True

    def _fail(self, what: str, status: str, message: str) -> None:
        self.failures.append(f"{what}: {message}")
        self.locked_only = self.locked_only and status == "locked"

    def record(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """One job on one target: the probe's error, or the forget step's result (absent when
        nothing was to be removed)."""
        job, target = str(args["job"]), str(args["target"])
        if args.get("error"):
            status, message = "failed", str(args["error"])
        else:
            status, message = outcome_of(inner(args.get("outcome")), self.secrets)
        self.done("retention", job)
        now = time.time()
        e = entry(self.data, "retention", job)
        prior = self.this_run.get(f"job:{job}")
        self.this_run[f"job:{job}"] = status if prior is None else _worst(prior, status)
        e["last_run"] = now
        e["status"] = self.this_run[f"job:{job}"]
        e.setdefault("targets", {})[target] = {"status": status, "message": message}
        if e["status"] == "ok":
            e["last_success"] = now
        if status == "ok":  # snapshots left on the target: what the metric counts
            self.data.setdefault("jobs", {}).setdefault(job, {}).setdefault("snapshots", {})[
                target
            ] = int(args.get("kept") or 0)
        else:
            self._fail(f"retention of {job} on {target} {status.upper()}", status, message)
        self.save()
        return {"job": job, "target": target, "status": status}

    def reclaim(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """One target's `restic prune --max-unused`: space of unreferenced packs (a killed or
        failed backup's) back, whether or not any snapshot was forgotten."""
        target = str(args["target"])
        status, message = outcome_of(inner(args["outcome"]), self.secrets)
        self.done("reclaim", target)
        now = time.time()
        e = entry(self.data, "reclaim", target)
        e.update(last_run=now, status=status, message=message)
        if status == "ok":
            e["last_success"] = now
        else:
            self._fail(f"restic prune on {target} {status.upper()}", status, message)
        self.save()
        return {"target": target, "status": status}

    def handlers(self) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
        return {
            **super().handlers(),
            "backup.retention-record": self.record,
            "backup.reclaim-record": self.reclaim,
        }

    def report_with(self, notes: list[str]) -> Callable[[list[Any], bool], None]:
        def report(results: list[Any], json_out: bool) -> None:
            for line in notes:
                say(line)
            if self.failures and self.locked_only and not self.problems:
                for line in self.failures:
                    say(line)
                raise LockHeld("; ".join(self.failures))
            if self.failures and not self.problems:
                raise CommandFailed("; ".join(self.failures))
            self.finish("backup.prune")

        return report
