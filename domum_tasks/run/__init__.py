"""The one executor: runs a Plan, or prints it on --dry-run. Every side effect of a plan goes
here (and through ssh.py, pve.py and download.py, which it calls).

Local commands run with a timeout, never through a shell; SSH steps go through ssh.py, PVE calls
through pve.py, and in-process actions (download, flash, ...) through handlers a namespace
registers. Secret values are masked in everything printed or raised.

    executor.py  the Executor: steps in order, fan-outs, waits, finally steps, --dry-run
    jobs.py      Job steps: a forked process group with a deadline
    local.py     local commands, the user's terminal, atomic writes, confirmation
    results.py   StepResult, and Local args that name an earlier step's result
"""

from .executor import Executor, LocalHandler, PveRunner, SshRunner
from .local import confirm, resolve_program, run_cmd, run_interactive, write_atomic
from .results import StepResult

__all__ = [
    "Executor",
    "LocalHandler",
    "PveRunner",
    "SshRunner",
    "StepResult",
    "confirm",
    "resolve_program",
    "run_cmd",
    "run_interactive",
    "write_atomic",
]
