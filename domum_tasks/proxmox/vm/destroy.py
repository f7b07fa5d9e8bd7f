"""Planner of destroy-vm. Pure. Destroying is destructive: confirmation or --yes, always.

Rules: the guest must be the node's VM (a QEMU VM named as the node's hostname); a vmid that
is no inventory VM is refused unless --force; a running VM is refused unless --stop (a hard stop
first); the delete purges the VM from jobs and ACLs and removes unreferenced disks.
"""

from __future__ import annotations

from ...errors import DomumError, Refused
from ...inventory.model import Inventory
from ...plan import Plan, PveCall
from ..facts import VmInfo
from ..target import check_ours, check_unlocked, unreachable_note, vm_base, vm_target


def _delete_steps(
    base: str, label: str, vm: VmInfo | None, *, stop: bool, disks: str
) -> list[PveCall]:
    steps = []
    if stop and (vm is None or vm.status != "stopped"):
        steps.append(
            PveCall("POST", f"{base}/status/stop", {}, desc=f"hard-stop {label}",
                    destructive=True, wait_task=True)
        )  # fmt: skip
    steps.append(
        PveCall("DELETE", base, {"purge": 1, "destroy-unreferenced-disks": 1},
                desc=f"destroy {label} and its disks ({disks})", destructive=True, wait_task=True)
    )  # fmt: skip
    return steps


def _check_running(label: str, vm: VmInfo, stop: bool) -> None:
    if vm.status != "stopped" and not stop:
        raise Refused(f"{label} is {vm.status}", hint="pass --stop to stop it first")


def plan_destroy_vm(
    inv: Inventory,
    node_id: int,
    *,
    vm: VmInfo | None,
    reachable: bool = True,
    reason: str = "",
    host: str = "",
    lock_holders: list[str] | None = None,
    stop: bool = False,
) -> Plan:
    t = vm_target(inv, node_id)
    plan = Plan(f"destroy {t.label} on {t.host_name}")
    if vm is None and reachable:
        return plan.note(f"{t.label} does not exist on {host or t.host_name}: nothing to destroy")
    if vm is not None:
        check_ours(t, vm)
        check_unlocked(t, vm, lock_holders or [])
        _check_running(t.label, vm, stop)
    plan.notes += unreachable_note(
        host or t.host_name, reachable, reason,
        f"assumed {t.label} exists" + (" and is running" if stop else " and is stopped"),
    )  # fmt: skip
    if t.node.role == "controlplane":
        plan.note(
            f"node {node_id} is a control plane: remove its etcd member first "
            f"(talosctl etcd remove-member), or etcd keeps a dead member"
        )
    disks = f"scsi0 on {t.spec.storage}"
    return plan.add(*_delete_steps(vm_base(t, vm), t.label, vm, stop=stop, disks=disks))


def plan_destroy_vmid(
    inv: Inventory, vmid: int, vm: VmInfo | None, *, stop: bool = False, force: bool = False
) -> Plan:
    """destroy-vm --vmid ID: an inventory VM by its id, or (with --force) any other guest."""
    for node_id, node in sorted(inv.nodes.items()):
        if node.vm is not None and node.vm.vmid == vmid:
            return plan_destroy_vm(inv, node_id, vm=vm, stop=stop)
    if not force:
        raise Refused(
            f"vmid {vmid} is not an inventory VM"
            + (f" (it is {vm.kind} {vm.name!r} on {vm.node})" if vm else ""),
            hint="pass --force to destroy a guest Domum does not manage",
        )
    if vm is None:
        raise DomumError(f"no guest {vmid} on any Proxmox host: nothing to destroy")
    if vm.kind != "qemu":
        raise Refused(f"vmid {vmid} is a {vm.kind} container; destroy-vm removes QEMU VMs only")
    _check_running(f"VM {vmid} ({vm.name})", vm, stop)
    plan = Plan(f"destroy VM {vmid} ({vm.name}) on {vm.node}, not in the inventory")
    label = f"VM {vmid} ({vm.name}, not in the inventory)"
    base = f"/nodes/{vm.node}/qemu/{vmid}"
    return plan.add(*_delete_steps(base, label, vm, stop=stop, disks="all its disks"))
