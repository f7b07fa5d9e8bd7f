"""`backup.list`: per job and target, the snapshots, the newest one and its age, and the last
run's status from the state file."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from ...errors import DomumError
from ...inventory.model import Inventory
from ..bookkeeping import state
from ..jobs import Job
from ..plan import state_dir
from . import access, facts
from .version import require_restic


def parse_time(text: str) -> float:
    """restic's RFC 3339 times (nanoseconds, Z or an offset) -> epoch seconds."""
    return datetime.fromisoformat(text).timestamp()


def age_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def rows(inv: Inventory, selected: list[Job], now: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    if any(j.uses_restic for j in selected):
        require_restic()  # exit 3, not one error per row
    data = state.load(state_dir(inv))
    out: list[dict[str, Any]] = []
    for job in selected:
        entry = data["jobs"].get(job.name, {})
        last = entry.get("last_run") or {}
        base = {
            "job": job.name,
            "kind": job.kind,
            "enabled": job.spec.enabled,
            "last_run": {
                k: last.get(k) for k in ("status", "started", "finished", "duration_s", "message")
            }
            if last
            else None,
            "last_success": entry.get("last_success"),
        }
        if not job.uses_restic:
            out.append(
                {**base, "target": ",".join(job.spec.targets), "snapshots": [], "newest": None}
            )
            continue
        from .copying import holders

        for name in holders(inv, job):  # its targets, then their copy_to copies
            row: dict[str, Any] = {**base, "target": name, "snapshots": [], "newest": None}
            try:
                snaps = facts.snapshots(access.repo_for(inv, name), job.name)
            except DomumError as exc:
                row["error"] = str(exc).splitlines()[0]
                row["exit_code"] = exc.exit_code  # 4: not initialised; 2: wrong password
                out.append(row)
                continue
            for s in snaps:
                size = (s.get("summary") or {}).get("total_bytes_processed")
                if size is None:
                    size = data["sizes"].get(
                        s.get("short_id") or "", data["sizes"].get(str(s.get("id", ""))[:8])
                    )
                row["snapshots"].append(
                    {
                        "id": s.get("short_id") or str(s.get("id", ""))[:8],
                        "time": s.get("time"),
                        "size": size,
                        "state": access.state_of(s),  # complete, partial or unmarked
                        "partial": access.is_partial(s),
                    }
                )
            good = [s for s in row["snapshots"] if s["state"] == "complete"]
            if good:
                newest = good[-1]
                row["newest"] = {**newest, "age_s": round(now - parse_time(str(newest["time"])), 1)}
            out.append(row)
    return out


def raise_failures(rows_: list[dict[str, Any]]) -> None:
    """After the listing was shown: a target that could not be listed fails the task (README's
    exit codes: 4 when every failure is a refusal, i.e. a target not initialised; 2 when a
    configuration error such as a wrong password; else 1), so cron and scripts see it."""
    from ...errors import ConfigError, Refused

    bad = [r for r in rows_ if r.get("error")]
    if not bad:
        return
    text = "; ".join(f"{r['job']}/{r['target']}: {r['error']}" for r in bad)
    codes = {int(r.get("exit_code") or 1) for r in bad}
    if codes == {Refused.exit_code}:
        raise Refused(
            f"backup.list: {len(bad)} target(s) not listed: {text}", hint="run `inv backup.init`"
        )
    if codes <= {Refused.exit_code, ConfigError.exit_code}:
        raise ConfigError(f"backup.list: {len(bad)} target(s) not listed: {text}")
    raise DomumError(f"backup.list: {len(bad)} target(s) not listed: {text}")


COLUMNS = ("job", "target", "snapshots", "newest complete", "age", "size", "last run")


def _counts(snaps: list[dict[str, Any]]) -> str:
    """ "3", or "3 (+2 partial)": only complete snapshots count."""
    n = {k: sum(1 for s in snaps if s["state"] == k) for k in ("complete", "partial", "unmarked")}
    extra = ", ".join(f"+{n[k]} {k}" for k in ("partial", "unmarked") if n[k])
    return f"{n['complete']} ({extra})" if extra else str(n["complete"])


def table_rows(rows_: list[dict[str, Any]]) -> list[list[str]]:
    """The table of `backup.list`: one row per job and target (console.print_table shows it)."""
    out = []
    for r in rows_:
        newest = r.get("newest") or {}
        last = r.get("last_run") or {}
        status = last.get("status", "never")
        if last.get("message") and status != "ok":
            status += f": {str(last['message'])[:60]}"
        out.append(
            [
                r["job"] + ("" if r.get("enabled", True) else " (disabled)"),
                r["target"],
                r.get("error") or _counts(r["snapshots"]),
                f"{newest.get('id', '-')} {newest.get('time', '')[:19]}" if newest else "-",
                age_text(newest["age_s"]) if newest else "-",
                str(newest.get("size") or "-") if newest else "-",
                status,
            ]
        )
    return out
