"""The Executor: runs a Plan step by step, or prints it on --dry-run; fan-out lanes side by
side, jobs in their own process group (jobs.py), waits with probes, finally steps."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..errors import CommandFailed, DomumError, ToolMissing
from ..plan import Cmd, Fanout, Job, Local, Plan, PveCall, Ssh, Step, Wait, Write, mask, substeps
from .local import confirm, run_cmd, write_atomic
from .results import ResolvedLocal, StepResult, with_results

SshRunner = Callable[[Ssh], StepResult]
PveRunner = Callable[[PveCall], Any]
LocalHandler = Callable[[Mapping[str, Any]], Any]


def _masked(exc: DomumError, secrets: Sequence[str]) -> DomumError:
    """Mask every secret, in place, in what `str(exc)` shows; returns the same error."""
    exc.message = mask(exc.message, secrets)
    exc.hint = mask(exc.hint, secrets)
    if isinstance(exc, CommandFailed):
        exc.stderr_tail = mask(exc.stderr_tail, secrets)
    exc.args = tuple(mask(a, secrets) if isinstance(a, str) else a for a in exc.args)
    return exc


@dataclass
class Executor:
    """Runs plans. Tasks build one with the runners they need and call `execute`."""

    dry_run: bool = False
    json_out: bool = False
    secrets: list[str] = field(default_factory=list)
    ssh: SshRunner | None = None
    pve: PveRunner | None = None
    handlers: dict[str, LocalHandler] = field(default_factory=dict)
    out: TextIO = field(default_factory=lambda: sys.stdout)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def execute(self, plan: Plan, *, yes: bool = False) -> list[StepResult]:
        secrets = [*self.secrets, *plan.secrets]
        self.check_runnable([*plan.steps, *plan.finally_steps])
        if self.dry_run:
            text = plan.to_json(secrets) if self.json_out else plan.render_text(secrets)
            print(text, file=self.out)
            if self.json_out:  # stdout is only the array; assumptions still reach the reader
                for note in plan.notes:
                    print(f"domum: note: {mask(note, secrets)}", file=sys.stderr)
            return []
        confirm(plan, yes=yes)
        results: list[StepResult] = []
        try:
            for step in plan.steps:
                results.append(self.run_step(with_results(step, results)))
        except DomumError as exc:  # runners know only the Executor's secrets, not the plan's
            _masked(exc, secrets)
            raise
        finally:
            # finally_steps always run; a failure among them never hides the first error.
            pending: DomumError | None = None
            for step in plan.finally_steps:
                try:
                    results.append(self.run_step(step))
                except DomumError as exc:
                    print(f"domum: cleanup step failed: {mask(str(exc), secrets)}", file=sys.stderr)
                    pending = pending or exc
            if pending is not None and sys.exc_info()[0] is None:
                raise _masked(pending, secrets)
        return results

    def run_step(self, step: Step) -> StepResult:
        secrets = [*self.secrets]
        match step:
            case Cmd():
                return self._cmd(step, secrets)
            case Ssh():
                if self.ssh is None:
                    raise DomumError("internal: plan has SSH steps but no SSH runner was given")
                if step.check:
                    return self.ssh(step)
                return self._as_outcome(step)
            case Fanout():
                return self._fanout(step)
            case Job():
                return self._job(step)
            case PveCall():
                if self.pve is None:
                    raise DomumError("internal: plan has PVE calls but no PVE client was given")
                done = self.pve(step)  # pve.run_step returns a StepResult, like the SSH runner
                return done if isinstance(done, StepResult) else StepResult(step, value=done)
            case Write():
                write_atomic(step.path, step.data(), step.mode)
                return StepResult(step)
            case Wait():
                return self._wait(step)
            case Local():
                handler = self.handlers.get(step.action)
                if handler is None:
                    raise DomumError(f"internal: no handler registered for action {step.action!r}")
                done = handler(step.args)
                planned = step.planned if isinstance(step, ResolvedLocal) and step.planned else step
                return done if isinstance(done, StepResult) else StepResult(planned, value=done)
        raise DomumError(f"internal: unknown step {step!r}")

    def _cmd(self, step: Cmd, secrets: Sequence[str]) -> StepResult:
        """A checked command raises on failure; an unchecked one (check=False) returns its exit
        code, a timeout included, as the outcome (the program missing still raises)."""
        try:
            proc = run_cmd(
                step.argv,
                timeout_s=step.timeout_s,
                env=step.env,
                cwd=step.cwd,
                secrets=secrets,
                check=step.check,
                ok_codes=step.ok_codes,
                ok_stderr=step.ok_stderr,
                inherit_fds=step.inherit_fds,
            )
        except CommandFailed as exc:
            if step.check or isinstance(exc.__cause__, FileNotFoundError):
                raise
            return StepResult(step, False, "", f"{exc}\n{exc.stderr_tail}".strip(), None)
        ok = proc.returncode in step.ok_codes or any(m in proc.stderr for m in step.ok_stderr)
        return StepResult(step, ok, proc.stdout, proc.stderr, proc.returncode)

    def _as_outcome(self, step: Step) -> StepResult:
        """Run a step whose failure is data: a DomumError becomes a failed StepResult."""
        try:
            if isinstance(step, Ssh) and self.ssh is not None:
                return self.ssh(step)
            return self.run_step(step)
        except ToolMissing:
            raise  # not an outcome of the step: nothing could run at all
        except DomumError as exc:
            code = exc.returncode if isinstance(exc, CommandFailed) else None
            return StepResult(step, False, "", mask(str(exc), self.secrets), code)

    def run_lane(self, steps: Sequence[Step]) -> list[StepResult]:
        """Steps in order, stopping at the first that fails; failures are results, not raised.
        A Local's ResultOf(i) inside a lane names the lane's own step i."""
        results: list[StepResult] = []
        for step in steps:
            results.append(self._as_outcome(with_results(step, results)))
            if not results[-1].ok:
                break
        return results

    def _fanout(self, step: Fanout) -> StepResult:
        from concurrent.futures import ThreadPoolExecutor

        if not step.lanes:
            return StepResult(step, True, value=[])
        width = max(1, min(step.parallel, len(step.lanes)))
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="domum-lane") as pool:
            lanes = list(pool.map(self.run_lane, step.lanes))
        ok = all(
            len(r) == len(lane) and r[-1].ok for r, lane in zip(lanes, step.lanes, strict=True)
        )
        return StepResult(step, ok, value=lanes)

    def _job(self, step: Job) -> StepResult:
        from .jobs import run_job

        return run_job(self, step)

    def check_runnable(self, steps: Sequence[Step]) -> None:
        """Every step of a plan has a handler here, checked before anything runs (on --dry-run
        too, so a plan the real run cannot execute fails its dry-run the same way)."""
        for step in steps:
            if isinstance(step, Ssh) and self.ssh is None:
                raise DomumError("internal: plan has SSH steps but no SSH runner was given")
            if isinstance(step, PveCall) and self.pve is None:
                raise DomumError("internal: plan has PVE calls but no PVE client was given")
            if isinstance(step, Local) and step.action not in self.handlers:
                raise DomumError(f"internal: no handler registered for action {step.action!r}")
            self.check_runnable(substeps(step))

    def _wait(self, step: Wait) -> StepResult:
        deadline = self.clock() + step.deadline_s
        last_error = "no probe"
        while True:
            if step.probe is None:
                return StepResult(step)
            try:
                done = self.run_step(step.probe)  # the outcome is the Wait's (it is the step)
                return StepResult(step, done.ok, done.stdout, done.stderr, done.value)
            except ToolMissing:
                raise  # waiting does not install it
            except DomumError as exc:
                last_error = str(exc).splitlines()[0]
            if self.clock() + step.interval_s > deadline:
                raise DomumError(
                    f"gave up after {step.deadline_s:g}s waiting for {step.what}: {last_error}"
                )
            self.sleep(step.interval_s)
