"""The one executor: runs a Plan, or prints it on --dry-run. Every side effect of a plan goes here.

Local commands run with a timeout, never through a shell; SSH steps go through ssh.py, PVE calls
through pve.py, and in-process actions (download, flash, ...) through handlers a namespace
registers. Secret values are masked in everything printed or raised.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from .errors import CommandFailed, DomumError, Refused, ToolMissing
from .plan import (
    Cmd,
    Fanout,
    Job,
    Local,
    Plan,
    PveCall,
    ResultOf,
    Ssh,
    Step,
    Wait,
    Write,
    describe,
    mask,
    substeps,
)

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

    def to_dict(self) -> dict[str, Any]:
        """What crosses a job's process boundary (JSON): the value only if JSON can carry it."""
        import json

        def plain(obj: Any) -> Any:  # a fan-out's lanes inside a job: results as dicts
            if isinstance(obj, StepResult):
                return obj.to_dict()
            raise TypeError(type(obj).__name__)

        try:
            value = json.loads(json.dumps(self.value, default=plain))
        except (TypeError, ValueError):
            value = None
        return {"ok": self.ok, "stdout": self.stdout, "stderr": self.stderr, "value": value}


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
    from . import settings

    full_env = {**settings.environ(), **env} if env else None
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


def run_interactive(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> int:
    """Run a command on the user's terminal (stdin, stdout and stderr inherited, nothing
    captured: an editor), with no timeout; its exit code."""
    from . import settings

    full_env = {**settings.environ(), **env} if env else None
    try:
        return subprocess.call([resolve_program(argv[0]), *argv[1:]], env=full_env, cwd=cwd)
    except FileNotFoundError as exc:
        raise CommandFailed(f"command not found: {argv[0]}") from exc


def _with_results(step: Step, done: Sequence[StepResult]) -> Step:
    """A Local step whose args name earlier results (plan.ResultOf) gets those results; the
    step keeps its identity for everything else (the recorded step is the planned one)."""
    if not isinstance(step, Local) or not any(isinstance(v, ResultOf) for v in step.args.values()):
        return step
    args = {k: done[v.index] if isinstance(v, ResultOf) else v for k, v in step.args.items()}
    return _Resolved(step.action, args, step.desc, step.destructive, planned=step)


@dataclass(frozen=True)
class _Resolved(Local):
    planned: Local | None = None


GRACE_S = 5.0  # between SIGTERM and SIGKILL of a job past its deadline


def _first_line(result: StepResult) -> str:
    text = (result.stderr or result.stdout).strip()
    return text.splitlines()[0] if text else f"{describe(result.step)} failed"


def _file_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _kill_group(pid: int) -> None:
    """SIGTERM the job's process group, SIGKILL what is left after GRACE_S, reap the child."""
    import signal

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
        os.killpg(pid, signal.SIGKILL)  # grandchildren that outlived the child
        os.waitpid(pid, 0)


def _wait_child(pid: int, deadline: float, clock: Callable[[], float]) -> int | None:
    """The child's exit code, or None when it was killed at the deadline (Ctrl-C kills it too)."""
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
    notes = [f"  note: {n}" for n in plan.notes]  # what is lost, what was assumed
    shown = [mask(t, plan.secrets) for t in ["This will:", *(f"  {t}" for t in touched), *notes]]
    print(*shown, sep="\n", file=out)
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
                results.append(self.run_step(_with_results(step, results)))
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
                planned = step.planned if isinstance(step, _Resolved) and step.planned else step
                return done if isinstance(done, StepResult) else StepResult(planned, value=done)
        raise DomumError(f"internal: unknown step {step!r}")

    def _cmd(self, step: Cmd, secrets: Sequence[str]) -> StepResult:
        """A checked command raises on failure; an unchecked one (check=False) returns its exit
        code, a timeout included, as the outcome (the program missing still raises)."""
        if step.retry_after is None:
            return self._cmd_once(step, secrets)
        first = self._cmd_once(replace(step, check=False), secrets)
        if not first.ok and any(m in first.stderr for m in step.retry_when):
            self._cmd_once(step.retry_after, secrets)
            return self._cmd_once(step, secrets)
        if step.check and not first.ok:
            raise CommandFailed(
                f"exit code {first.value}: {mask(' '.join(step.argv), secrets)}",
                stderr_tail=mask(_tail(first.stderr or first.stdout), secrets),
                returncode=first.value,
            )
        return StepResult(step, first.ok, first.stdout, first.stderr, first.value)

    def _cmd_once(self, step: Cmd, secrets: Sequence[str]) -> StepResult:
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
        """Steps in order, stopping at the first that fails; failures are results, not raised."""
        results: list[StepResult] = []
        for step in steps:
            results.append(self._as_outcome(step))
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
                self._job_child(step, result_path, err_path)
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)  # also here: no race with the child's own setpgid
            status = _wait_child(pid, self.clock() + step.deadline_s, self.clock)
            if status is not None and result_path.exists():
                lane = json.loads(result_path.read_text())
                results = [
                    StepResult(sub, **one) for sub, one in zip(step.steps, lane, strict=False)
                ]
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

    def _job_child(self, step: Job, result_path: Path, err_path: Path) -> None:
        import json
        import signal

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
            lane = [r.to_dict() for r in self.run_lane(step.steps)]
            write_atomic(result_path, json.dumps(lane).encode())
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)

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
