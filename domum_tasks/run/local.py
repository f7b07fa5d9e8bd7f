"""Local processes and files: run a command (timeout, masked errors, never a shell), run one
on the user's terminal, write a file atomically, confirm a destructive plan."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from ..errors import CommandFailed, Refused
from ..plan import Plan, describe, mask

STDERR_TAIL_LINES = 12


def tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def resolve_program(name: str) -> str:
    """Known tools are found where `inv tools.install` puts them (.bin/) before PATH."""
    if os.sep in name:
        return name
    from ..tools import TOOLS, require_tool

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
    from .. import settings

    full_env = {**settings.environ(), **env} if env else None
    program = resolve_program(argv[0])
    if cwd is None:  # relative inventory paths (clusterconfig/...) are relative to the repo
        from ..inventory.loader import repo_root

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
            f"timed out after {timeout_s:g}s: {shown}", stderr_tail=mask(tail(err), secrets)
        ) from None
    tolerated = any(marker in (proc.stderr or "") for marker in ok_stderr)
    if check and proc.returncode not in ok_codes and not tolerated:
        raise CommandFailed(
            f"exit code {proc.returncode}: {shown}",
            stderr_tail=mask(tail(proc.stderr or proc.stdout), secrets),
            returncode=proc.returncode,
        )
    return proc


def run_interactive(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> int:
    """Run a command on the user's terminal (stdin, stdout and stderr inherited, nothing
    captured: an editor), with no timeout; its exit code."""
    from .. import settings

    full_env = {**settings.environ(), **env} if env else None
    try:
        return subprocess.call([resolve_program(argv[0]), *argv[1:]], env=full_env, cwd=cwd)
    except FileNotFoundError as exc:
        raise CommandFailed(f"command not found: {argv[0]}") from exc


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
