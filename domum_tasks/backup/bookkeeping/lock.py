"""The single-flight lock: `flock(2)` on <state_dir>/backup.lock, never waiting.

The kernel releases a flock when the last descriptor closes (also on kill -9), so it cannot go
stale and needs no PID check. The job processes and their children (rsync, restic) inherit the
descriptor: while any of them still runs, a new run is refused.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import ConfigError, LockHeld

LOCK_NAME = "backup.lock"


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def check_writable(state_dir: Path) -> None:
    """A precondition the planner checks (dry-run and real run alike): the state directory
    exists or can be made, and can be written (root too: a read-only filesystem, a file in
    the way)."""
    probe = state_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    problem = ""
    if not probe.is_dir():
        problem = f"{probe} is not a directory"
    elif not os.access(probe, os.W_OK | os.X_OK):
        problem = f"{probe} is not writable (permission denied or a read-only filesystem)"
    if problem:
        raise ConfigError(f"backup.state_dir {state_dir}: cannot write state there: {problem}")


def acquire(state_dir: Path, name: str = LOCK_NAME, what: str = "backup run") -> int:
    """Take the lock and return its descriptor (inheritable: rsync, ssh and restic started
    under it hold it too); raise LockHeld (exit 5) at once if another run has it. `name` and
    `what`: another single-flight command's lock (`domum up`: up.lock, "`domum up` run")."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / name, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        where = "backup.state_dir " if name == LOCK_NAME else ""
        raise ConfigError(
            f"{where}{state_dir}: cannot create the lock file: {exc.strerror}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise LockHeld(
                f"another {what} holds {state_dir / name}"
                f"{_holder(state_dir / name)}; not starting a second one"
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.set_inheritable(fd, True)
    return fd


@contextmanager
def held(state_dir: Path) -> Iterator[int]:
    """Hold the lock for the block."""
    fd = acquire(state_dir)
    try:
        yield fd
    finally:
        os.close(fd)
