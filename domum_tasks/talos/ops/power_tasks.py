"""Talos power and wipe tasks: `talos.reboot`, `talos.shutdown`, `talos.reset` (plans: power.py).

Thin: parse args, load the inventory, plan, execute. Control planes need `--yes` or a typed
confirmation for all three (etcd quorum); reset always does.
"""

from __future__ import annotations

from typing import Any

from invoke import Context

from ...taskutil import DRY_RUN, JSON, NODE, YES, domum_task, load_inventory


def _run(plan: Any, inv: Any, *, dry_run: bool, json: bool, yes: bool) -> None:
    from ...taskutil import executor
    from .glue import handlers

    if not dry_run:
        from ...tools import require_tool

        require_tool("talosctl")  # exit 3 before anything runs
    if not dry_run and plan.notes:
        print("\n".join(plan.notes))
    executor(dry_run=dry_run, json_out=json, inventory=inv, handlers=handlers()).execute(
        plan, yes=yes
    )


def _node(node: str, inv: Any) -> int:
    from ...errors import ConfigError
    from .glue import parse_node

    nid = parse_node(node, inv)
    if nid is None:
        raise ConfigError("--node N is required: which Talos node")
    return nid


@domum_task(
    help={
        "node": NODE,
        "wait": "wait until the node is back up (talosctl tracks the reboot)",
        "wait_timeout": "with --wait: how long to wait (e.g. 10m)",
        "yes": YES + " (needed for control planes)",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def reboot(
    c: Context,
    node: str = "",
    wait: bool = False,
    wait_timeout: str = "10m",
    yes: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Reboot one Talos node (control planes ask first: etcd quorum)."""
    from .power import plan_reboot

    inv = load_inventory()
    plan = plan_reboot(inv, _node(node, inv), wait=wait, wait_timeout=wait_timeout)
    _run(plan, inv, dry_run=dry_run, json=json, yes=yes)


@domum_task(
    help={
        "node": NODE,
        "force": "skip cordon and drain",
        "yes": YES + " (needed for control planes)",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def shutdown(
    c: Context,
    node: str = "",
    force: bool = False,
    yes: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Shut one Talos node down until it is powered on (control planes ask first)."""
    from .power import plan_shutdown

    inv = load_inventory()
    _run(
        plan_shutdown(inv, _node(node, inv), force=force), inv, dry_run=dry_run, json=json, yes=yes
    )


@domum_task(
    help={
        "node": NODE,
        "yes": YES,
        "graceful": "cordon, drain and leave etcd first",
        "full": "wipe the WHOLE system disk, boot partition included (Pis must be re-flashed, "
        "bare metal needs USB/PXE); default: STATE and EPHEMERAL only",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def reset(
    c: Context,
    node: str = "",
    yes: bool = False,
    graceful: bool = True,
    full: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Wipe a node's config and data; it reboots into maintenance mode (asks first)."""
    from .power import plan_reset

    inv = load_inventory()
    plan = plan_reset(inv, _node(node, inv), graceful=graceful, full=full)
    _run(plan, inv, dry_run=dry_run, json=json, yes=yes)


TASKS: list[Any] = [reboot, shutdown, reset]
