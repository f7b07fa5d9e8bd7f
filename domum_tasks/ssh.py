"""The one fabric Connection factory: strict host keys, explicit key, timeouts, capped fan-out.

Fabric's default accepts any host key (AutoAddPolicy) and reads ~/.ssh/config; we do neither.
Host keys come only from the inventory's `ssh.known_hosts` (default config/known_hosts) and an
unknown or changed key is refused with a pointer to `inv pi.enroll`, the only task that adds keys.

Fan-out runs one connection per host in a thread pool capped at `ssh.parallel`; every host gets a
HostResult (ok, failed, unreachable, unknown-key, changed-key, auth, timeout), never an exception.
fabric and paramiko are imported inside functions so `inv --list` stays fast.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import settings
from .errors import ConfigError, RemoteError
from .plan import Ssh

if TYPE_CHECKING:
    from fabric import Connection

    from .inventory.model import Inventory
    from .run import StepResult

Status = Literal["ok", "failed", "unreachable", "unknown-key", "changed-key", "auth", "timeout"]
TAIL_LINES = 12
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """Where and as whom to connect; `label` is what people see (a hostname, or nas)."""

    host: str
    port: int
    user: str
    label: str
    node_id: int | None = None

    @property
    def known_hosts_name(self) -> str:
        """The name known_hosts files use: bare for port 22, [host]:port otherwise."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass
class HostResult:
    target: Target
    status: Status
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def reason(self) -> str:
        """One line saying why this host failed (empty when it did not)."""
        if self.ok:
            return ""
        if self.status == "failed":
            tail = self.stderr.strip().splitlines()[-1:] or [""]
            return f"exit code {self.exit_code}" + (f": {tail[0]}" if tail[0] else "")
        return self.error


# --- configuration --------------------------------------------------------------------------


def repo_path(value: str) -> Path:
    """Inventory paths: `~` expanded, relative ones taken from the repo root."""
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else settings.repo_root() / path


def known_hosts_path(inv: Inventory) -> Path:
    return repo_path(inv.ssh.known_hosts)


def key_file(inv: Inventory) -> Path | None:
    path = repo_path(inv.ssh.key_file)
    return path if path.is_file() else None


def enroll_hint(target: Target) -> str:
    if target.node_id is not None:
        return f"inv pi.enroll --node {target.node_id}"
    return "inv pi.enroll --node nas"


def resolve(inv: Inventory, host: str | int) -> Target:
    """A node id, node IP/hostname, or the NAS (`nas`, its IP or hostname) to a Target."""
    text = str(host).strip()
    for node_id, node in sorted(inv.nodes.items()):
        if text in (str(node_id), str(node.ip), node.hostname):
            return Target(str(node.ip), node.ssh_port, node.user, node.hostname, node_id)
    nas = inv.nas
    if nas is not None and text in ("nas", str(nas.host), nas.hostname):
        return Target(str(nas.host), nas.ssh_port, nas.user, "nas")
    valid = ", ".join([*(str(i) for i in sorted(inv.nodes)), *(["nas"] if nas else [])])
    raise ConfigError(f"host {text!r} is not a node or the NAS in the inventory; valid: {valid}")


# Paramiko's transport thread logs failures (with tracebacks) that run_on and pi.enroll already
# report as one line; with no handler, Python's last-resort handler would print them to stderr.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def connection(inv: Inventory, target: Target) -> Connection:
    """A fabric Connection that checks host keys against known_hosts and rejects the rest."""
    import paramiko
    from fabric import Config, Connection

    config = Config(
        overrides={
            "load_ssh_configs": False,  # ~/.ssh/config must not redirect or relax anything
            "run": {"in_stream": False, "hide": True, "warn": True},
            "timeouts": {"command": inv.ssh.command_timeout_s},
        }
    )
    connect_kwargs: dict[str, Any] = {
        "banner_timeout": inv.ssh.connect_timeout_s,
        "auth_timeout": inv.ssh.connect_timeout_s,
    }
    key = key_file(inv)
    if key is not None:
        connect_kwargs.update(key_filename=str(key), look_for_keys=False, allow_agent=False)
    conn = Connection(
        target.host,
        user=target.user,
        port=target.port,
        config=config,
        connect_timeout=inv.ssh.connect_timeout_s,
        connect_kwargs=connect_kwargs,
    )
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    kh = known_hosts_path(inv)
    if kh.exists():
        # Load into the client's own key set (not load_host_keys): nothing is ever saved back.
        conn.client.get_host_keys().load(str(kh))
    return conn


# --- running commands -----------------------------------------------------------------------


def _classify(exc: BaseException, target: Target, inv: Inventory) -> tuple[Status, str]:
    import socket

    import paramiko
    from invoke.exceptions import CommandTimedOut

    where = f"{target.label} ({target.user}@{target.host}:{target.port})"
    kh = inv.ssh.known_hosts
    if isinstance(exc, paramiko.BadHostKeyException):
        return "changed-key", (
            f"{where}: host key CHANGED (not the one in {kh}); refusing to connect. If the host was "
            f"reinstalled, verify and run `{enroll_hint(target)}`"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return "auth", f"{where}: authentication failed: {exc}"
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return "unknown-key", (
            f"{where}: host key unknown (not in {kh}); refusing to connect. "
            f"Run `{enroll_hint(target)}` to check and add it"
        )
    if isinstance(exc, CommandTimedOut):
        return "timeout", f"{where}: command timed out after {exc.timeout}s"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timeout", f"{where}: timed out connecting after {inv.ssh.connect_timeout_s:g}s"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return "unreachable", f"{where}: unreachable: connection refused"
    if isinstance(exc, OSError):
        return "unreachable", f"{where}: unreachable: {exc.strerror or exc}"
    if isinstance(exc, paramiko.SSHException | EOFError):
        return "unreachable", f"{where}: SSH error: {exc or type(exc).__name__}"
    raise exc


def run_on(
    inv: Inventory, target: Target, command: str, timeout_s: float | None = None
) -> HostResult:
    """Run one command on one host; every failure becomes a HostResult, never an exception."""
    import time

    start = time.monotonic()
    conn = connection(inv, target)
    limit = timeout_s or inv.ssh.command_timeout_s
    try:
        res = conn.run(command, timeout=limit)
        elapsed = time.monotonic() - start
        status: Status = "ok" if res.exited == 0 else "failed"
        if status == "failed" and elapsed >= limit:
            # invoke's Runner.timed_out is False while its timer thread is still inside
            # fabric's Remote.kill (closing the channel ends the wait first): a race under load
            where = f"{target.label} ({target.user}@{target.host}:{target.port})"
            return HostResult(
                target,
                "timeout",
                res.exited,
                res.stdout,
                res.stderr,
                error=f"{where}: command timed out after {limit:g}s",
                elapsed_s=elapsed,
            )
        return HostResult(target, status, res.exited, res.stdout, res.stderr, elapsed_s=elapsed)
    except Exception as exc:  # classified below; unknown kinds re-raise
        status, message = _classify(exc, target, inv)
        return HostResult(target, status, error=message, elapsed_s=time.monotonic() - start)
    finally:
        conn.close()


def parallel(jobs: Sequence[Callable[[], T]], cap: int) -> list[T]:
    """Run callables at most `cap` at once; results in the order given."""
    if not jobs:
        return []
    with ThreadPoolExecutor(
        max_workers=max(1, min(cap, len(jobs))), thread_name_prefix="domum-ssh"
    ) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]


def fanout(
    inv: Inventory,
    targets: Sequence[Target],
    command: str,
    *,
    parallel_cap: int | None = None,
    timeout_s: float | None = None,
) -> list[HostResult]:
    """Run one command on many hosts, at most `parallel_cap` (default ssh.parallel) at once.

    Results come back in the order of the targets; one host failing never stops the others.
    """
    jobs = [functools.partial(run_on, inv, t, command, timeout_s) for t in targets]
    return parallel(jobs, parallel_cap or inv.ssh.parallel)


def run_step(inv: Inventory, step: Ssh) -> StepResult:
    """Executor hook: run one plan.Ssh step strictly. A failed or unreachable host raises
    RemoteError, unless the step has check=False: then it is the outcome (ok False), and the
    StepResult's value is the HostResult (status, exit code, why), for every such step."""
    from .run import StepResult

    target = resolve(inv, step.host)
    if step.user:
        target = Target(target.host, target.port, step.user, target.label, target.node_id)
    if step.port != 22:
        target = Target(target.host, step.port, target.user, target.label, target.node_id)
    result = run_on(inv, target, step.command, step.timeout_s)
    if not step.check:
        return StepResult(step, result.ok, result.stdout, result.stderr, result)
    if not result.ok:
        raise RemoteError(_failure_message(result, step.command))
    return StepResult(step, True, result.stdout, result.stderr, result.exit_code)


def _failure_message(result: HostResult, command: str) -> str:
    if result.status != "failed":
        return result.error
    tail = "\n".join("  | " + line for line in result.stderr.strip().splitlines()[-TAIL_LINES:])
    head = f"{result.target.label}: exit code {result.exit_code}: {command}"
    return f"{head}\n{tail}" if tail else head


def raise_for(results: Sequence[HostResult], what: str) -> None:
    """One RemoteError summarising every failed host (tasks exit 1 when any host failed)."""
    bad = [r for r in results if not r.ok]
    if bad:
        lines = [f"{what}: {len(bad)} of {len(results)} host(s) failed"]
        lines += [
            f"  {r.reason()}"
            if r.reason().startswith(r.target.label)
            else f"  {r.target.label}: {r.reason()}"
            for r in bad
        ]
        raise RemoteError("\n".join(lines))
