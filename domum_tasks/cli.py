"""The `domum` command: invoke's Program with Domum's namespace (invoke's documented way to ship a
branded CLI), so it runs from any directory and reports command-line mistakes as Domum does.

`inv` keeps working (tasks.py composes the same namespace), but invoke's own parser errors exit 1
with no hint there. `domum` makes them bad input, exit 2, with a "did you mean":

    $ domum pi.flash --node 92 --devce x
    domum: No idea what '--devce' is! (did you mean '--device'?)        # exit 2

A closed output pipe (`domum --list | head -1`) exits 141 without a traceback, under both commands.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from invoke import Exit, ParseError, Program

from .brokenpipe import quiet_broken_pipe
from .errors import EXIT_CONFIG

_UNKNOWN = re.compile(r"No idea what '([^']*)' is!")
# invoke's core flags that a task's parser context also lists: never a suggestion for a task.
_CORE_ONLY = {"--dry", "--pty", "--list", "--echo", "--debug", "--hide", "--warn-only"}
_ARGUMENT_REPR = re.compile(r"<\w*Argument: ([\w-]+)[^>]*>")  # invoke prints Argument objects raw


def suggestion(word: str, options: Iterable[str]) -> str:
    """' (did you mean ...?)' for the closest option, or '' when nothing is close."""
    import difflib  # only on an error: `domum --list` stays fast

    match = difflib.get_close_matches(word, sorted(set(options)), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


class DomumProgram(Program):
    """invoke's Program; parser errors become exit 2 with a suggestion."""

    @property
    def version(self) -> str:  # type: ignore[override]
        """Looked up only for `--version`: scanning installed distributions costs start-up."""
        return version()

    @version.setter
    def version(self, value: str) -> None:
        pass  # always the installed distribution's

    def _options(self, error: ParseError, word: str) -> list[str]:
        """What a mistyped word may have meant: the task's own options (never invoke's core
        flags: `--dry` or `--pty` for a task's `--dry-run` or `--yes` would run it for real),
        or task names."""
        context = error.context
        if word.startswith("-"):
            flags: list[str] = list(getattr(context, "flags", {}) or {})
            return [f for f in flags if f.startswith("--") and f not in _CORE_ONLY]
        names: list[str] = []
        collection = getattr(self, "collection", None)
        if collection is not None:
            for name, aliases in collection.task_names.items():
                names += [name, *aliases]
        return names

    @contextlib.contextmanager
    def _bad_input(self) -> Iterator[None]:
        try:
            yield
        except ParseError as exc:
            text = _ARGUMENT_REPR.sub(lambda m: "--" + m.group(1).replace("_", "-"), str(exc))
            found = _UNKNOWN.search(text)
            hint = suggestion(found.group(1), self._options(exc, found.group(1))) if found else ""
            raise Exit(f"domum: {text}{hint}", EXIT_CONFIG) from None

    def parse_core(self, argv: list[str] | None) -> None:
        # invoke's --dry/-R and a -d before the task name (invoke's --debug) would let the task
        # run for real; whoever typed them meant "don't". Refuse before any task is parsed.
        from .taskutil import DRY_HINT, leading_flags

        if "-d" in leading_flags(list(sys.argv if argv is None else argv)[1:]):
            raise Exit(
                f"domum: -d before the task name is invoke's --debug: {DRY_HINT}", EXIT_CONFIG
            )
        with self._bad_input():
            super().parse_core(argv)
        # invoke turned .pyc writing off (for a project's tasks.py, which `domum` never loads):
        # Domum's modules that a task imports later, lazily, are cached as usual
        sys.dont_write_bytecode = False
        if self.args.dry.value:
            raise Exit(
                f"domum: invoke's --dry/-R does not stop Domum's tasks: {DRY_HINT}", EXIT_CONFIG
            )

    def parse_tasks(self) -> None:
        with self._bad_input():
            super().parse_tasks()

    def parse_cleanup(self) -> None:
        with self._bad_input():  # `domum --help chek`
            super().parse_cleanup()

    def run(self, argv: list[str] | None = None, exit: bool = True) -> None:
        try:
            super().run(argv, exit)
            sys.stdout.flush()  # a broken pipe shows here, not in the interpreter's last flush
        except BrokenPipeError:
            code = quiet_broken_pipe()
            if exit:
                sys.exit(code)


def version() -> str:
    from importlib import metadata  # scans installed distributions: only for `domum`

    try:
        return metadata.version("domum")
    except metadata.PackageNotFoundError:  # a source tree that was never pip-installed
        return "0+unknown"


def program(**kwargs: Any) -> DomumProgram:
    from . import ns

    return DomumProgram(namespace=ns, name="Domum", binary="domum", **kwargs)


def main() -> None:
    """Console-script entry point of `domum`."""
    program().run()
