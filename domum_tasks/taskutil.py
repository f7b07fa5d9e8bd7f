"""Glue shared by every task: error-to-exit translation, common argument help, the executor.

Only task wrappers turn DomumError into `invoke.Exit(message, code)`, so users get one line on
stderr, the documented exit code, and no traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from invoke import Argument, Exit, Task, task

from .errors import EXIT_CONFIG, EXIT_FAILED, DomumError

if TYPE_CHECKING:  # run.py (dataclasses, subprocess, tempfile) loads only when a task runs
    from .inventory.model import Inventory
    from .run import Executor, LocalHandler

DRY_RUN = "print the plan and change nothing"
JSON = "with --dry-run: print the plan as a JSON array; otherwise machine-readable output"
YES = "do not ask for confirmation of destructive steps"
NODE = "node id: the last octet of the node's IP (e.g. 92)"
ALL = "act on every applicable node"
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command cut off by `| head`


class _NumberArgument(Argument):
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
            if arg.kind in (int, float):
                arg.__class__ = _NumberArgument  # same fields; only set_value differs
        return arguments


def domum_task(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Task[Any]]:
    """`@task` that reports DomumError as one line and its exit code, never a traceback."""

    def decorate(body: Callable[..., Any]) -> Task[Any]:
        @functools.wraps(body)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                result = body(*a, **kw)
                sys.stdout.flush()  # a closed pipe must show here, not at interpreter exit
                return result
            except DomumError as exc:
                raise Exit(f"domum: {exc}", code=exc.exit_code) from None
            except KeyboardInterrupt:
                raise Exit("domum: interrupted", code=130) from None
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
                if os.environ.get("DOMUM_DEBUG"):
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
) -> Executor:
    from .run import Executor

    """An Executor wired to strict SSH and the PVE facade, both imported only when used."""

    def ssh_runner(step: Any) -> Any:
        from . import ssh

        return ssh.run_step(inventory, step)

    def pve_runner(step: Any) -> Any:
        from . import pve

        return pve.run_step(inventory, step)

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
