"""The one executor: runs a Plan, or prints it on --dry-run. Every side effect of a plan goes here.

Local commands run with a timeout, never through a shell; SSH steps go through ssh.py, PVE calls
through pve.py, and in-process actions (download, flash, ...) through handlers a namespace
registers. Secret values are masked in everything printed or raised.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .errors import CommandFailed, DomumError, Refused, ToolMissing
from .plan import Cmd, Local, Plan, PveCall, Ssh, Step, Wait, Write, describe, mask

STDERR_TAIL_LINES = 12

SshRunner = Callable[[Ssh], "StepResult"]
PveRunner = Callable[[PveCall], Any]
LocalHandler = Callable[[Mapping[str, Any]], Any]


@dataclass
class StepResult:
    step: Step
    ok: bool = True
    stdout: str = ""
    stderr: str = ""
    value: Any = None


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def resolve_program(name: str) -> str:
    """Known tools are found where `inv tools.install` puts them (.bin/) before PATH."""
    if os.sep in name:
        return name
    from .tools import TOOLS, require_tool

    return str(require_tool(name)) if name in TOOLS else name


def run_cmd(
    argv: Sequence[str],
    *,
    timeout_s: float = 600.0,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    secrets: Sequence[str] = (),
    check: bool = True,
    ok_codes: Sequence[int] = (0,),
    input_text: str | None = None,
    ok_stderr: Sequence[str] = (),
    inherit_fds: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run one local command with a timeout; on failure raise CommandFailed with the stderr tail.

    Read-only probes (facts.py) use this too, with check=False. `inherit_fds` keeps inheritable
    descriptors open in the child (backup's flock: no second run starts while a child lives).
    """
    shown = mask(" ".join(argv), secrets)
    full_env = {**os.environ, **env} if env else None
    program = resolve_program(argv[0])
    if cwd is None:  # relative inventory paths (clusterconfig/...) are relative to the repo
        from .inventory.loader import repo_root

        cwd = str(repo_root())
    try:
        proc = subprocess.run(
            [program, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=full_env,
            cwd=cwd,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            close_fds=not inherit_fds,
        )
    except FileNotFoundError as exc:
        raise CommandFailed(f"command not found: {argv[0]} (running: {shown})") from exc
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        raise CommandFailed(
            f"timed out after {timeout_s:g}s: {shown}", stderr_tail=mask(_tail(err), secrets)
        ) from None
    tolerated = any(marker in (proc.stderr or "") for marker in ok_stderr)
    if check and proc.returncode not in ok_codes and not tolerated:
        raise CommandFailed(
            f"exit code {proc.returncode}: {shown}",
            stderr_tail=mask(_tail(proc.stderr or proc.stdout), secrets),
            returncode=proc.returncode,
        )
    return proc


def write_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same directory, fsync, then rename: readers never see half."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def confirm(plan: Plan, *, yes: bool, stream: TextIO | None = None) -> None:
    """Destructive plans need --yes, or an interactive 'yes' after seeing what they touch."""
    if not plan.destructive or yes:
        return
    out = stream or sys.stderr
    touched = [describe(s) for s in plan.steps if s.destructive]
    print("This will:", *(f"  {mask(t, plan.secrets)}" for t in touched), sep="\n", file=out)
    if not sys.stdin.isatty():
        raise Refused(
            f"{plan.title}: destructive, and no terminal to confirm on", hint="pass --yes"
        )
    answer = input("Type 'yes' to continue: ").strip().lower()
    if answer != "yes":
        raise Refused(f"{plan.title}: not confirmed")


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
            results += [self.run_step(step) for step in plan.steps]
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
                proc = run_cmd(
                    step.argv,
                    timeout_s=step.timeout_s,
                    env=step.env,
                    cwd=step.cwd,
                    secrets=secrets,
                    ok_codes=step.ok_codes,
                    ok_stderr=step.ok_stderr,
                )
                return StepResult(step, True, proc.stdout, proc.stderr, proc.returncode)
            case Ssh():
                if self.ssh is None:
                    raise DomumError("internal: plan has SSH steps but no SSH runner was given")
                return self.ssh(step)
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
                return StepResult(step, value=handler(step.args))
        raise DomumError(f"internal: unknown step {step!r}")

    def _wait(self, step: Wait) -> StepResult:
        deadline = self.clock() + step.deadline_s
        last_error = "no probe"
        while True:
            if step.probe is None:
                return StepResult(step)
            try:
                return self.run_step(step.probe)
            except ToolMissing:
                raise  # waiting does not install it
            except DomumError as exc:
                last_error = str(exc).splitlines()[0]
            if self.clock() + step.interval_s > deadline:
                raise DomumError(
                    f"gave up after {step.deadline_s:g}s waiting for {step.what}: {last_error}"
                )
            self.sleep(step.interval_s)
