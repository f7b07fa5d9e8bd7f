"""The life of one `backup.snapshot` run around its jobs, in the parent holding the flock.

At the start (right after the flock): rotate backup.log by size, note the verify/drill series
Domum now expects, save the run's start and latest end in the state and write the metrics with
`domum_backup_running 1`. After every job: its log line and the metrics again. At the end (the
plan's finally step `backup.unlock`): a job that a signal interrupted is recorded "terminated"
(state, log, metrics with running 0), then the signal handlers go and the flock is released.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...ssh import repo_path
from .. import jobs
from ..bookkeeping import logrotate, metrics, signals, state
from ..bookkeeping.session import Session
from .record import failed_result, log_line, phase_file

# Past the sum of the jobs' deadlines: each killed job's grace (run/jobs.py), the bookkeeping.
DEADLINE_SLACK_S = 900.0


@dataclass
class RunLifecycle(Session):
    deadline_s: float = 0.0  # the sum of the selected jobs' deadlines
    results: list[dict[str, Any]] = field(default_factory=list)
    started: dict[str, float] = field(default_factory=dict)  # job -> when its start step ran
    catcher: signals.Catcher | None = None

    def lock(self, args: Mapping[str, Any]) -> None:
        super().lock(args)
        self.catcher = signals.Catcher()
        self.catcher.install()
        now = time.time()
        self.run = {"started": now, "deadline": now + self.deadline_s + DEADLINE_SLACK_S}
        b = self.inv.backup
        try:  # under the flock: no other run appends while the files move
            logrotate.rotate(repo_path(b.log_file), b.log_max_bytes, b.log_keep)
        except OSError as exc:
            self.problems.append(f"cannot rotate the log file: {exc.strerror or exc}")
        metrics.track(self.inv, self.data, now)
        self.data["run"] = dict(self.run)
        self.save()
        self.progress()

    def progress(self) -> None:
        """The metrics as they are now (running while self.run is set)."""
        d = repo_path(self.inv.backup.metrics_dir)
        super().metrics({"file": str(d / metrics.FILE_NAME)})

    def metrics(self, args: Mapping[str, Any]) -> None:
        self.run = None  # the plan's last step: the run is over
        super().metrics(args)

    def log(self, res: dict[str, Any]) -> None:
        try:
            path = repo_path(self.inv.backup.log_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(log_line(res) + "\n")
        except OSError as exc:
            self.problems.append(f"cannot write the log file: {exc.strerror or exc}")

    def unlock(self, args: Mapping[str, Any]) -> None:
        try:
            caught = self.catcher.caught if self.catcher else None
            if caught is not None:
                self._terminated(caught)
            if self.run is not None:  # ended by a signal or an error before the metrics step
                self.run = None
                self.progress()
        finally:
            if self.catcher is not None:
                self.catcher.restore()
            super().unlock(args)

    def _terminated(self, caught: signals.Terminated) -> None:
        """Record the job the signal interrupted (its Job's process group is already gone)."""
        done = {r["job"] for r in self.results}
        for name, t in self.started.items():
            if name in done:
                continue
            try:
                phase = phase_file(self.state_dir, name).read_text().strip() or "?"
            except OSError:
                phase = "?"
            job = jobs.select(self.inv, name)[0]
            res = failed_result(job, t, f"{caught} during {phase}")
            res.update(status="terminated", phase=phase)
            self.results.append(res)
            state.record_run(self.data, name, res)
            self.save()
            self.log(res)
            line = f"backup job {name} TERMINATED by {caught.name} during {phase}"
            self.failures.append(line)
            with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
                print(f"domum: {line}", file=sys.stderr, flush=True)
