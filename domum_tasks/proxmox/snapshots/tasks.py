"""Snapshot tasks for VMs and containers: snapshot, snapshot-list, snapshot-rollback, snapshot-delete."""

from __future__ import annotations

from invoke import Context

from ...taskutil import JSON, Planned, domum_task, plan_task
from ..common import GUEST

NAME = "snapshot name: 2-40 characters, letter first, then [A-Za-z0-9_-]"


@plan_task(
    help={
        "node": GUEST,
        "name": NAME + " (default: domum-YYYYMMDD-HHMMSS, UTC)",
        "vmstate": "include the VM's RAM (a running VM resumes where it was on rollback; VMs only)",
    }
)
def snapshot(c: Context, node: str = "", name: str = "", vmstate: bool = False) -> Planned:
    """Snapshot a node's VM or a container on Proxmox (once per snapshot name)."""
    import time

    from .. import facts
    from ..common import load, need_guest, planned, session
    from .plan import check_snapname, plan_snapshot

    inv = load()
    target = need_guest(inv, node)
    snapname = check_snapname(name or time.strftime("domum-%Y%m%d-%H%M%S", time.gmtime()))
    pve = session(inv)
    probed = facts.probe_guest(pve, target, snapshots=True)
    return planned(pve, plan_snapshot(inv, node, probed, snapname, vmstate=vmstate))


@domum_task(help={"node": GUEST + " (default: every VM node and container)", "json": JSON})
def snapshot_list(c: Context, node: str = "", json: bool = False) -> None:
    """List the snapshots of one or every guest, VMs and containers (read-only)."""
    from ...console import print_table
    from .. import facts
    from ..common import load, need_guest, session
    from ..target import guest_refs, guest_target
    from .plan import snapshot_rows

    inv = load()
    targets = [need_guest(inv, node)] if node else [guest_target(inv, r) for r in guest_refs(inv)]
    probed = facts.probe_guests(session(inv), targets, plan_around_down=False, snapshots=True)
    print_table(
        "Proxmox guest snapshots",
        ("node", "vmid", "snapshot", "taken", "ram", "description"),
        snapshot_rows(inv, {t.ref: probed[t.ref] for t in targets}),
        json_out=json,
    )


def _planned(node: int | str, name: str, which: str) -> Planned:
    from .. import facts
    from ..common import load, need_guest, planned, session
    from .plan import check_snapname, plan_rollback, plan_snapshot_delete

    inv = load()
    target = need_guest(inv, node)
    check_snapname(name)
    pve = session(inv)
    probed = facts.probe_guest(pve, target, snapshots=True)
    make = plan_rollback if which == "rollback" else plan_snapshot_delete
    return planned(pve, make(inv, node, probed, name))


@plan_task(yes=True, help={"node": GUEST, "name": NAME})
def snapshot_rollback(c: Context, node: str = "", name: str = "") -> Planned:
    """Roll a VM or container back to a snapshot; says what is lost, needs --yes."""
    return _planned(node, name, "rollback")


@plan_task(yes=True, help={"node": GUEST, "name": NAME})
def snapshot_delete(c: Context, node: str = "", name: str = "") -> Planned:
    """Delete one snapshot of a VM or container (the guest stays; needs --yes)."""
    return _planned(node, name, "delete")


TASKS = [snapshot, snapshot_list, snapshot_rollback, snapshot_delete]
