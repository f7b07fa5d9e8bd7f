"""Power tasks: start, stop, shutdown, reboot. Each waits for its task, then for the VM state."""

from __future__ import annotations

from invoke import Context

from ...taskutil import DRY_RUN, JSON, YES, domum_task
from ..common import VM_NODE


def _power(node: int, action: str, *, dry_run: bool, json: bool, yes: bool = False,
           force_after: int | None = None, timeout: int = 0) -> None:  # fmt: skip
    from .. import facts
    from ..common import execute, load, need_node
    from .actions import DEFAULT_SHUTDOWN_S, plan_power

    inv = load()
    need_node(inv, node)
    probed = facts.probe_vm(inv, node, dry_run=dry_run)
    plan = plan_power(
        inv, node, probed, action,  # type: ignore[arg-type]
        force_after=force_after, timeout_s=timeout or DEFAULT_SHUTDOWN_S,
    )  # fmt: skip
    execute(inv, plan, dry_run=dry_run, json=json, yes=yes)


@domum_task(help={"node": VM_NODE, "dry_run": DRY_RUN, "json": JSON})
def start(c: Context, node: int = 0, dry_run: bool = False, json: bool = False) -> None:
    """Start a node's VM and wait until PVE reports it running."""
    _power(node, "start", dry_run=dry_run, json=json)


@domum_task(help={"node": VM_NODE, "yes": YES, "dry_run": DRY_RUN, "json": JSON})
def stop(
    c: Context, node: int = 0, yes: bool = False, dry_run: bool = False, json: bool = False
) -> None:
    """Hard-stop a node's VM (like pulling the plug; needs --yes). Prefer shutdown."""
    _power(node, "stop", dry_run=dry_run, json=json, yes=yes)


@domum_task(
    help={
        "node": VM_NODE,
        "force_after": "stop the VM hard if it is still up after SECONDS (default: never)",
        "timeout": "seconds PVE waits for the guest to power off (default 180)",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def shutdown(
    c: Context,
    node: int = 0,
    force_after: int = 0,
    timeout: int = 0,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Shut a node's VM down cleanly; with --force-after S, stop it after S seconds."""
    _power(node, "shutdown", dry_run=dry_run, json=json,
           force_after=force_after or None, timeout=timeout)  # fmt: skip


@domum_task(
    help={
        "node": VM_NODE,
        "timeout": "seconds PVE waits for the guest to go down (default 180)",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def reboot(
    c: Context, node: int = 0, timeout: int = 0, dry_run: bool = False, json: bool = False
) -> None:
    """Reboot a node's VM through PVE (applies pending config); wait until it runs."""
    _power(node, "reboot", dry_run=dry_run, json=json, timeout=timeout)


TASKS = [start, stop, shutdown, reboot]
