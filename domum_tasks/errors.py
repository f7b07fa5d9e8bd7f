"""The Domum exception tree, and the only place where exit codes are decided.

    DomumError                      exit 1  something failed; message is one line for a human
    ├── ConfigError (ValueError)    exit 2  bad inventory, bad argument, bad input file
    │   └── InventoryInvalid        exit 2  every problem of an inventory file, one per line
    ├── ToolMissing                 exit 3  an external CLI (talosctl, flux, sops, ...) is absent
    ├── Refused                     exit 4  a safety check or a missing confirmation stopped us
    ├── LockHeld                    exit 5  another run holds the lock (cron overlap)
    ├── CommandFailed               exit 1  a local command exited non-zero or timed out
    ├── RemoteError                 exit 1  an SSH host failed (unreachable, bad host key, command)
    ├── PveError                    exit 1  a Proxmox VE API call failed
    └── VerifyError                 exit 1  a checksum, read-back or snapshot check failed

Task wrappers (domum_tasks.taskutil) turn these into `invoke.Exit(message, code)`: the user sees one
line on stderr and never a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_TOOL_MISSING = 3
EXIT_REFUSED = 4
EXIT_LOCKED = 5


class DomumError(Exception):
    """Base of every error Domum raises on purpose."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(DomumError, ValueError):
    """The inventory, an argument or an input file is invalid."""

    exit_code = EXIT_CONFIG


class InventoryInvalid(ConfigError):
    """An inventory file with one or more problems; `problems` keeps them apart as
    (where, what) pairs, e.g. ("config/domum.yaml:72", "nodes.92.mac: ... is not a MAC address"),
    so `inv check` can show each as a row."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("\n".join(f"{where}: {what}" for where, what in problems))
        self.problems = problems


class ToolMissing(DomumError):
    """An external command-line tool Domum needs is not installed."""

    exit_code = EXIT_TOOL_MISSING


class Refused(DomumError):
    """A safety check failed, or the user did not confirm a destructive step."""

    exit_code = EXIT_REFUSED


class LockHeld(DomumError):
    """Another Domum run holds the lock for this job."""

    exit_code = EXIT_LOCKED


class CommandFailed(DomumError):
    """A local command failed; `stderr_tail` keeps its last lines."""

    def __init__(self, message: str, *, stderr_tail: str = "", returncode: int | None = None):
        super().__init__(message)
        self.stderr_tail = stderr_tail
        self.returncode = returncode

    def __str__(self) -> str:
        if not self.stderr_tail:
            return self.message
        tail = "\n".join("  | " + line for line in self.stderr_tail.splitlines())
        return f"{self.message}\n{tail}"


class RemoteError(DomumError):
    """An SSH host could not be reached, had an unknown key, or a command failed there."""


class PveError(DomumError):
    """A Proxmox VE API call failed or its task did not end with exitstatus OK."""


class VerifyError(DomumError):
    """A written or downloaded artefact does not match what it must be."""
