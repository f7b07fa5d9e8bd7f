"""Proxmox VM tasks: create-vm (with drift), destroy-vm. Declarations: load, probe, plan."""

from __future__ import annotations

from invoke import Context

from ...taskutil import Planned, plan_task
from ..common import VM_NODE


@plan_task(
    yes=True,
    help={
        "node": VM_NODE,
        "all": "every proxmox-vm node of the inventory",
        "start": "start the VM once it exists",
        "apply_drift": "apply live and pending drift (a NIC change on a running VM cuts its "
        "network: needs --yes; needs-stop only while stopped)",
        "force": "with --apply-drift: recreate a VM whose drift destroys data or moves it to "
        "OVMF (needs --yes)",
    },
)
def create_vm(
    c: Context,
    node: int = 0,
    all: bool = False,
    start: bool = False,
    apply_drift: bool = False,
    force: bool = False,
) -> Planned:
    """Create Talos VMs per Talos's Proxmox guide; report drift field by field."""
    from dataclasses import asdict

    from ...errors import ConfigError
    from ...plan import Plan, PveCall
    from ...talos.ops import schematics
    from .. import facts
    from ..common import load, planned, session
    from ..target import node_ids, talos_iso, vm_target
    from .create import iso_call, plan_create_vm
    from .drift_report import print_drift

    if force and not apply_drift:
        raise ConfigError("--force only goes with --apply-drift")
    inv = load()
    ids = node_ids(inv, node, all)
    targets = {i: vm_target(inv, i) for i in ids}
    isos = {i: talos_iso(inv, t).volid for i, t in targets.items()}
    pve = session(inv)
    probed = facts.probe_vms(pve, ids, plan_around_down=True, iso_volids=isos, config=True)
    title = "create-vm --all" if all else f"create {targets[ids[0]].label}"
    plan = Plan(title)
    drift, refused = {}, []
    for i in ids:
        made = plan_create_vm(
            inv, i, probed[i], start=start, apply_drift=apply_drift, force=force, plan=plan
        )
        if made.drift:
            drift[i] = made.drift
        refused += [f"{targets[i].label}: {r}" for r in made.refused]
    plan.notes += [f"not applied (the run ends refused): {r}" for r in refused]
    # PVE fetches image/<id>/...iso from the factory, which serves only registered schematics.
    downloads = [s.to_dict() for s in plan.steps if isinstance(s, PveCall)]
    fetched = [i for i in ids if iso_call(inv, targets[i]).to_dict() in downloads]
    resolved, registration = schematics.use_steps(inv, fetched)
    plan.steps[:0] = registration

    def lines() -> None:
        if not plan.steps:
            print(f"{title}: no write calls needed")
        if drift:
            print_drift(inv, drift)

    extra = {"drift": {str(i): [asdict(d) for d in ds] for i, ds in drift.items()},
             "refused": refused}  # fmt: skip
    return planned(
        pve, plan, extra=extra, lines=lines, refused=refused,
        handlers=schematics.handlers(resolved),
    )  # fmt: skip


@plan_task(
    yes=True,
    help={
        "node": VM_NODE,
        "vmid": "a guest id instead of --node (one not in the inventory needs --force)",
        "stop": "hard-stop the VM first if it is running (otherwise a running VM is refused)",
        "force": "allow a --vmid that is not an inventory VM",
    },
)
def destroy_vm(
    c: Context, node: int = 0, vmid: int = 0, stop: bool = False, force: bool = False
) -> Planned:
    """Destroy a node's VM and its disks on Proxmox (needs confirmation or --yes)."""
    from ...errors import ConfigError
    from .. import facts
    from ..common import load, need_node, planned, session
    from .destroy import plan_destroy_vm, plan_destroy_vmid

    inv = load()
    if bool(node) == bool(vmid):
        raise ConfigError("give --node N or --vmid ID (exactly one)")
    pve = session(inv)
    if vmid:
        found = None
        for name in sorted(inv.proxmox):
            found = found or facts.find_vm(facts.list_vms(pve.client(name)), vmid)
        plan = plan_destroy_vmid(inv, vmid, found, stop=stop, force=force)
    else:
        need_node(inv, node)
        f = facts.probe_vm(pve, node)
        plan = plan_destroy_vm(
            inv, node, vm=f.vm, reachable=f.reachable, reason=f.reason, host=f.host,
            lock_holders=f.lock_holders, stop=stop,
        )  # fmt: skip
    return planned(pve, plan)


TASKS = [create_vm, destroy_vm]
