"""Power tasks: start, stop, shutdown, reboot. Each waits for its task, then for the VM state."""

from __future__ import annotations

from invoke import Context

from ...taskutil import Planned, plan_task
from ..common import VM_NODE


def _power(node: int, action: str, *, force_after: int | None = None, timeout: int = 0) -> Planned:
    from .. import facts
    from ..common import load, need_node, planned, session
    from .actions import DEFAULT_SHUTDOWN_S, plan_power

    inv = load()
    need_node(inv, node)
    pve = session(inv)
    probed = facts.probe_vm(pve, node)
    plan = plan_power(
        inv, node, probed, action,  # type: ignore[arg-type]
        force_after=force_after, timeout_s=timeout or DEFAULT_SHUTDOWN_S,
    )  # fmt: skip
    return planned(pve, plan)


@plan_task(help={"node": VM_NODE})
def start(c: Context, node: int = 0) -> Planned:
    """Start a node's VM and wait until PVE reports it running."""
    return _power(node, "start")


@plan_task(yes=True, help={"node": VM_NODE})
def stop(c: Context, node: int = 0) -> Planned:
    """Hard-stop a node's VM (like pulling the plug; needs --yes). Prefer shutdown."""
    return _power(node, "stop")


@plan_task(
    help={
        "node": VM_NODE,
        "force_after": "stop the VM hard if it is still up after SECONDS (default: never)",
        "timeout": "seconds PVE waits for the guest to power off (default 180)",
    }
)
def shutdown(c: Context, node: int = 0, force_after: int = 0, timeout: int = 0) -> Planned:
    """Shut a node's VM down cleanly; with --force-after S, stop it after S seconds."""
    return _power(node, "shutdown", force_after=force_after or None, timeout=timeout)


@plan_task(
    help={"node": VM_NODE, "timeout": "seconds PVE waits for the guest to go down (default 180)"}
)
def reboot(c: Context, node: int = 0, timeout: int = 0) -> Planned:
    """Reboot a node's VM through PVE (applies pending config); wait until it runs."""
    return _power(node, "reboot", timeout=timeout)


TASKS = [start, stop, shutdown, reboot]
