"""Power tasks: start, stop, shutdown, reboot of a node's VM or a container. Each waits for its
task, then for the guest's state."""

from __future__ import annotations

from invoke import Context

from ...taskutil import Planned, plan_task
from ..common import GUEST


def _power(
    node: int | str, action: str, *, force_after: int | None = None, timeout: int = 0
) -> Planned:
    from .. import facts
    from ..common import load, need_guest, planned, session
    from .actions import DEFAULT_SHUTDOWN_S, plan_power

    inv = load()
    target = need_guest(inv, node)
    pve = session(inv)
    probed = facts.probe_guest(pve, target)
    plan = plan_power(
        inv, node, probed, action,  # type: ignore[arg-type]
        force_after=force_after, timeout_s=timeout or DEFAULT_SHUTDOWN_S,
    )  # fmt: skip
    return planned(pve, plan)


@plan_task(help={"node": GUEST})
def start(c: Context, node: str = "") -> Planned:
    """Start a node's VM or a container and wait until PVE reports it running."""
    return _power(node, "start")


@plan_task(yes=True, help={"node": GUEST})
def stop(c: Context, node: str = "") -> Planned:
    """Hard-stop a VM or container (like pulling the plug; needs --yes)."""
    return _power(node, "stop")


@plan_task(
    help={
        "node": GUEST,
        "force_after": "stop the guest hard if it is still up after SECONDS (default: never)",
        "timeout": "seconds PVE waits for the guest to power off (default 180)",
    }
)
def shutdown(c: Context, node: str = "", force_after: int = 0, timeout: int = 0) -> Planned:
    """Shut a VM or container down; with --force-after S, stop it after S seconds."""
    return _power(node, "shutdown", force_after=force_after or None, timeout=timeout)


@plan_task(
    help={"node": GUEST, "timeout": "seconds PVE waits for the guest to go down (default 180)"}
)
def reboot(c: Context, node: str = "", timeout: int = 0) -> Planned:
    """Reboot a VM or container (applies pending config); wait until it runs."""
    return _power(node, "reboot", timeout=timeout)


TASKS = [start, stop, shutdown, reboot]
