"""`backup.snapshot`: the lock, one worker process per job with a deadline, then state, log and
metrics. One job's failure (or hang) never stops the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...errors import DomumError
from ...inventory.model import Inventory
from ...ssh import repo_path
from .. import jobs
from ..bookkeeping import lock, metrics, state
from ..jobs import Job
from ..plan import state_dir

GRACE_S = 5.0  # between SIGTERM and SIGKILL of a job past its deadline


def _kill_group(pid: int) -> None:
    """SIGTERM the job's process group, SIGKILL what is left after GRACE_S, reap the worker."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + GRACE_S
        while time.monotonic() < end:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            continue
        break
    with contextlib.suppress(ChildProcessError, ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # grandchildren that outlived the worker
        os.waitpid(pid, 0)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _child(inv: Inventory, job: Job, result_path: Path, err_path: Path, lock_fd: int) -> None:
    """The forked worker: own process group, lock inherited by everything it starts."""
    code = 1
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(err, 2)
        os.set_inheritable(lock_fd, True)  # rsync, ssh and restic hold the lock too
        from .worker import run_job

        result = run_job(inv, job, state_dir(inv))
        from ...run import write_atomic

        write_atomic(result_path, json.dumps(result).encode())
        code = 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def run_worker(inv: Inventory, job: Job, lock_fd: int, timeout_s: float) -> dict[str, Any]:
    """Run one job in a forked process group (no second interpreter start-up, the inventory
    is already loaded); kill the whole group (rsync, ssh, restic) at the deadline."""
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="domum-backup-") as tmp:
        result_path, err_path = Path(tmp) / "result.json", Path(tmp) / "stderr"
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(inv, job, result_path, err_path, lock_fd)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also here: no race with the child's own setpgid
        deadline = time.monotonic() + timeout_s
        status: int | None = None
        try:
            while status is None:
                done, raw = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = os.waitstatus_to_exitcode(raw)
                elif time.monotonic() >= deadline:
                    _kill_group(pid)
                    break
                else:
                    time.sleep(0.02)
        except BaseException:  # Ctrl-C: take the job's processes down with us
            _kill_group(pid)
            raise
        if status is not None and result_path.exists():
            result: dict[str, Any] = json.loads(result_path.read_text())
            return result
        if status is None:
            message = f"killed at its deadline of {timeout_s:g}s"
        else:
            message = f"worker exited {status} without a result: {_tail(err_path)}"
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
    if result.get("timings"):
        parts.append("phases=" + ",".join(f"{k}:{v:.2f}s" for k, v in result["timings"].items()))
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
                res = run_worker(inv, j, fd, j.spec.timeout)
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
    from ..producers.vzdump_job import run

    return run(inv, job)
