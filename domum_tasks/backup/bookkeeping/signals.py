"""SIGTERM, SIGHUP (and Ctrl-C's SIGINT) end a backup run the way Ctrl-C always did: an
exception in the main thread, so the running Job's whole process group is ended (run/jobs.py:
SIGINT first, which restic answers by removing its own lock, then SIGTERM, then SIGKILL), the
finally steps run, the interrupted job is recorded "terminated" and the run exits 128 + signal.

Only the first signal raises: a second one (systemd's stop repeated, Ctrl-C pressed twice) must
not cut the orderly shutdown short and orphan the group it is ending.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """A KeyboardInterrupt, so every `except BaseException` cleanup that Ctrl-C runs runs too;
    `exit_code` is what the task exits with (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"terminated by {self.name}")


class Catcher:
    """Installed for the length of a run (while the flock is held); `caught` is the first
    signal's Terminated, or None."""

    def __init__(self, signals: Iterable[int] = SIGNALS) -> None:
        self.signals = tuple(signals)
        self.caught: Terminated | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.caught is None:
            self.caught = Terminated(signum)
            raise self.caught

    def install(self) -> None:
        for s in self.signals:
            self._old[s] = signal.signal(s, self._handle)

    def restore(self) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()
