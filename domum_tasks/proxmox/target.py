"""Inventory guests on Proxmox (nodes' VMs and `containers:`), and the VM Talos's guide asks for.

Pure: inventory in, desired config out. The settings follow the Talos v1.13 Proxmox guide
(see the README's Proxmox section for each setting and its reason).

A guest target carries its kind (`qemu` or `lxc`): the power, snapshot, vzdump and restore
planners build `/nodes/{node}/{kind}/{vmid}/...` from it and share one code path. Users name a
guest with `--node`: a node id (96) for a node's VM, or a container's inventory name (unifi).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError, Refused
from ..inventory.containers import hostname_of
from ..inventory.model import ContainerSpec, Inventory, Node, ProxmoxHost, VmSpec
from ..talos import schematic
from .facts import VmInfo

DEFAULT_ISO_STORAGE = "local"


@dataclass(frozen=True)
class VmTarget:
    """An inventory node that is a Proxmox VM, resolved to its host."""

    node_id: int
    node: Node
    spec: VmSpec
    host_name: str
    host: ProxmoxHost

    kind: Literal["qemu"] = "qemu"

    @property
    def label(self) -> str:
        return f"VM {self.spec.vmid} ({self.node.hostname}, node {self.node_id})"

    @property
    def vmid(self) -> int:
        return self.spec.vmid

    @property
    def name(self) -> str:
        """The name PVE lists for the guest."""
        return self.node.hostname

    @property
    def ref(self) -> str:
        """What users pass as --node."""
        return str(self.node_id)

    @property
    def vmid_field(self) -> str:
        return f"nodes.{self.node_id}.vm.vmid"


@dataclass(frozen=True)
class CtTarget:
    """An inventory container, resolved to its host."""

    ct_name: str  # its key under containers:
    spec: ContainerSpec
    host_name: str
    host: ProxmoxHost
    kind: Literal["lxc"] = "lxc"

    @property
    def vmid(self) -> int:
        return self.spec.vmid

    @property
    def name(self) -> str:
        return hostname_of(self.ct_name, self.spec)

    @property
    def ref(self) -> str:
        return self.ct_name

    @property
    def label(self) -> str:
        return f"CT {self.spec.vmid} ({self.ct_name})"

    @property
    def vmid_field(self) -> str:
        return f"containers.{self.ct_name}.vmid"


Guest = VmTarget | CtTarget


def vm_node_ids(inv: Inventory) -> list[int]:
    """Ids of the inventory's Proxmox VM nodes, sorted."""
    return [i for i, n in sorted(inv.nodes.items()) if n.platform == "proxmox-vm" and n.vm]


def vm_target(inv: Inventory, node_id: int) -> VmTarget:
    """The node's VM spec and Proxmox host; ConfigError if the node is not a Proxmox VM."""
    node = inv.node(node_id)
    vms = ", ".join(str(i) for i in vm_node_ids(inv)) or "none"
    if node.platform != "proxmox-vm" or node.vm is None:
        raise ConfigError(
            f"--node {node_id}: {node.hostname} runs on {node.platform}, not a proxmox-vm with a vm: "
            f"section; Proxmox VM nodes: {vms}"
        )
    if node.vm.host not in inv.proxmox:
        valid = ", ".join(sorted(inv.proxmox)) or "none defined"
        raise ConfigError(
            f"nodes.{node_id}.vm.host: {node.vm.host!r} is not a proxmox: host; valid: {valid}"
        )
    return VmTarget(node_id, node, node.vm, node.vm.host, inv.proxmox[node.vm.host])


def guest_refs(inv: Inventory) -> list[str]:
    """What --node accepts: the VM nodes' ids, then the containers' names."""
    return [str(i) for i in vm_node_ids(inv)] + sorted(inv.containers)


def _choices(inv: Inventory) -> str:
    vms = ", ".join(str(i) for i in vm_node_ids(inv)) or "none"
    cts = ", ".join(sorted(inv.containers)) or "none"
    return f"Proxmox VM nodes: {vms}; containers: {cts}"


def guest_target(inv: Inventory, ref: int | str) -> Guest:
    """--node N: a node id names that node's VM, a name an inventory container."""
    text = str(ref).strip()
    if text.isdigit():
        if int(text) not in inv.nodes:
            raise ConfigError(f"--node {text}: no node with that id; {_choices(inv)}")
        return vm_target(inv, int(text))
    if text not in inv.containers:
        raise ConfigError(f"--node {text!r}: no node id or container of that name; {_choices(inv)}")
    spec = inv.containers[text]
    if spec.host not in inv.proxmox:
        valid = ", ".join(sorted(inv.proxmox)) or "none defined"
        raise ConfigError(
            f"containers.{text}.host: {spec.host!r} is not a proxmox: host; valid: {valid}"
        )
    return CtTarget(text, spec, spec.host, inv.proxmox[spec.host])


def guest_ids(inv: Inventory, node: int | str, all_guests: bool) -> list[str]:
    """--node N or --all (every VM node and container), exactly one of them."""
    if bool(node) == all_guests:
        raise ConfigError(
            f"give --node N or --all (not {'both' if node else 'neither'}); {_choices(inv)}"
        )
    return guest_refs(inv) if all_guests else [str(node)]


def node_ids(inv: Inventory, node: int, all_vms: bool) -> list[int]:
    """--node N or --all, exactly one of them."""
    if bool(node) == all_vms:
        ids = ", ".join(str(i) for i in vm_node_ids(inv)) or "none"
        raise ConfigError(
            f"give --node N or --all (not {'both' if node else 'neither'}); Proxmox VM nodes: {ids}"
        )
    return vm_node_ids(inv) if all_vms else [node]


# --- the Talos VM ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TalosIso:
    volid: str  # local:iso/talos-v1.13.9-ce4c9805.iso
    storage: str
    filename: str
    url: str
    sha256: str | None = None


def talos_iso(inv: Inventory, t: VmTarget) -> TalosIso:
    """The Image Factory ISO of the node's schematic and the pinned Talos version."""
    sid = schematic.node_schematic_id(inv, t.node)  # registered first: vm/tasks.py
    version = inv.cluster.talos_version
    storage = t.host.storages.get("iso", DEFAULT_ISO_STORAGE)
    filename = f"talos-{version}-{sid[:8]}.iso"
    url = schematic.image_url(
        inv.cluster.image_factory, sid, version, arch=schematic.arch_of(t.node), suffix="iso"
    )
    return TalosIso(f"{storage}:iso/{filename}", storage, filename, url, t.spec.iso_sha256)


def net0(t: VmTarget) -> str:
    # The inventory MAC, so DHCP reservations and the node's LinkConfig match.
    value = f"virtio={t.node.mac.upper()},bridge={t.spec.bridge}"
    return value + (f",tag={t.spec.vlan}" if t.spec.vlan else "")


def vm_config(inv: Inventory, t: VmTarget) -> dict[str, object]:
    """POST /nodes/{node}/qemu parameters of a Talos VM, per Talos's Proxmox guide (v1.13)."""
    spec, iso = t.spec, talos_iso(inv, t)
    return {
        "vmid": spec.vmid,
        "name": t.node.hostname,
        "memory": spec.memory_mib,
        "balloon": 0,  # the guide: no ballooning (Talos has no balloon driver use, no swap)
        "cores": spec.cores,
        "sockets": 1,
        "cpu": "host",  # Talos needs x86-64-v2; "host" passes the real CPU through
        # The guide's baseline: UEFI (OVMF) with a 4 MiB EFI vars disk, keys not pre-enrolled
        # (Microsoft's keys would refuse Talos's boot loader), and the q35 machine.
        "bios": "ovmf",
        "efidisk0": f"{spec.storage}:1,efitype=4m,pre-enrolled-keys=0",  # PVE sizes it itself
        "machine": "q35",
        # The guide: not VirtIO SCSI single (bootstrap hangs, siderolabs/talos#11173).
        "scsihw": "virtio-scsi-pci",
        "scsi0": f"{spec.storage}:{spec.disk_gib},cache=writethrough,discard=on,ssd=1",
        "net0": net0(t),
        "agent": "enabled=1",  # the schematic carries siderolabs/qemu-guest-agent
        "ostype": "l26",
        "ide2": f"{iso.volid},media=cdrom",
        "boot": "order=scsi0;ide2;net0",  # empty disk falls through to the ISO; ';' not ','
        "onboot": 1,
        "serial0": "socket",
        "tags": f"domum;talos;{t.node.role}",
        "description": f"Domum node {t.node_id} ({t.node.role}); managed by inv proxmox.create-vm",
    }


def check_ours(t: Guest, vm: VmInfo) -> None:
    """The vmid must hold the guest the inventory describes, never someone else's guest."""
    if vm.kind != t.kind or vm.name != t.name:
        what = "VM" if t.kind == "qemu" else "container"
        raise Refused(
            f"vmid {vm.vmid} on {vm.node} holds {vm.kind} {vm.name!r}, not the {what} {t.name!r}",
            hint=f"change {t.vmid_field} or rename/remove that guest",
        )


def vm_base(t: Guest, vm: VmInfo | None) -> str:
    """/nodes/{node}/{qemu|lxc}/{vmid}: where PVE says the guest is (it may have migrated)."""
    node = vm.node if vm is not None else t.host.node
    return f"/nodes/{node}/{t.kind}/{t.vmid}"


def unreachable_note(host: str, reachable: bool, reason: str, assumption: str) -> list[str]:
    if reachable:
        return []
    return [f"could not ask Proxmox host {host} ({reason}); {assumption}"]


def check_unlocked(t: Guest, vm: VmInfo, holders: list[str]) -> None:
    """A guest with a PVE lock (backup, snapshot, migrate, ...) refuses writes: say who holds it."""
    if not vm.lock:
        return
    from ..errors import LockHeld

    held = f"; running: {', '.join(holders)}" if holders else "; no task of it is running"
    raise LockHeld(
        f"{t.label} is locked ({vm.lock}){held}",
        hint="wait for that task, or clear a stale lock on the host with "
        f"`{'qm' if t.kind == 'qemu' else 'pct'} unlock {t.vmid}` once you are sure nothing runs",
    )
