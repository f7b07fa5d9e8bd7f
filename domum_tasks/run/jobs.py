"""Job steps: a plan's steps in a forked process group of their own, killed with everything they
started when the deadline passes; the outcome (ok, failed, killed) comes back as data."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..plan import Job, describe
from .local import write_atomic
from .results import StepResult

if TYPE_CHECKING:
    from .executor import Executor

# After SIGINT: restic finishes the upload in flight, then removes its own lock (a SIGKILLed
# restic leaves it for a person to remove). Then SIGTERM, and SIGKILL after GRACE_S each.
INTERRUPT_GRACE_S = 30.0
GRACE_S = 5.0


def _first_line(result: StepResult) -> str:
    text = (result.stderr or result.stdout).strip()
    return text.splitlines()[0] if text else f"{describe(result.step)} failed"


def _file_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pid: int) -> None:
    """End the job's process group: SIGINT first (restic's handler removes its own repository
    lock, rsync and ssh stop), then SIGTERM, then SIGKILL, each while any member is left after
    its grace. Escalating only once the whole group is gone (not just the forked child, which
    dies at once) gives restic the time to clean up; the child is reaped either way."""
    import signal

    reaped = False
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + (INTERRUPT_GRACE_S if sig == signal.SIGINT else GRACE_S)
        while time.monotonic() < end:
            if not reaped:
                with contextlib.suppress(ChildProcessError):
                    reaped = os.waitpid(pid, os.WNOHANG)[0] != 0
            if reaped and not _group_alive(pid):
                return
            time.sleep(0.05)
    if not reaped:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _wait_child(pid: int, deadline: float, clock: Callable[[], float]) -> int | None:
    """The child's exit code, or None when it was killed at the deadline (Ctrl-C, or the
    signals a run turns into the same exception, end it too)."""
    try:
        while True:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(raw)
            if clock() >= deadline:
                _kill_group(pid)
                return None
            time.sleep(0.02)
    except BaseException:  # Ctrl-C: take the job's processes down with us
        _kill_group(pid)
        raise


def run_job(ex: Executor, step: Job) -> StepResult:
    """Fork: the child runs the job's lane in a process group of its own and writes its
    results as JSON; the parent kills the whole group when the deadline passes. Forking
    (not a new interpreter) keeps the loaded inventory and costs no start-up."""
    import json

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="domum-job-") as tmp:
        result_path, err_path = Path(tmp) / "result.json", Path(tmp) / "stderr"
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(ex, step, result_path, err_path)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also here: no race with the child's own setpgid
        status = _wait_child(pid, ex.clock() + step.deadline_s, ex.clock)
        if status is not None and result_path.exists():
            lane = json.loads(result_path.read_text())
            results = [StepResult(sub, **one) for sub, one in zip(step.steps, lane, strict=False)]
            ok = len(results) == len(step.steps) and all(r.ok for r in results)
            failed = next((r for r in results if not r.ok), None)
            message = "" if failed is None else _first_line(failed)
            value: dict[str, Any] = {"status": "ok" if ok else "failed", "message": message}
        else:
            if status is None:
                message = f"killed at its deadline of {step.deadline_s:g}s"
            else:
                message = f"exited {status} without a result: {_file_tail(err_path)}"
            results, ok = [], False
            value = {"status": "killed" if status is None else "failed", "message": message}
    value.update(started=started, finished=time.time(), results=results)
    return StepResult(step, ok, value=value)


def _child(ex: Executor, step: Job, result_path: Path, err_path: Path) -> None:
    import json
    import signal

    code = 1
    try:
        os.setpgid(0, 0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the parent's handlers
            signal.signal(sig, signal.SIG_DFL)
        # SIGINT (the group's first signal, _kill_group) must not end this fork before the
        # command it waits for: restic, answering SIGINT, writes "cleaning up" to its stderr,
        # our pipe, and a Go program writing to a pipe nobody reads dies of SIGPIPE before it
        # removes its repository lock. The command's failing exit then stops the lane;
        # SIGTERM (after INTERRUPT_GRACE_S) ends this fork as before.
        signal.signal(signal.SIGINT, lambda signum, frame: None)
        err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(err, 2)
        lane = [r.to_dict() for r in ex.run_lane(step.steps)]
        write_atomic(result_path, json.dumps(lane).encode())
        code = 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)
