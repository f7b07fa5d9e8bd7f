"""Glue shared by every task: error-to-exit translation, common argument help, the executor.

Only task wrappers turn DomumError into `invoke.Exit(message, code)`, so users get one line on
stderr, the documented exit code, and no traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invoke import Argument, Context, Exit, Task, task

from .errors import EXIT_CONFIG, EXIT_FAILED, DomumError

if TYPE_CHECKING:  # run/ (subprocess, tempfile) loads only when a task runs
    from .inventory.model import Inventory
    from .plan import Plan
    from .run import Executor, LocalHandler, StepResult

DRY_RUN = "print the plan and change nothing"
JSON = "with --dry-run: print the plan as a JSON array; otherwise machine-readable output"
YES = "do not ask for confirmation of destructive steps"
NODE = "node id: the last octet of the node's IP (e.g. 92)"
ALL = "act on every applicable node"
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command cut off by `| head`


class _Argument(Argument):
    """invoke's parser deep-copies every task's arguments on each run (`--list` included): with
    ~50 tasks that was a third of start-up. An argument holds only immutable fields until it is
    parsed, so a shallow copy is the same copy; a list value (kind=list) gets its own list."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Argument:
        import copy

        twin = copy.copy(self)
        if isinstance(self._value, list):
            twin._value = list(self._value)
            twin.raw_value = twin._value
        return twin


class _NumberArgument(_Argument):
    """invoke casts `--node abc` with int() in its parser and lets the ValueError escape."""

    def set_value(self, value: Any, cast: bool = True) -> None:
        try:
            super().set_value(value, cast)
        except ValueError:
            raise Exit(
                f"domum: --{(self.name or '').replace('_', '-')} {value!r} is not a whole number",
                EXIT_CONFIG,
            ) from None


# The only short flags, the same in every task (README, "Short flags"). invoke's auto_shortflags
# would give each task the first free letter of each option: -d was --dry-run in most tasks but
# --device in pi.flash and --deadline in talos.bootstrap. Every other option is long only.
SHORT_FLAGS = {"dry-run": "d", "json": "j", "yes": "y", "node": "n"}


def _annotation(body: Callable[..., Any], name: str) -> str:
    import inspect

    param = inspect.signature(body).parameters.get(name)
    return str(param.annotation) if param is not None else ""


class DomumTask(Task[Any]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        if default is None and _annotation(self.body, name) in ("int | None", "Optional[int]"):
            opts["kind"] = int  # an int option that may be absent (None), still cast and checked
        short = SHORT_FLAGS.get(opts["names"][0])
        if short and short not in taken_names:
            opts["names"] = [*opts["names"], short]
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        arguments = super().get_arguments(ignore_unknown_help)
        for arg in arguments:
            # same fields; only set_value (numbers) and the copy differ
            arg.__class__ = _NumberArgument if arg.kind in (int, float) else _Argument
        return arguments


DRY_HINT = "use --dry-run (or -d) after the task name"


def leading_flags(argv: list[str]) -> list[str]:
    """The options before the first task name: invoke's core flags, not the task's."""
    out = []
    for word in argv:
        if not word.startswith("-"):
            break
        out.append(word)
    return out


def refuse_invoke_dry(c: Any) -> None:
    """invoke's own `--dry`/`-R` only echoes `c.run` commands, and Domum acts through its
    executor, so the task would run for real; `-d` before the task name is invoke's --debug.
    A user who typed either meant "don't do it": bad input, exit 2, nothing runs."""
    import logging

    config = getattr(c, "config", None)
    if config is not None and config.get("run", {}).get("dry"):
        raise Exit(f"domum: invoke's --dry/-R would not stop this task: {DRY_HINT}", EXIT_CONFIG)
    debug_on = logging.getLogger().isEnabledFor(logging.DEBUG)
    if debug_on and "-d" in leading_flags(sys.argv[1:]):
        raise Exit(f"domum: -d before the task name is invoke's --debug: {DRY_HINT}", EXIT_CONFIG)


def domum_task(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Task[Any]]:
    """`@task` that reports DomumError as one line and its exit code, never a traceback."""

    def decorate(body: Callable[..., Any]) -> Task[Any]:
        @functools.wraps(body)
        def wrapper(*a: Any, **kw: Any) -> Any:
            refuse_invoke_dry(a[0] if a else None)
            try:
                result = body(*a, **kw)
                sys.stdout.flush()  # a closed pipe must show here, not at interpreter exit
                return result
            except DomumError as exc:
                raise Exit(f"domum: {exc}", code=exc.exit_code) from None
            except KeyboardInterrupt as exc:  # a run may turn SIGTERM/SIGHUP into one (143/129)
                code = getattr(exc, "exit_code", 130)
                raise Exit(f"domum: {exc or 'interrupted'}", code=code) from None
            except Exit:
                raise
            except BrokenPipeError:
                # The reader went away (`inv pi.status --json | head`): stop quietly, as
                # shell tools do, and keep Python from complaining again at exit.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                raise Exit(code=EXIT_BROKEN_PIPE) from None
            except Exception as exc:
                # A bug, not bad input: still one line, with the traceback on request.
                from . import settings

                if settings.debug():
                    raise
                raise Exit(
                    f"domum: internal error: {type(exc).__name__}: {exc} "
                    "(set DOMUM_DEBUG=1 for the traceback)",
                    code=EXIT_FAILED,
                ) from None

        made: Task[Any] = task(*args, klass=DomumTask, **kwargs)(wrapper)
        return made

    if len(args) == 1 and callable(args[0]) and not kwargs:  # bare @domum_task
        body, args = args[0], ()
        return decorate(body)
    return decorate


@dataclass
class Planned:
    """What a task's planner returns: the plan, and what executing it needs. The same object
    is printed by --dry-run and executed by the real run; nothing else acts."""

    plan: Plan
    inventory: Any = None
    handlers: Mapping[str, LocalHandler] = field(default_factory=dict)
    # Real run only, after the plan ran: print what came of it; may raise (exit 1 when a host
    # of a fan-out failed). Gets the step results and whether --json was given.
    report: Callable[[list[StepResult], bool], None] | None = None
    # CLIs the plan's steps run (talosctl, flux): a real run stops with exit 3 before the first
    # step; a dry-run shows the plan, then exits 3 the same way.
    tools: tuple[str, ...] = ()
    # The PVE session (pve.Session) the planner probed with: the run's PVE steps reuse its
    # clients (one per host per run). None: the executor makes its own when a step needs one.
    pve: Any = None
    # Real run: print the plan's notes on stderr before confirming (what a person must see
    # before saying yes: pi.enroll's host key fingerprint, pi.flash's target). A dry-run shows
    # them with the plan either way.
    show_notes: bool = False
    # What the task fails with once its plan is done, known while planning (genconfig without
    # talosctl renders the patches, then exits 3; create-vm applies the safe drift, then refuses
    # what needs --force): a real run raises it after executing and reporting the plan, a
    # dry-run after printing it, so both end alike (same message, same exit code).
    then_fail: DomumError | None = None
    # Real run only: the error a failing step raised -> the one the user sees (which node a
    # rolling upgrade stopped at, which were done).
    on_error: Callable[[DomumError], DomumError] | None = None


COMMON_HELP = {"dry_run": DRY_RUN, "json": JSON, "yes": YES, "node": NODE}


def plan_task(
    *args: Any, yes: bool = False, help: Mapping[str, str] | None = None, **kwargs: Any
) -> Callable[[Callable[..., Planned]], Task[Any]]:
    """Declare a task from its planner. The planner takes the task's own options and returns a
    Planned; this adds --dry-run/-d and --json/-j (and --yes/-y with `yes=True`), their help,
    and the tail every mutating task shares: print the plan, or confirm destructive steps,
    execute exactly that plan, then report. The planner never sees --dry-run: it cannot take a
    different path for it."""
    import inspect

    def decorate(planner: Callable[..., Planned]) -> Task[Any]:
        own = ["dry_run", "json", *(["yes"] if yes else [])]

        @functools.wraps(planner)
        def body(c: Context, *a: Any, **kw: Any) -> None:
            flags = {name: bool(kw.pop(name, False)) for name in own}
            planned = planner(c, *a, **kw)
            execute(
                planned,
                dry_run=flags["dry_run"],
                json_out=flags["json"],
                yes=flags.get("yes", False),
            )

        sig = inspect.signature(planner)
        extra = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool)
            for n in own
        ]
        params = [p for p in sig.parameters.values() if p.name not in own]
        body.__signature__ = sig.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
        del body.__wrapped__  # invoke reads the signature above, not the planner's
        merged = {k: v for k, v in COMMON_HELP.items() if k in [*own, *sig.parameters]}
        made = domum_task(*args, help={**merged, **(help or {})}, **kwargs)(body)
        # `up` composes tasks: it calls their planners and executes the Planned itself
        made.planner = planner  # type: ignore[attr-defined]
        return made

    return decorate


def execute(
    planned: Planned, *, dry_run: bool, json_out: bool, yes: bool = False
) -> list[StepResult]:
    """The one tail of every mutating task: the plan shown (--dry-run) or run, then reported."""
    from .tools import require_tool

    ex = executor(
        dry_run=dry_run,
        json_out=json_out,
        inventory=planned.inventory,
        handlers=planned.handlers,
        pve_session=planned.pve,
    )
    if not dry_run:
        for tool in planned.tools:
            require_tool(tool)
        # (a destructive plan not confirmed by --yes shows its notes with the prompt)
        if planned.show_notes and (yes or not planned.plan.destructive):
            from .plan import mask

            for note in planned.plan.notes:
                print(f"domum: note: {mask(note, planned.plan.secrets)}", file=sys.stderr)
    try:
        results = ex.execute(planned.plan, yes=yes)
    except DomumError as exc:
        if dry_run or planned.on_error is None:
            raise
        raise planned.on_error(exc) from None
    for tool in planned.tools:  # the dry-run fails where the real run would, after its plan
        require_tool(tool)
    if not dry_run and planned.report is not None:
        planned.report(results, json_out)
    if planned.then_fail is not None:
        raise planned.then_fail
    return results


def load_inventory() -> Inventory:
    """The inventory, loaded only when a task runs: pydantic and yaml stay out of `inv --list`."""
    from .inventory.loader import load

    return load()


def executor(
    *,
    dry_run: bool = False,
    json_out: bool = False,
    secrets: list[str] | None = None,
    inventory: Any = None,
    handlers: Mapping[str, LocalHandler] | None = None,
    pve_session: Any = None,
) -> Executor:
    from .run import Executor

    """An Executor wired to strict SSH and the PVE facade, both imported only when used."""

    def ssh_runner(step: Any) -> Any:
        from . import ssh

        return ssh.run_step(inventory, step)

    session = [pve_session]  # one PVE session (a client per host) for this executor's run

    def pve_runner(step: Any) -> Any:
        from . import pve

        if session[0] is None:
            session[0] = pve.Session(inventory)
        return session[0].run_step(step)

    return Executor(
        dry_run=dry_run,
        json_out=json_out,
        secrets=list(secrets or []),
        ssh=ssh_runner,
        pve=pve_runner,
        handlers=dict(handlers or {}),
    )


def warn(message: str) -> None:
    print(f"domum: warning: {message}", file=sys.stderr)
