"""Proxmox VM tasks: create-vm (with drift), destroy-vm. Thin: load, probe, plan, execute."""

from __future__ import annotations

from invoke import Context

from ...taskutil import DRY_RUN, JSON, YES, domum_task
from ..common import VM_NODE


@domum_task(
    help={
        "node": VM_NODE,
        "all": "every proxmox-vm node of the inventory",
        "start": "start the VM once it exists",
        "apply_drift": "apply drift that is live or pending (needs-stop only while stopped)",
        "force": "with --apply-drift: recreate a VM whose drift destroys data (needs --yes)",
        "yes": YES,
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def create_vm(
    c: Context,
    node: int = 0,
    all: bool = False,
    start: bool = False,
    apply_drift: bool = False,
    force: bool = False,
    yes: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Create Talos VMs per Talos's Proxmox guide; report drift field by field."""
    from dataclasses import asdict

    from ...errors import ConfigError, Refused
    from ...plan import Plan
    from .. import facts
    from ..common import execute, load
    from ..target import node_ids, talos_iso, vm_target
    from .create import plan_create_vm
    from .drift_report import print_drift

    if force and not apply_drift:
        raise ConfigError("--force only goes with --apply-drift")
    inv = load()
    ids = node_ids(inv, node, all)
    targets = {i: vm_target(inv, i) for i in ids}
    isos = {i: talos_iso(inv, t).volid for i, t in targets.items()}
    probed = facts.probe_vms(inv, ids, dry_run=dry_run, iso_volids=isos, config=True)
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
    if not plan.steps and not dry_run and not json:
        print(f"{title}: no write calls needed")
    if drift and not json:
        print_drift(inv, drift, dry_run=dry_run)
    extra = {"drift": {str(i): [asdict(d) for d in ds] for i, ds in drift.items()},
             "refused": refused}  # fmt: skip
    execute(inv, plan, dry_run=dry_run, json=json, yes=yes, extra=extra)
    if refused:
        raise Refused("not applied: " + "; ".join(refused))


@domum_task(
    help={
        "node": VM_NODE,
        "vmid": "a guest id instead of --node (one not in the inventory needs --force)",
        "stop": "hard-stop the VM first if it is running (otherwise a running VM is refused)",
        "force": "allow a --vmid that is not an inventory VM",
        "yes": YES,
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def destroy_vm(
    c: Context,
    node: int = 0,
    vmid: int = 0,
    stop: bool = False,
    force: bool = False,
    yes: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Destroy a node's VM and its disks on Proxmox (needs confirmation or --yes)."""
    from ...errors import ConfigError
    from .. import facts
    from ..common import execute, load, need_node
    from .destroy import plan_destroy_vm, plan_destroy_vmid

    inv = load()
    if bool(node) == bool(vmid):
        raise ConfigError("give --node N or --vmid ID (exactly one)")
    if vmid:
        from ... import pve

        found = None
        for name in sorted(inv.proxmox):
            found = found or facts.find_vm(facts.list_vms(pve.client(inv, name)), vmid)
        plan = plan_destroy_vmid(inv, vmid, found, stop=stop, force=force)
    else:
        need_node(inv, node)
        f = facts.probe_vm(inv, node, dry_run=dry_run)
        plan = plan_destroy_vm(
            inv, node, vm=f.vm, reachable=f.reachable, reason=f.reason, host=f.host,
            lock_holders=f.lock_holders, stop=stop,
        )  # fmt: skip
    execute(inv, plan, dry_run=dry_run, json=json, yes=yes)


TASKS = [create_vm, destroy_vm]
