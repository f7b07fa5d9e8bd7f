"""Snapshot tasks: snapshot, snapshot-list, snapshot-rollback, snapshot-delete."""

from __future__ import annotations

from invoke import Context

from ...taskutil import DRY_RUN, JSON, YES, domum_task
from ..common import VM_NODE

NAME = "snapshot name: 2-40 characters, letter first, then [A-Za-z0-9_-]"


@domum_task(
    help={
        "node": VM_NODE,
        "name": NAME + " (default: domum-YYYYMMDD-HHMMSS, UTC)",
        "vmstate": "include the VM's RAM (a running VM resumes where it was on rollback)",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def snapshot(
    c: Context,
    node: int = 0,
    name: str = "",
    vmstate: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Snapshot a node's VM on Proxmox (once per snapshot name)."""
    import time

    from .. import facts
    from ..common import execute, load, need_node
    from .plan import check_snapname, plan_snapshot

    inv = load()
    need_node(inv, node)
    snapname = check_snapname(name or time.strftime("domum-%Y%m%d-%H%M%S", time.gmtime()))
    probed = facts.probe_vm(inv, node, dry_run=dry_run, snapshots=True)
    execute(inv, plan_snapshot(inv, node, probed, snapname, vmstate=vmstate),
            dry_run=dry_run, json=json)  # fmt: skip


@domum_task(help={"node": VM_NODE + " (default: every proxmox-vm node)", "json": JSON})
def snapshot_list(c: Context, node: int = 0, json: bool = False) -> None:
    """List the snapshots of one or every node's VM (read-only)."""
    from ...console import print_table
    from .. import facts
    from ..common import load, need_node
    from ..target import vm_node_ids
    from .plan import snapshot_rows

    inv = load()
    ids = [need_node(inv, node)] if node else vm_node_ids(inv)
    probed = facts.probe_vms(inv, ids, dry_run=False, snapshots=True)
    print_table(
        "Proxmox VM snapshots",
        ("node", "vmid", "snapshot", "taken", "ram", "description"),
        snapshot_rows(inv, probed),
        json_out=json,
    )


@domum_task(help={"node": VM_NODE, "name": NAME, "yes": YES, "dry_run": DRY_RUN, "json": JSON})
def snapshot_rollback(
    c: Context,
    node: int = 0,
    name: str = "",
    yes: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Roll a node's VM back to a snapshot; shows what is lost and needs confirmation."""
    from .. import facts
    from ..common import execute, load, need_node
    from .plan import check_snapname, plan_rollback

    inv = load()
    need_node(inv, node)
    check_snapname(name)
    probed = facts.probe_vm(inv, node, dry_run=dry_run, snapshots=True)
    execute(inv, plan_rollback(inv, node, probed, name), dry_run=dry_run, json=json, yes=yes)


@domum_task(help={"node": VM_NODE, "name": NAME, "yes": YES, "dry_run": DRY_RUN, "json": JSON})
def snapshot_delete(
    c: Context,
    node: int = 0,
    name: str = "",
    yes: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Delete one snapshot of a node's VM (the VM stays; needs confirmation or --yes)."""
    from .. import facts
    from ..common import execute, load, need_node
    from .plan import check_snapname, plan_snapshot_delete

    inv = load()
    need_node(inv, node)
    check_snapname(name)
    probed = facts.probe_vm(inv, node, dry_run=dry_run, snapshots=True)
    plan = plan_snapshot_delete(inv, node, probed, name)
    execute(inv, plan, dry_run=dry_run, json=json, yes=yes)


TASKS = [snapshot, snapshot_list, snapshot_rollback, snapshot_delete]
