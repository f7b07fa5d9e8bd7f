"""`backup.snapshot`: the lock, one worker process per job with a deadline, then state, log and
metrics. One job's failure (or hang) never stops the others.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import DomumError
from ..inventory_model import Inventory
from ..ssh import repo_path
from . import jobs, lock, metrics, state
from .jobs import Job
from .plan import state_dir

GRACE_S = 5.0  # between SIGTERM and SIGKILL of a job past its deadline


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def run_worker(job: Job, lock_fd: int, timeout_s: float) -> dict[str, Any]:
    """Run one job in its own process group; kill the group at the deadline."""
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="domum-backup-") as tmp:
        result_path, err_path = Path(tmp) / "result.json", Path(tmp) / "stderr"
        with err_path.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "domum_tasks.backup.worker", job.name, str(result_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(lock_fd,),  # the lock lives as long as any process of the job
                process_group=0,
            )
            try:
                proc.wait(timeout_s)
                killed = False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                killed = True
            except BaseException:  # Ctrl-C: take the job's processes down with us
                _kill_group(proc)
                raise
        if not killed and result_path.exists():
            result: dict[str, Any] = json.loads(result_path.read_text())
            return result
        if killed:
            message = f"killed at its deadline of {timeout_s:g}s"
        else:
            message = f"worker exited {proc.returncode} without a result: {_tail(err_path)}"
        return failed_result(job, started, message)


def failed_result(job: Job, started: float, message: str) -> dict[str, Any]:
    finished = time.time()
    return {
        "job": job.name,
        "kind": job.kind,
        "status": "failed",
        "message": message,
        "started": started,
        "finished": finished,
        "duration_s": round(finished - started, 3),
        "snapshots": {},
        "kept": {},
    }


def log_line(result: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(result["finished"], UTC).isoformat(timespec="seconds")
    snaps = ",".join(f"{t}:{s}" for t, s in sorted((result.get("snapshots") or {}).items()) if s)
    parts = [
        when,
        f"job={result['job']}",
        f"status={result['status']}",
        f"duration={result.get('duration_s', 0):.1f}s",
        f"bytes={int(result.get('bytes') or 0)}",
        f"snapshots={snaps or '-'}",
    ]
    if result.get("message"):
        parts.append(f"message={json.dumps(result['message'])}")
    return " ".join(parts)


def append_log(inv: Inventory, line: str) -> None:
    path = repo_path(inv.backup.log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def choose(inv: Inventory, data: dict[str, Any], job: str, due: bool, now: float) -> list[Job]:
    selected = jobs.select(inv, job)
    if due:
        selected = [
            j
            for j in selected
            if jobs.is_due(
                j.spec.schedule,
                data["jobs"].get(j.name, {}).get("last_success_started"),
                now,
            )
        ]
    return selected


def snapshot(
    inv: Inventory,
    *,
    job: str = "",
    due: bool = False,
    say: Callable[[str], None] = lambda _: None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run the chosen jobs under the lock; returns their results and bookkeeping problems
    (state, log or metrics that could not be written)."""
    sd = state_dir(inv)
    problems: list[str] = []
    results: list[dict[str, Any]] = []
    with lock.held(sd) as fd:
        data = state.load(sd)
        selected = choose(inv, data, job, due, time.time())
        if not selected:
            say("no job is due" if due else "no enabled job")
        for j in selected:
            say(f"{j.name}: running ({j.kind}, deadline {j.spec.timeout:g}s)")
            if j.kind == "vzdump":
                try:
                    res = run_vzdump_job(inv, j)
                except DomumError as exc:
                    res = failed_result(j, time.time(), str(exc).splitlines()[0])
            else:
                res = run_worker(j, fd, j.spec.timeout)
            results.append(res)
            state.record_run(data, j.name, res)
            try:
                state.save(sd, data)
            except OSError as exc:
                problems.append(f"cannot write the state file: {exc.strerror or exc}")
            try:
                append_log(inv, log_line(res))
            except OSError as exc:
                problems.append(f"cannot write the log file: {exc.strerror or exc}")
            say(log_line(res))
        try:
            metrics.write(inv, data, repo_path(inv.backup.metrics_dir))
        except OSError as exc:
            problems.append(
                f"cannot write metrics to {inv.backup.metrics_dir}: {exc.strerror or exc}"
            )
    return results, problems


def run_vzdump_job(inv: Inventory, job: Job) -> dict[str, Any]:
    from .vzdump_job import run

    return run(inv, job)
