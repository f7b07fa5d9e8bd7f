"""Signals for every backup run, not only `backup.snapshot` (issue 16 #9).

A plain Cmd step runs restic in inv's own process group through subprocess.run, which answers
an exception by SIGKILL: restic then leaves its repository lock behind, and a SIGTERM that
reaches inv alone (systemd's stop, `timeout`, `kill`) leaves restic running with nobody to
record it. So `backup.prune`, `backup.verify`, `backup.drill` and `backup.restore` run each
restic in a Job of its own (`grouped`), the snapshot's mechanism (run/jobs.py: SIGINT to the
whole group first, so restic removes its lock, then SIGTERM, then SIGKILL), and hold the
snapshot's signal Catcher (signals.py) while they run: SIGTERM/SIGHUP become the exception
Ctrl-C raises, the interrupted item is recorded "terminated" in the state and the metrics are
rewritten, and the task exits 128 + the signal (taskutil).
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import CommandFailed
from ...plan import Cmd, Job, Local, Step
from ...run import StepResult
from ...ssh import repo_path
from . import metrics, signals
from .session import Session

# Past restic's own timeout (subprocess.run's, inside the job): the job's deadline only ever
# ends a restic that ignored its own.
GROUP_SLACK_S = 60.0


def grouped(step: Step, name: str) -> Step:
    """`step` (a restic command) in a process group of its own. restic run on the NAS (a Local
    step) stays as it is: it is tied to its SSH session (producers/nas_session.py), which ends
    with this process, and the NAS's restic then gets its SIGINT there."""
    if not isinstance(step, Cmd):
        return step
    return Job(name, (step,), step.timeout_s + GROUP_SLACK_S)


def inner(result: Any) -> Any:
    """The restic step's own result out of its Job's (a killed job: a failed result naming
    why); anything else as it is."""
    if not isinstance(result, StepResult) or not isinstance(result.step, Job):
        return result
    value = result.value if isinstance(result.value, dict) else {}
    done = value.get("results") or []
    if done:
        one: StepResult = done[0]
        return one
    return StepResult(result.step.steps[0], False, "", str(value.get("message") or "no result"))


def raise_failed(result: Any, what: str) -> None:
    """A checked restic step inside a Job failed as data: fail as the plain Cmd did."""
    got = inner(result)
    if isinstance(got, StepResult) and not got.ok:
        # the lane's text: "exit code N: <argv>" then restic's stderr tail as "  | line"
        lines = [
            x.strip().removeprefix("|").strip() for x in (got.stderr or got.stdout).splitlines()
        ]
        said = [x for x in lines if x and not x.startswith("exit code ")]
        # restic's own words about what failed first (e.g. restore's "verification failed"),
        # then its last line ("Fatal: There were 2 errors"), on the one line a record keeps
        telling = [x for x in said if re.search(r"(?i)error|fail|fatal|denied|no such", x)]
        picked = list(dict.fromkeys([*telling[:2], *said[-1:]]))
        code = got.value if isinstance(got.value, int) else None
        raise CommandFailed(
            f"{what} failed"
            + (f" (exit {code})" if code is not None else "")
            + (f": {' | '.join(picked)}" if picked else ""),
            stderr_tail="\n".join(said[-12:]),
            returncode=code,
        )


# How each state section says an item was terminated (the fields its readers look at).
def _mark(data: dict[str, Any], section: str, name: str, text: str, now: float) -> None:
    entry: dict[str, Any] = data.setdefault(section, {}).setdefault(name, {})
    entry.update(last_run=now, terminated=text)
    if section == "verify":
        entry["last_result"] = text
    elif section == "drill":
        entry.update(ok=False, message=text)
    else:  # retention, reclaim
        entry.update(status="terminated", message=text)


@dataclass
class Interruptible(Session):
    """A Session whose lock step also installs the signal Catcher and whose unlock step (a
    finally step: it runs after the interrupted Job's group is gone) records the item the
    signal interrupted. `pending`: (state section, name) of each item in plan order; a
    handler calls `done` when it recorded one, so the first left is the one that was running."""

    catcher: signals.Catcher | None = None
    pending: list[tuple[str, str]] = field(default_factory=list)
    task: str = "backup"

    def lock(self, args: Mapping[str, Any]) -> None:
        super().lock(args)
        self.catcher = signals.Catcher()
        self.catcher.install()

    def done(self, section: str, name: str) -> None:
        with contextlib.suppress(ValueError):
            self.pending.remove((section, name))

    def unlock(self, args: Mapping[str, Any]) -> None:
        try:
            caught = self.catcher.caught if self.catcher else None
            if caught is not None:
                self.terminated(caught)
        finally:
            if self.catcher is not None:
                self.catcher.restore()
            super().unlock(args)

    def terminated(self, caught: signals.Terminated) -> None:
        """State, metrics and one line for the interrupted item (the whole run when none)."""
        section, name = self.pending[0] if self.pending else ("", "")
        if section:
            _mark(self.data, section, name, str(caught), time.time())
            self.save()
        d = repo_path(self.inv.backup.metrics_dir)
        self.metrics({"file": str(d / metrics.FILE_NAME)})
        what = f"{section} of {name}" if section else self.task
        line = f"{self.task}: {what} TERMINATED by {caught.name}"
        self.failures.append(line)
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            print(f"domum: {line}", file=sys.stderr, flush=True)


class Trap:
    """The Catcher for a run without a state file (`backup.restore`): steps `backup.trap`
    first and `backup.untrap` among the finally steps."""

    def __init__(self) -> None:
        self.catcher = signals.Catcher()

    def handlers(self) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
        return {
            "backup.trap": lambda args: self.catcher.install(),
            "backup.untrap": lambda args: self.catcher.restore(),
        }


def trap_steps() -> tuple[Local, Local]:
    return (
        Local("backup.trap", {}, desc="SIGTERM/SIGHUP end restic as Ctrl-C does"),
        Local("backup.untrap", {}),
    )
