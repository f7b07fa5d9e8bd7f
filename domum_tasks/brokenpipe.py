"""A closed output pipe (`inv --list | head -1`) exits 141 without a traceback. A leaf module: the
package installs the hook at import, the `domum` command (cli) uses it too."""

from __future__ import annotations

import contextlib
import os
import sys
from types import TracebackType

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer cut off by `| head`


def quiet_broken_pipe() -> int:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again; exit code."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, BrokenPipeError):
        os._exit(quiet_broken_pipe())  # the reader left: nothing to report, nobody to tell
    sys.__excepthook__(kind, value, tb)


def install_broken_pipe_hook() -> None:
    """`inv --list | true` breaks the pipe inside invoke itself, outside any Domum task: end that
    quietly with 141 too. Only replaces Python's default hook, never someone else's."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _excepthook
