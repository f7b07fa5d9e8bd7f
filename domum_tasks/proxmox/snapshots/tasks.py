"""Snapshot tasks: snapshot, snapshot-list, snapshot-rollback, snapshot-delete."""

from __future__ import annotations

from invoke import Context

from ...taskutil import JSON, Planned, domum_task, plan_task
from ..common import VM_NODE

NAME = "snapshot name: 2-40 characters, letter first, then [A-Za-z0-9_-]"


@plan_task(
    help={
        "node": VM_NODE,
        "name": NAME + " (default: domum-YYYYMMDD-HHMMSS, UTC)",
        "vmstate": "include the VM's RAM (a running VM resumes where it was on rollback)",
    }
)
def snapshot(c: Context, node: int = 0, name: str = "", vmstate: bool = False) -> Planned:
    """Snapshot a node's VM on Proxmox (once per snapshot name)."""
    import time

    from .. import facts
    from ..common import load, need_node, planned, session
    from .plan import check_snapname, plan_snapshot

    inv = load()
    need_node(inv, node)
    snapname = check_snapname(name or time.strftime("domum-%Y%m%d-%H%M%S", time.gmtime()))
    pve = session(inv)
    probed = facts.probe_vm(pve, node, snapshots=True)
    return planned(pve, plan_snapshot(inv, node, probed, snapname, vmstate=vmstate))


@domum_task(help={"node": VM_NODE + " (default: every proxmox-vm node)", "json": JSON})
def snapshot_list(c: Context, node: int = 0, json: bool = False) -> None:
    """List the snapshots of one or every node's VM (read-only)."""
    from ...console import print_table
    from .. import facts
    from ..common import load, need_node, session
    from ..target import vm_node_ids
    from .plan import snapshot_rows

    inv = load()
    ids = [need_node(inv, node)] if node else vm_node_ids(inv)
    probed = facts.probe_vms(session(inv), ids, plan_around_down=False, snapshots=True)
    print_table(
        "Proxmox VM snapshots",
        ("node", "vmid", "snapshot", "taken", "ram", "description"),
        snapshot_rows(inv, probed),
        json_out=json,
    )


def _planned(node: int, name: str, which: str) -> Planned:
    from .. import facts
    from ..common import load, need_node, planned, session
    from .plan import check_snapname, plan_rollback, plan_snapshot_delete

    inv = load()
    need_node(inv, node)
    check_snapname(name)
    pve = session(inv)
    probed = facts.probe_vm(pve, node, snapshots=True)
    make = plan_rollback if which == "rollback" else plan_snapshot_delete
    return planned(pve, make(inv, node, probed, name))


@plan_task(yes=True, help={"node": VM_NODE, "name": NAME})
def snapshot_rollback(c: Context, node: int = 0, name: str = "") -> Planned:
    """Roll a node's VM back to a snapshot; shows what is lost and needs confirmation."""
    return _planned(node, name, "rollback")


@plan_task(yes=True, help={"node": VM_NODE, "name": NAME})
def snapshot_delete(c: Context, node: int = 0, name: str = "") -> Planned:
    """Delete one snapshot of a node's VM (the VM stays; needs confirmation or --yes)."""
    return _planned(node, name, "delete")


TASKS = [snapshot, snapshot_list, snapshot_rollback, snapshot_delete]
