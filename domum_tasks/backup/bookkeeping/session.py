"""What a backup run keeps between its plan's steps: the lock descriptor, the state file as
loaded under the lock, and the problems met while recording. Its methods are the handlers of
the `backup.lock`, `backup.unlock`, `backup.save-state` and `backup.metrics` steps.

A run: lock (exit 5 if held; the state is read only under it) ... steps ... save, metrics,
and always unlock. Failures to write the state, log or metrics are problems, reported with
exit 1 after everything else ran.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...inventory.model import Inventory
from ...plan import Local
from ...ssh import repo_path
from . import lock, metrics, state


def say(text: str) -> None:
    """Progress for a person: quiet off a terminal (cron, systemd)."""
    if sys.stdout.isatty():
        print(text, flush=True)


def lock_step(state_dir: Path) -> Local:
    return Local(
        "backup.lock",
        {"state_dir": str(state_dir)},
        desc="flock, not waiting (exit 5 while another run or anything it started lives)",
    )


def unlock_step(state_dir: Path) -> Local:
    return Local("backup.unlock", {"state_dir": str(state_dir)})


def save_step(state_dir: Path) -> Local:
    return Local("backup.save-state", {"state_dir": str(state_dir)}, desc="atomic rename")


def metrics_step(inv: Inventory) -> Local:
    d = repo_path(inv.backup.metrics_dir)
    return Local("backup.metrics", {"file": str(d / metrics.FILE_NAME)}, desc="atomic rename")


@dataclass
class Session:
    inv: Inventory
    state_dir: Path
    fd: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    say: Callable[[str], None] = say
    # {"started", "deadline"} while a backup.snapshot run is in progress (metrics: running 1)
    run: dict[str, float] | None = None

    def lock(self, args: Mapping[str, Any]) -> None:
        self.fd = lock.acquire(self.state_dir)
        self.data = state.load(self.state_dir)

    def unlock(self, args: Mapping[str, Any]) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def save(self, args: Mapping[str, Any] | None = None) -> None:
        try:
            state.save(self.state_dir, self.data)
        except OSError as exc:
            self.problems.append(f"cannot write the state file: {exc.strerror or exc}")

    def metrics(self, args: Mapping[str, Any]) -> None:
        try:
            metrics.write(self.inv, self.data, Path(str(args["file"])).parent, run=self.run)
        except OSError as exc:
            self.problems.append(
                f"cannot write metrics to {self.inv.backup.metrics_dir}: {exc.strerror or exc}"
            )

    def handlers(self) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
        return {
            "backup.lock": self.lock,
            "backup.unlock": self.unlock,
            "backup.save-state": self.save,
            "backup.metrics": self.metrics,
        }

    def finish(self, what: str, *, locked: bool = False, refused: bool = False) -> None:
        """One stderr line per failure, then exit 1 if there was any (5 when `locked`: every
        failure was a restic lock another client holds; 4 when `refused`: every failure was a
        target that is not a repository yet)."""
        from ...errors import DomumError, LockHeld, Refused

        lines = [*self.failures, *(f"backup: {p}" for p in self.problems)]
        for line in lines:
            print(f"domum: {line}", file=sys.stderr)
        if lines and locked and not self.problems:
            raise LockHeld(f"{what}: {len(lines)} job(s) stopped by a restic lock")
        if lines and refused and not self.problems:
            raise Refused(f"{what}: {len(lines)} job(s) refused: a target is not initialised")
        if lines:
            raise DomumError(f"{what}: {len(lines)} failure(s)")
