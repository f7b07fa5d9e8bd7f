"""Pure planners of the proxmox namespace: inventory + facts -> Plan (no I/O, no invoke Context).

Every call here is a PveCall whose path is relative to /api2/json; worker calls set `wait_task`
so the executor waits for their task to end with exitstatus OK. Parameters are already in PVE's
form (booleans as 1/0), so the plan's JSON is exactly what goes on the wire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError, DomumError, Refused
from ..inventory_model import Inventory, Node, ProxmoxHost, VmSpec
from ..plan import Plan, PveCall
from ..talos import schematic
from .facts import VmFacts, VmInfo

# pve-configid, at most 40 characters (qemu-server's snapshot API).
SNAPNAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{1,39}$")
DEFAULT_ISO_STORAGE = "local"


@dataclass(frozen=True)
class VmTarget:
    """An inventory node that is a Proxmox VM, resolved to its host."""

    node_id: int
    node: Node
    spec: VmSpec
    host_name: str
    host: ProxmoxHost

    @property
    def label(self) -> str:
        return f"VM {self.spec.vmid} ({self.node.hostname}, node {self.node_id})"


def vm_target(inv: Inventory, node_id: int) -> VmTarget:
    """The node's VM spec and Proxmox host; ConfigError if the node is not a Proxmox VM."""
    node = inv.node(node_id)
    vms = ", ".join(str(i) for i, n in sorted(inv.nodes.items()) if n.vm is not None) or "none"
    if node.platform != "proxmox-vm" or node.vm is None:
        raise ConfigError(
            f"--node {node_id}: {node.hostname} runs on {node.platform}, not a proxmox-vm with a vm: "
            f"section; Proxmox VM nodes: {vms}"
        )
    if node.vm.host not in inv.proxmox:
        raise ConfigError(f"nodes.{node_id}.vm.host: {node.vm.host!r} is not a proxmox: host")
    return VmTarget(node_id, node, node.vm, node.vm.host, inv.proxmox[node.vm.host])


# --- the Talos VM ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TalosIso:
    volid: str  # local:iso/talos-v1.13.9-ce4c9805.iso
    storage: str
    filename: str
    url: str


def talos_iso(inv: Inventory, t: VmTarget) -> TalosIso:
    """The Image Factory ISO of the node's schematic and the pinned Talos version."""
    sid = t.node.schematic.id if t.node.schematic and t.node.schematic.id else None
    sid = sid or schematic.schematic_for(inv, t.node).local_id
    version = inv.cluster.talos_version
    storage = t.host.storages.get("iso", DEFAULT_ISO_STORAGE)
    filename = f"talos-{version}-{sid[:8]}.iso"
    url = schematic.image_url(
        inv.cluster.image_factory, sid, version, arch=schematic.arch_of(t.node), suffix="iso"
    )
    return TalosIso(f"{storage}:iso/{filename}", storage, filename, url)


def vm_config(inv: Inventory, t: VmTarget) -> dict[str, object]:
    """POST /nodes/{node}/qemu parameters of a typical Talos VM (see contracts/pve-notes.md)."""
    spec, iso = t.spec, talos_iso(inv, t)
    return {
        "vmid": spec.vmid,
        "name": t.node.hostname,
        "memory": spec.memory_mib,
        "cores": spec.cores,
        "sockets": 1,
        "cpu": "host",  # Talos needs x86-64-v2; "host" passes the real CPU through
        "scsihw": "virtio-scsi-single",
        "scsi0": f"{spec.storage}:{spec.disk_gib},iothread=1,discard=on,ssd=1",
        # The inventory MAC, so DHCP reservations and the node's LinkConfig match.
        "net0": f"virtio={t.node.mac.upper()},bridge={spec.bridge}",
        "agent": "enabled=1",
        "ostype": "l26",
        "ide2": f"{iso.volid},media=cdrom",
        "boot": "order=scsi0;ide2;net0",  # empty disk falls through to the ISO; ';' not ','
        "onboot": 1,
        "serial0": "socket",
        "tags": f"domum;talos;{t.node.role}",
        "description": f"Domum node {t.node_id} ({t.node.role}); managed by inv proxmox.create-vm",
    }


def _unreachable(facts: VmFacts, assumption: str) -> list[str]:
    if facts.reachable:
        return []
    return [f"could not ask Proxmox host {facts.host} ({facts.reason}); {assumption}"]


def _check_ours(t: VmTarget, vm: VmInfo) -> None:
    """The vmid must hold the VM the inventory describes, never someone else's guest."""
    if vm.kind != "qemu" or vm.name != t.node.hostname:
        raise Refused(
            f"vmid {vm.vmid} on {vm.node} holds {vm.kind} {vm.name!r}, not the VM {t.node.hostname!r}",
            hint=f"change nodes.{t.node_id}.vm.vmid or rename/remove that guest",
        )


def _vm_base(t: VmTarget, vm: VmInfo | None) -> str:
    node = vm.node if vm is not None else t.host.node
    return f"/nodes/{node}/qemu/{t.spec.vmid}"


def start_call(t: VmTarget, vm: VmInfo | None = None) -> PveCall:
    return PveCall(
        "POST", f"{_vm_base(t, vm)}/status/start", {}, desc=f"start {t.label}", wait_task=True
    )


def plan_create_vm(inv: Inventory, node_id: int, facts: VmFacts, *, start: bool = False) -> Plan:
    t = vm_target(inv, node_id)
    plan = Plan(f"create {t.label} on {t.host_name}")
    vm = facts.vm
    if vm is not None:
        _check_ours(t, vm)
        plan.note(f"{t.label} already exists on {vm.node} ({vm.status}): not creating it")
        if start and vm.status != "running":
            plan.add(start_call(t, vm))
        return plan
    plan.notes += _unreachable(facts, "planned as for a fresh host: no VM, no Talos ISO yet")
    iso = talos_iso(inv, t)
    if not facts.iso_present:
        plan.add(
            PveCall(
                "POST",
                f"/nodes/{t.host.node}/storage/{iso.storage}/download-url",
                {"url": iso.url, "content": "iso", "filename": iso.filename},
                desc=f"download the Talos {inv.cluster.talos_version} ISO onto {iso.storage}",
                wait_task=True,
            )
        )
        plan.note("the Image Factory publishes no checksum for ISOs: PVE trusts TLS only")
    else:
        plan.note(f"{iso.volid} is already on {t.host_name}")
    plan.add(
        PveCall(
            "POST",
            f"/nodes/{t.host.node}/qemu",
            vm_config(inv, t),
            desc=f"create {t.label}",
            wait_task=True,
        )
    )
    if start:
        plan.add(start_call(t))
    return plan


# --- snapshots and destroy ---------------------------------------------------------------


def check_snapname(name: str) -> str:
    if not SNAPNAME_RE.match(name):
        raise ConfigError(
            f"--name {name!r}: a snapshot name is 2-40 characters, a letter first, then letters, "
            "digits, '-' or '_' (e.g. pre-upgrade)"
        )
    if name.lower() in ("current", "pending"):
        raise ConfigError(f"--name {name!r}: PVE reserves that name; pick another")
    return name


def _absent(t: VmTarget, facts: VmFacts, what: str) -> DomumError:
    return DomumError(
        f"{t.label} does not exist on {facts.host}: {what}",
        hint=f"create it with inv proxmox.create-vm --node {t.node_id}",
    )


def plan_snapshot(
    inv: Inventory, node_id: int, facts: VmFacts, name: str, *, vmstate: bool = False
) -> Plan:
    t = vm_target(inv, node_id)
    check_snapname(name)
    plan = Plan(f"snapshot {t.label} as {name}")
    vm = facts.vm
    if vm is None and facts.reachable:
        raise _absent(t, facts, "nothing to snapshot")
    if vm is not None:
        _check_ours(t, vm)
        if name in facts.snapshots:
            return plan.note(f"{t.label} already has a snapshot named {name!r}: nothing to do")
    plan.notes += _unreachable(facts, f"assumed {t.label} exists without a snapshot {name!r}")
    params: dict[str, object] = {"snapname": name, "description": "taken by inv proxmox.snapshot"}
    if vmstate:
        params["vmstate"] = 1
    plan.add(
        PveCall(
            "POST",
            f"{_vm_base(t, vm)}/snapshot",
            params,
            desc=f"snapshot {t.label}",
            wait_task=True,
        )
    )
    return plan


def plan_destroy_vm(inv: Inventory, node_id: int, facts: VmFacts, *, stop: bool = False) -> Plan:
    t = vm_target(inv, node_id)
    plan = Plan(f"destroy {t.label} on {t.host_name}")
    vm = facts.vm
    if vm is None and facts.reachable:
        return plan.note(f"{t.label} does not exist on {facts.host}: nothing to destroy")
    if vm is not None:
        _check_ours(t, vm)
        if vm.status != "stopped" and not stop:
            raise Refused(f"{t.label} is {vm.status}", hint="pass --stop to stop it first")
    running = vm is None or vm.status != "stopped"
    plan.notes += _unreachable(
        facts, f"assumed {t.label} exists" + (" and is running" if stop else " and is stopped")
    )
    if t.node.role == "controlplane":
        plan.note(
            f"node {node_id} is a control plane: remove its etcd member first "
            f"(talosctl etcd remove-member), or etcd keeps a dead member"
        )
    base = _vm_base(t, vm)
    if stop and running:
        plan.add(
            PveCall(
                "POST",
                f"{base}/status/stop",
                {},
                desc=f"hard-stop {t.label}",
                destructive=True,
                wait_task=True,
            )
        )
    plan.add(
        PveCall(
            "DELETE",
            base,
            {"purge": 1, "destroy-unreferenced-disks": 1},
            desc=f"destroy {t.label} and its disks (scsi0 on {t.spec.storage})",
            destructive=True,
            wait_task=True,
        )
    )
    return plan


# --- status -----------------------------------------------------------------------------


def status_rows(
    inv: Inventory, host_name: str, vms: list[VmInfo] | None, reason: str = ""
) -> list[tuple[str, str, str, str, str, str]]:
    """Rows (host, pve node, vmid, name, status, inventory) for one host; vms None = unreachable."""
    by_vmid = {n.vm.vmid: i for i, n in inv.nodes.items() if n.vm and n.vm.host == host_name}
    host = inv.proxmox[host_name]
    if vms is None:
        return [(host_name, host.node, "-", "-", "down", reason)]
    rows = []
    for vm in vms:
        ours = by_vmid.get(vm.vmid)
        mark = f"node {ours}" if ours is not None else "-"
        if ours is not None and inv.nodes[ours].hostname != vm.name:
            mark += f" (expects {inv.nodes[ours].hostname})"
        status = "template" if vm.template else vm.status
        rows.append((host_name, vm.node, str(vm.vmid), vm.name, status, mark))
    seen = {vm.vmid for vm in vms}
    for vmid, node_id in sorted(by_vmid.items()):
        if vmid not in seen:
            name = inv.nodes[node_id].hostname
            rows.append((host_name, host.node, str(vmid), name, "missing", f"node {node_id}"))
    return rows
