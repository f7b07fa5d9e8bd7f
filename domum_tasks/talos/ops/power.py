"""Pure planners for the Talos power and wipe tasks: reboot, shutdown, reset (no I/O).

Control planes carry etcd: with three members one may be down, with two down the cluster loses
quorum and the API stops. So every reboot, shutdown or reset of a control plane is a destructive
step (`--yes` or a typed confirmation) and the plan says how many members stay up.

`talos.reset` keeps the boot partition by default: it wipes only the STATE (machine config) and
EPHEMERAL (/var: kubelet, etcd data, container images) partitions, so the node reboots from its
own disk into maintenance mode and waits for `talos.apply --insecure`. `--full` wipes the whole
system disk (talosctl's default): afterwards a Pi has nothing to boot (flash the card or NVMe
again), and a mini PC or VM needs its USB stick, ISO or PXE again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...plan import Cmd, Plan
from ..argv import talosctl
from ..disks import full_wipe_disks
from .plan import _label, parse_duration, talos_node

if TYPE_CHECKING:
    from ...inventory.model import Inventory, Node

KEEP_BOOT_LABELS = ("STATE", "EPHEMERAL")
FULL_WIPE_WARNING = {
    "pi": "a Raspberry Pi then has no boot partition: it must be flashed again (inv pi.flash)",
    "proxmox-vm": "the VM then boots only from its Talos ISO again (attach it: inv proxmox.vm)",
    "baremetal": "the machine then needs its Talos USB stick or PXE boot again",
}


def _quorum_note(inv: Inventory, node_id: int, node: Node, verb: str) -> str | None:
    if node.role != "controlplane":
        return None
    total = len(inv.controlplanes)
    up = total - 1
    if total == 1:
        return f"{node.hostname} is the only control plane: while it is {verb}, the API is down"
    quorum = total // 2 + 1
    state = "keeps quorum" if up >= quorum else "LOSES quorum (the Kubernetes API stops)"
    return (
        f"{node.hostname} is an etcd member: {up} of {total} stay up, etcd {state}; make sure "
        "the other control planes are healthy first (inv talos.health)"
    )


def _etcd(note: str | None) -> str:
    """The quorum sentence for a step's description: the confirmation prompt shows it."""
    return f"; {note.split('; ')[0]}" if note else ""


def plan_reboot(
    inv: Inventory, node_id: int, *, wait: bool = False, wait_timeout: str = "10m"
) -> Plan:
    """`talosctl reboot` one node; control planes need confirmation."""
    node = talos_node(inv, node_id)
    plan = Plan(f"reboot {node.hostname}")
    note = _quorum_note(inv, node_id, node, "rebooting")
    if note:
        plan.note(note)
    args = ["--wait=true", "--timeout", wait_timeout] if wait else ["--wait=false"]
    seconds = parse_duration(wait_timeout) if wait else 60.0
    return plan.add(
        Cmd(
            talosctl(inv, "reboot", *args, nodes=[str(node.ip)]),
            desc=f"reboot {_label(node_id, node)}"
            + (f", waiting up to {wait_timeout} for it to come back" if wait else "")
            + _etcd(note),
            destructive=node.role == "controlplane",
            timeout_s=seconds + 60,
        )
    )


def plan_shutdown(inv: Inventory, node_id: int, *, force: bool = False) -> Plan:
    """`talosctl shutdown` one node (cordon + drain first unless --force); control planes need
    confirmation. The node stays off until someone powers it on."""
    node = talos_node(inv, node_id)
    plan = Plan(f"shut down {node.hostname}")
    note = _quorum_note(inv, node_id, node, "off")
    if note:
        plan.note(note)
    plan.note(f"{node.hostname} stays off until it is powered on again (no Talos API can wake it)")
    args = ["--force"] if force else []
    return plan.add(
        Cmd(
            talosctl(inv, "shutdown", *args, "--wait=false", nodes=[str(node.ip)]),
            desc=f"shut down {_label(node_id, node)}"
            + (" without cordon/drain" if force else " (cordon and drain first)")
            + _etcd(note),
            destructive=node.role == "controlplane",
            timeout_s=600,
        )
    )


def plan_reset(inv: Inventory, node_id: int, *, graceful: bool = True, full: bool = False) -> Plan:
    """Wipe one node back to maintenance mode (destructive: needs --yes or confirmation)."""
    node = talos_node(inv, node_id)
    plan = Plan(f"reset {node.hostname}" + (" (whole system disk)" if full else ""))
    quorum = _quorum_note(inv, node_id, node, "reset")
    if node.role == "controlplane" and len(inv.controlplanes) == 1:
        quorum = "this is the only control plane: resetting it destroys etcd and the cluster"
    if quorum is not None:
        plan.note(quorum)
    disks = full_wipe_disks(node)
    plan.note(f"node: {_label(node_id, node)}, model {node.model or '-'}, disks {'; '.join(disks)}")
    wipe: list[str] = []
    if full:
        kind = "pi" if node.is_pi else node.platform
        every = " and all of ".join(disks)
        plan.note(f"warning: --full wipes all of {every}; {FULL_WIPE_WARNING[kind]}")
        what = f"wipe ALL of {every} on {_label(node_id, node)}; it powers off"
    else:
        for label in KEEP_BOOT_LABELS:
            wipe += ["--system-labels-to-wipe", label]
        plan.note(
            "wipes the STATE and EPHEMERAL partitions only; the boot partition stays, so the node "
            f"reboots into maintenance mode (then: inv talos.apply --node {node_id} --insecure)"
        )
        what = f"wipe STATE+EPHEMERAL of {_label(node_id, node)}; it reboots into maintenance mode"
    # A full wipe leaves nothing to boot: power off rather than reboot into a boot loop.
    power = [] if full else ["--reboot"]
    argv = talosctl(
        inv, "reset", f"--graceful={str(graceful).lower()}", *wipe, *power, nodes=[str(node.ip)]
    )
    return plan.add(Cmd(argv, desc=what + _etcd(quorum), destructive=True, timeout_s=1800))
