"""Planner of create-vm: the ISO, the VM, and what to do about drift. Pure (facts in, Plan out).

A VM that exists is compared field by field (drift.py, classes from qemu-server: hotplug.py).
Without --apply-drift nothing is written and the drift is reported; with it, live and pending
changes go out in one config call (plus a resize to grow the disk), a NIC change PVE applies to
the running guest at once in its own destructive step (it cuts the network: --yes), needs-stop
ones only while the VM is stopped, and destroys-data ones (and a switch to OVMF, which the
installed system would not boot) are refused unless --force, which recreates the VM
(destructive: confirmation or --yes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...inventory.model import Inventory
from ...plan import Plan, PveCall
from ..facts import VmFacts
from ..target import (
    VmTarget,
    check_ours,
    check_unlocked,
    talos_iso,
    unreachable_note,
    vm_base,
    vm_config,
    vm_target,
)
from .drift import (
    FieldDrift,
    applied_value,
    compare,
    disk_opts,
    memory_hotplug,
    parse_disk,
    recreate_only,
)


@dataclass
class CreatePlan:
    plan: Plan
    drift: list[FieldDrift] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # drift --apply-drift will not apply


def start_call(t: VmTarget, base: str) -> PveCall:
    return PveCall("POST", f"{base}/status/start", {}, desc=f"start {t.label}", wait_task=True)


def iso_call(inv: Inventory, t: VmTarget) -> PveCall:
    iso = talos_iso(inv, t)
    params: dict[str, object] = {"url": iso.url, "content": "iso", "filename": iso.filename}
    if iso.sha256:
        params |= {"checksum": iso.sha256, "checksum-algorithm": "sha256"}
    return PveCall(
        "POST",
        f"/nodes/{t.host.node}/storage/{iso.storage}/download-url",
        params,
        desc=f"download the Talos {inv.cluster.talos_version} ISO onto {iso.storage}",
        wait_task=True,
    )


def _planned(plan: Plan, call: PveCall) -> bool:
    return any(isinstance(s, PveCall) and s.to_dict() == call.to_dict() for s in plan.steps)


def _fresh(inv: Inventory, t: VmTarget, facts: VmFacts, plan: Plan, *, start: bool) -> None:
    iso = talos_iso(inv, t)
    if facts.iso_present:
        plan.note(f"{iso.volid} is already on {t.host_name}: not downloading it")
    elif not _planned(plan, iso_call(inv, t)):  # one download for VMs sharing an ISO
        plan.add(iso_call(inv, t))
        if not iso.sha256:
            plan.note(
                f"no nodes.{t.node_id}.vm.iso_sha256: the Image Factory publishes no ISO "
                "checksum, so PVE checks only TLS"
            )
    plan.add(
        PveCall(
            "POST", f"/nodes/{t.host.node}/qemu", vm_config(inv, t),
            desc=f"create {t.label}", wait_task=True,
        )
    )  # fmt: skip
    if start:
        plan.add(start_call(t, vm_base(t, None)))


def plan_create_vm(
    inv: Inventory,
    node_id: int,
    facts: VmFacts,
    *,
    start: bool = False,
    apply_drift: bool = False,
    force: bool = False,
    plan: Plan | None = None,
) -> CreatePlan:
    """Steps for one node's VM, appended to `plan` (one plan for --all, so one ISO download)."""
    t = vm_target(inv, node_id)
    plan = plan if plan is not None else Plan(f"create {t.label} on {t.host_name}")
    out = CreatePlan(plan)
    vm = facts.vm
    if vm is None:
        plan.notes += unreachable_note(
            facts.host, facts.reachable, facts.reason,
            "planned as for a fresh host: no VM, no Talos ISO yet",
        )  # fmt: skip
        _fresh(inv, t, facts, plan, start=start)
        return out
    check_ours(t, vm)
    if apply_drift or (start and vm.status != "running"):
        check_unlocked(t, vm, facts.lock_holders)
    running = vm.status == "running"
    base = vm_base(t, vm)
    if facts.config is None:  # not probed: say so rather than claim "no drift"
        plan.note(f"{t.label} exists on {vm.node} ({vm.status}); its config was not read")
        drifts: list[FieldDrift] = []
    else:
        drifts, queued = compare(vm_config(inv, t), facts.config, running=running)
        plan.notes += [f"{t.label}: {q}" for q in queued]
        if memory_hotplug(facts.config):
            plan.note(
                f"{t.label}: its hotplug option lists memory; Talos's Proxmox guide says not to "
                "(Talos then does not see all its memory): remove it in the VM's Options"
            )
    out.drift = drifts
    if not drifts:
        if facts.config is not None:
            plan.note(
                f"{t.label} exists on {vm.node} ({vm.status}) and matches the inventory: "
                "nothing to write"
            )
    elif not apply_drift:
        plan.note(
            f"{t.label} differs from the inventory in {len(drifts)} field(s): "
            + ", ".join(f"{d.key} ({d.cls})" for d in drifts)
            + "; not changed (pass --apply-drift)"
        )
    else:
        _apply(inv, t, facts, drifts, out, base=base, running=running, force=force)
    if start and not running:
        plan.add(start_call(t, base))
    return out


def _apply(
    inv: Inventory,
    t: VmTarget,
    facts: VmFacts,
    drifts: list[FieldDrift],
    out: CreatePlan,
    *,
    base: str,
    running: bool,
    force: bool,
) -> None:
    plan = out.plan
    doomed = [d for d in drifts if d.cls == "destroys-data" or recreate_only(d)]
    if doomed and force:
        if running:
            out.refused += [f"{d.key}: {d.why}; stop the VM first" for d in doomed]
            return
        plan.add(
            PveCall(
                "DELETE", base, {"purge": 1, "destroy-unreferenced-disks": 1},
                desc=f"destroy {t.label} to recreate it ({', '.join(d.key for d in doomed)}): "
                "its disk is lost", destructive=True, wait_task=True,
            )
        )  # fmt: skip
        _fresh(inv, t, VmFacts(facts.host, iso_present=facts.iso_present), plan, start=False)
        return
    out.refused += [f"{d.key}: {d.why} (pass --force to recreate the VM)" for d in doomed]
    stuck = [d for d in drifts if d.cls == "needs-stop"]
    out.refused += [f"{d.key}: {d.why} (inv proxmox.shutdown --node {t.node_id})" for d in stuck]
    changes = [d for d in drifts if d.cls in ("live", "pending") and d not in doomed]
    params: dict[str, object] = {}
    for d in changes:
        if d.key == "scsi0" and d.have is not None:
            h, w = parse_disk(d.have), parse_disk(d.want)
            if h.size_gib is not None and w.size_gib is not None and w.size_gib > h.size_gib:
                plan.add(
                    PveCall(
                        "PUT", f"{base}/resize", {"disk": "scsi0", "size": f"{w.size_gib:g}G"},
                        desc=f"grow {t.label}'s disk to {w.size_gib:g}G", wait_task=True,
                    )
                )  # fmt: skip
            if disk_opts(h) == disk_opts(w):
                continue  # only the size differed
        if not d.disruptive:
            params[d.key] = applied_value(d.key, d.have, d.want)
    if params:
        pending = [d.key for d in changes if d.cls == "pending" and d.key in params]
        plan.add(
            PveCall(
                "POST", f"{base}/config", params,
                desc=f"update {t.label}: {', '.join(params)}"
                + (f" ({', '.join(pending)} after the next restart)" if pending else ""),
                wait_task=True,
            )
        )  # fmt: skip
        if pending:
            plan.note(
                f"{t.label}: {', '.join(pending)} apply at the next restart "
                f"(inv proxmox.reboot --node {t.node_id})"
            )
    for d in changes:
        if d.disruptive:
            _disrupt(t, d, plan, base=base)


def _disrupt(t: VmTarget, d: FieldDrift, plan: Plan, *, base: str) -> None:
    """A NIC change PVE applies to the running guest at once (vmconfig_update_net): its own
    step, destructive, so the run asks for --yes and says what the guest loses."""
    role = t.node.role
    cut = (
        " (a control plane node: its API server and etcd member drop off)"
        if role == "controlplane"
        else ""
    )
    plan.add(
        PveCall(
            "POST", f"{base}/config", {d.key: applied_value(d.key, d.have, d.want)},
            desc=f"change {t.label}'s {d.key} while it runs: {d.why}{cut}",
            destructive=True, wait_task=True,
        )
    )  # fmt: skip
    plan.note(
        f"{t.label}: {d.key} goes to the running VM at once and the node loses its network "
        f"now{cut}; stop it first (inv proxmox.shutdown --node {t.node_id}) to change it cold"
    )
