"""Talos power and wipe tasks: `talos.reboot`, `talos.shutdown`, `talos.reset` (plans: power.py).

Declarations: validate, load the inventory, plan. Control planes need `--yes` or a typed
confirmation for all three (etcd quorum); reset always does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from invoke import Context

from ...taskutil import NODE, YES, Planned, load_inventory, plan_task


def _node(node: str, inv: Any) -> int:
    from ...errors import ConfigError
    from .glue import parse_node

    nid = parse_node(node, inv)
    if nid is None:
        raise ConfigError("--node N is required: which Talos node")
    return nid


def _planned(plan: Any, inv: Any) -> Planned:
    """After a real run, the plan's notes (what to do next, what was assumed)."""
    from .glue import handlers

    def report(results: Sequence[Any], json_out: bool) -> None:
        if plan.notes:
            print("\n".join(plan.notes))

    return Planned(plan, inv, handlers(), report=report, tools=("talosctl",))


@plan_task(
    yes=True,
    help={
        "node": NODE,
        "wait": "wait until the node is back up (talosctl tracks the reboot)",
        "wait_timeout": "with --wait: how long to wait (e.g. 10m)",
        "yes": YES + " (needed for control planes)",
    },
)
def reboot(c: Context, node: str = "", wait: bool = False, wait_timeout: str = "10m") -> Planned:
    """Reboot one Talos node (control planes ask first: etcd quorum)."""
    from .plan import parse_duration
    from .power import plan_reboot

    if wait:
        parse_duration(wait_timeout)
    inv = load_inventory()
    return _planned(plan_reboot(inv, _node(node, inv), wait=wait, wait_timeout=wait_timeout), inv)


@plan_task(
    yes=True,
    help={
        "node": NODE,
        "force": "skip cordon and drain",
        "yes": YES + " (needed for control planes)",
    },
)
def shutdown(c: Context, node: str = "", force: bool = False) -> Planned:
    """Shut one Talos node down until it is powered on (control planes ask first)."""
    from .power import plan_shutdown

    inv = load_inventory()
    return _planned(plan_shutdown(inv, _node(node, inv), force=force), inv)


@plan_task(
    yes=True,
    help={
        "node": NODE,
        "graceful": "cordon, drain and leave etcd first",
        "full": "wipe the WHOLE system disk, boot partition included (Pis must be re-flashed, "
        "bare metal needs USB/PXE); default: STATE and EPHEMERAL only",
    },
)
def reset(c: Context, node: str = "", graceful: bool = True, full: bool = False) -> Planned:
    """Wipe a node's config and data; it reboots into maintenance mode (asks first)."""
    from .power import plan_reset

    inv = load_inventory()
    return _planned(plan_reset(inv, _node(node, inv), graceful=graceful, full=full), inv)


TASKS: list[Any] = [reboot, shutdown, reset]
