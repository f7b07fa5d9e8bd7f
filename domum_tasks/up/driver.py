"""Runs the phases: each part probed, then its plans shown (--dry-run) or executed by the one
executor (taskutil.execute); a phase is recorded in the state file only once all its parts ran.

Ctrl-C, SIGTERM and SIGHUP raise in the main thread (backup's Catcher: SIGTERM exits 143), so
the running step's process group is ended and the interrupted phase is never recorded."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import DomumError
from . import backups, flux_phase, machines, phases, state, talos_phase
from .model import Builder, Ctx, Options, Part
from .preflight import preflight
from .summary import summary

BUILDERS: dict[str, list[Builder]] = {
    "preflight": [preflight],
    "schematics": [machines.schematics],
    "machines": [machines.vms, machines.others],
    "talos": talos_phase.PARTS,
    "flux": flux_phase.PARTS,
    "backups": backups.PARTS,
    "summary": [summary],
}


@dataclass
class Run:
    dry_run: bool
    json_out: bool
    options: Options
    start: str = ""
    only: str = ""
    out: Callable[[str], None] = print
    shown: list[dict[str, Any]] = field(default_factory=list)
    steps_run: int = 0
    began: float = field(default_factory=time.monotonic)

    def progress(self, text: str) -> None:
        """Phase, step and elapsed time, on a terminal only (cron and pipes stay quiet)."""
        if sys.stderr.isatty() and not self.json_out:
            print(f"[{time.monotonic() - self.began:6.0f}s] {text}", file=sys.stderr)


LOCK = "up.lock"


def up(run: Run) -> None:
    """One `up` at a time (exit 5 naming the holder): two would apply, bootstrap and commit
    over each other. backup's flock: released by the kernel even on kill -9, and held while
    a process the run started still lives. A dry-run only reads, so it takes no lock."""
    import os

    from ..backup.bookkeeping import lock

    for name in (run.start, run.only):
        if name:
            phases.check_name(name, "--from" if name == run.start else "--only")
    fd = None if run.dry_run else lock.acquire(state.path().parent, LOCK, "`domum up` run")
    try:
        _up(run)
    finally:
        if fd is not None:
            os.close(fd)


def _up(run: Run) -> None:
    from .. import settings
    from ..taskutil import load_inventory

    inv = load_inventory()
    inv_file = settings.inventory_path().resolve()
    hashes = state.inventory_hashes(inv_file)
    done = state.finished(state.load(), str(inv_file))
    selected, why = phases.select(done, hashes, start=run.start, only=run.only)
    ctx = Ctx(inv, run.options)
    if not run.json_out:
        run.out(f"domum up: {why}; state file {state.path()}")
    stopped: DomumError | None = None
    try:
        for n, name in enumerate(selected, 1):
            ctx.changed = done.get(name) != hashes[name]
            ctx.flags.clear()
            stopped = _phase(run, ctx, name, f"{n}/{len(selected)}")
            if stopped is not None:
                break
            if not run.dry_run and name not in phases.ALWAYS:
                state.record(name, hashes[name], str(inv_file))
    finally:
        if run.json_out and run.dry_run:
            print(json.dumps({"phases": run.shown, "reason": why}, indent=2))
    if stopped is not None:
        raise stopped
    if not run.dry_run:
        what = f"{run.steps_run} step(s) run" if run.steps_run else "nothing to change: 0 writes"
        took = time.monotonic() - run.began
        print(f"domum up: done, {len(selected)} phase(s) checked, {what} ({took:.0f}s)")


def _phase(run: Run, ctx: Ctx, name: str, index: str) -> DomumError | None:
    entry: dict[str, Any] = {"phase": name, "parts": []}
    run.shown.append(entry)
    if not run.json_out:
        run.out(f"\n== phase {index}: {name}")
    for i, build in enumerate(BUILDERS[name]):
        run.progress(f"phase {index} {name}: probing")
        part = build(ctx)
        entry["parts"].append(part.to_dict())
        _show(run, part, first=i == 0)
        for planned in part.planned:
            _execute(run, planned, f"phase {index} {name}: {part.title}")
        if part.stop is not None:
            return part.stop
    return None


def _show(run: Run, part: Part, *, first: bool) -> None:
    if run.json_out:
        return
    say = run.out
    say(f"-- {part.title}")
    if run.dry_run and part.depends and not first:
        say(f"   (probed now; the real run probes again after {part.depends})")
    for key, value in part.probe.items():
        say(f"   {key}: {value}")
    for note in part.notes:
        say(f"   {note}")
    if not part.planned and part.skip and part.stop is None:
        say(f"   already there: {part.skip}")


def _execute(run: Run, planned: Any, label: str) -> None:
    from ..taskutil import execute

    if run.dry_run:
        if run.json_out:  # the plans are in the one JSON document; still check runnable
            with contextlib.redirect_stdout(io.StringIO()):
                execute(planned, dry_run=True, json_out=True)
        else:
            execute(planned, dry_run=True, json_out=False)
        return
    run.progress(f"{label}: {planned.plan.title} ({len(planned.plan.steps)} step(s))")
    sys.stdout.flush()  # what the probes said shows now, not after a long wait (off a terminal)
    quiet = not sys.stdout.isatty()
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf) if quiet else contextlib.nullcontext():
            results = execute(planned, dry_run=False, json_out=False, yes=run.options.yes)
    except DomumError:
        if buf.getvalue():
            print(buf.getvalue(), end="", file=sys.stderr)
        raise
    run.steps_run += len(results)
