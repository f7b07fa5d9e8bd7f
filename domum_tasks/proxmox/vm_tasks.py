"""Proxmox VM tasks: status, create-vm, snapshot, destroy-vm. Thin: load, probe, plan, execute.

Only invoke and light modules are imported here; proxmoxer, pydantic and rich load inside tasks.
"""

from __future__ import annotations

import json as jsonlib
from typing import TYPE_CHECKING, Any

from invoke import Context

from ..taskutil import DRY_RUN, JSON, NODE, YES, domum_task

if TYPE_CHECKING:
    from ..plan import Plan
    from ..run import StepResult


def _load(node: int) -> Any:
    from .. import inventory
    from ..errors import ConfigError

    if not node:
        raise ConfigError("--node is required (the id of a proxmox-vm node, e.g. 96)")
    return inventory.load()


def _execute(inv: Any, plan: Plan, *, dry_run: bool, json: bool, yes: bool = False) -> None:
    """Dry-run: print the plan. Otherwise say why (notes), run it, and say what was done."""
    from ..plan import describe, step_dict
    from ..taskutil import executor

    run = executor(dry_run=dry_run, json_out=json, inventory=inv)
    if not dry_run and not json:
        for note in plan.notes:  # before any confirmation prompt: they may matter for it
            print(f"{plan.title}: {note}")
    results: list[StepResult] = run.execute(plan, yes=yes)
    if dry_run:
        return
    if json:
        done = [step_dict(r.step, plan.secrets) for r in results]
        report = {"title": plan.title, "changed": bool(done), "steps": done, "notes": plan.notes}
        print(jsonlib.dumps(report, indent=2))
        return
    for r in results:
        print(f"done: {r.step.desc or describe(r.step)}")


@domum_task(help={"json": JSON})
def status(c: Context, json: bool = False) -> None:
    """Show Proxmox hosts and their VMs, marking inventory nodes."""
    from .. import inventory, pve
    from ..console import print_table
    from ..errors import ConfigError, PveError
    from . import facts
    from .plan import status_rows

    inv = inventory.load()
    if not inv.proxmox:
        raise ConfigError("inventory has no proxmox: hosts")
    rows: list[tuple[str, ...]] = []
    down = []
    for name in sorted(inv.proxmox):
        try:
            vms: list[facts.VmInfo] | None = facts.list_vms(pve.client(inv, name))
            reason = ""
        except pve.PveUnavailable as exc:
            vms, reason = None, str(exc.message) + (f"; {exc.hint}" if exc.hint else "")
            down.append(name)
        rows += status_rows(inv, name, vms, reason)
    print_table(
        "Proxmox VMs",
        ("host", "pve node", "vmid", "name", "status", "inventory"),
        rows,
        json_out=json,
    )
    if down:
        raise PveError(f"unreachable Proxmox host(s): {', '.join(down)}")


@domum_task(
    help={
        "node": NODE + "; must be a proxmox-vm node",
        "start": "start the VM once it exists",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def create_vm(
    c: Context, node: int = 0, start: bool = False, dry_run: bool = False, json: bool = False
) -> None:
    """Create a node's Talos VM (and ISO) on Proxmox unless it exists."""
    from . import facts
    from .plan import plan_create_vm, talos_iso, vm_target

    inv = _load(node)
    iso = talos_iso(inv, vm_target(inv, node))
    probed = facts.probe_vm(inv, node, dry_run=dry_run, iso_volid=iso.volid)
    _execute(inv, plan_create_vm(inv, node, probed, start=start), dry_run=dry_run, json=json)


@domum_task(
    help={
        "node": NODE + "; must be a proxmox-vm node",
        "name": "snapshot name: 2-40 characters, letter first, then [A-Za-z0-9_-] "
        "(default: domum-YYYYMMDD-HHMMSS, UTC)",
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

    from . import facts
    from .plan import check_snapname, plan_snapshot, vm_target

    inv = _load(node)
    vm_target(inv, node)
    snapname = check_snapname(name or time.strftime("domum-%Y%m%d-%H%M%S", time.gmtime()))
    probed = facts.probe_vm(inv, node, dry_run=dry_run, snapshots=True)
    plan = plan_snapshot(inv, node, probed, snapname, vmstate=vmstate)
    _execute(inv, plan, dry_run=dry_run, json=json)


@domum_task(
    help={
        "node": NODE + "; must be a proxmox-vm node",
        "stop": "hard-stop the VM first if it is running (otherwise a running VM is refused)",
        "yes": YES,
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def destroy_vm(
    c: Context,
    node: int = 0,
    stop: bool = False,
    yes: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Destroy a node's VM and its disks on Proxmox (needs --yes)."""
    from . import facts
    from .plan import plan_destroy_vm, vm_target

    inv = _load(node)
    vm_target(inv, node)
    probed = facts.probe_vm(inv, node, dry_run=dry_run)
    plan = plan_destroy_vm(inv, node, probed, stop=stop)
    _execute(inv, plan, dry_run=dry_run, json=json, yes=yes)


TASKS = [status, create_vm, snapshot, destroy_vm]
