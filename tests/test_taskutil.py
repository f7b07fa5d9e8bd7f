"""Task wrappers: DomumError and unexpected bugs both end as one line and an exit code."""

from __future__ import annotations

import pytest
from invoke import Context, Exit

from domum_tasks.errors import ConfigError, Refused
from domum_tasks.taskutil import domum_task


@domum_task
def bad_input(c: Context) -> None:
    """Fail like bad input."""
    raise ConfigError("config/domum.yaml:3: nodes.92.ip: nope")


@domum_task
def refused(c: Context) -> None:
    """Refuse."""
    raise Refused("not confirmed", hint="pass --yes")


@domum_task
def buggy(c: Context) -> None:
    """Hit a bug."""
    raise KeyError("oops")


def test_domum_errors_become_exit_with_their_code() -> None:
    with pytest.raises(Exit) as err:
        bad_input(Context())
    assert err.value.code == 2
    assert err.value.message == "domum: config/domum.yaml:3: nodes.92.ip: nope"
    with pytest.raises(Exit) as err:
        refused(Context())
    assert err.value.code == 4 and "hint: pass --yes" in str(err.value.message)


def test_unexpected_errors_are_one_line_unless_debugging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOMUM_DEBUG", raising=False)
    with pytest.raises(Exit) as err:
        buggy(Context())
    assert err.value.code == 1
    assert err.value.message.startswith("domum: internal error: KeyError: 'oops'")
    monkeypatch.setenv("DOMUM_DEBUG", "1")
    with pytest.raises(KeyError):
        buggy(Context())


SPEAKER = """
import sys
from invoke import Context, Exit
from domum_tasks.taskutil import domum_task

@domum_task
def speak(c):
    \"\"\"Print more than a pipe holds.\"\"\"
    for i in range(200_000):
        print(f"line {i}")

try:
    speak(Context())
except Exit as exc:
    print(exc.message or "", file=sys.stderr)
    sys.exit(exc.code)
"""


def test_output_cut_off_by_the_reader_is_not_an_error_message() -> None:
    """`inv pi.status --json | head`: stop quietly with the shell's SIGPIPE status."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", SPEAKER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == "line 0\n"
    proc.stdout.close()  # the reader goes away long before the task is done
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert stderr.strip() == ""
