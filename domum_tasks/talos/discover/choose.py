"""Pure: which inventory node a maintenance-mode machine is, and which disk and MAC to record.

How an operator picks the disk, as rules (each skipped disk is named in the notes):
1. Never a target: read-only disks (a write-protected card, the booted image's loop devices),
   CD-ROMs (the ISO it booted from), empty devices, and disks without a transport (device
   mapper, loop, zram). Talos's own install disk selector excludes the same: it always adds
   `disk.transport != ""`, `!disk.readonly` and `!disk.cdrom`
   (pkg/machinery/config/types/v1alpha1/v1alpha1_provider.go, InstallConfig.DiskMatchExpression).
2. Removable media last: an SD card (transport mmc) or a USB disk only when the machine has no
   internal disk (nvme, sata, scsi, virtio); a mini PC in maintenance mode often runs from the
   very USB stick it would otherwise be installed to.
3. Then NVMe before SATA/SCSI before virtio, SSD before spinning disk, then by device name.
4. A flashed Raspberry Pi is not installed at all (talos/disks.py): its card stays the boot
   disk, and the best internal disk (its NVMe) becomes `ephemeral_disk` for /var and Longhorn.
5. With one candidate disk the device path is stable enough; with several, kernel names can
   swap between boots, so the record is a selector on the serial, else the WWID, else the model
   (whichever is unique among the machine's disks), as Talos's diskSelector matches them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from ..disks import flashed_image
from .facts import Disk, Hardware, Link

if TYPE_CHECKING:
    from ...inventory.model import Inventory

INTERNAL = {"nvme": 0, "sata": 1, "scsi": 1, "virtio": 2}
REMOVABLE = {"mmc": 3, "usb": 4}


@dataclass
class Proposal:
    node_id: int
    how: str  # why this node: "--node", "its MAC ...", "its address ..."
    changes: dict[str, Any] = field(default_factory=dict)  # field -> new value, None = remove
    notes: list[str] = field(default_factory=list)
    disk: Disk | None = None
    link: Link | None = None


def skip_reason(d: Disk) -> str:
    if d.readonly:
        return "read-only"
    if d.cdrom:
        return "a CD-ROM"
    if d.size == 0:
        return "empty"
    if not d.transport:
        return "no transport (loop, device mapper)"
    if d.transport not in INTERNAL and d.transport not in REMOVABLE:
        return f"transport {d.transport!r} is none an operator installs to"
    return ""


def rank(d: Disk) -> tuple[int, bool, str]:
    return ({**INTERNAL, **REMOVABLE}[d.transport], d.rotational, d.dev_path)


def candidates(disks: list[Disk]) -> tuple[list[Disk], list[str]]:
    """Eligible disks, best first, and a note per skipped one."""
    notes = [f"{d.dev_path}: skipped, {why}" for d in disks if (why := skip_reason(d))]
    ok = sorted((d for d in disks if not skip_reason(d)), key=rank)
    return ok, notes


def stable_ref(d: Disk, disks: list[Disk]) -> str | dict[str, str]:
    """The device path when it is the only candidate, else a selector unique among `disks`.
    go-glob treats `*` as a wildcard (Talos's glob()), so a value holding one is not used."""
    if len(disks) <= 1:
        return d.dev_path
    for key in ("serial", "wwid", "model"):
        value = getattr(d, key)
        if value and "*" not in value and [getattr(o, key) for o in disks].count(value) == 1:
            return {key: value}
    return d.dev_path


def pick_link(links: list[Link]) -> tuple[Link | None, list[str]]:
    """The physical NIC that is up (with several, the first by name, and a note)."""
    physical = sorted((x for x in links if x.physical and x.mac), key=lambda x: x.id)
    up = [x for x in physical if x.link_state] or physical
    notes = []
    if len(up) > 1:
        others = ", ".join(f"{x.id} {x.mac}" for x in up[1:])
        notes.append(f"several physical links are up; took {up[0].id}, not {others}")
    return (up[0] if up else None), notes


def find_node(inv: Inventory, at: str, node_id: int | None, macs: list[str]) -> tuple[int, str]:
    by_mac = [i for i, n in inv.nodes.items() if n.mac in macs]
    if node_id is not None:
        node = inv.node(node_id)
        if node.os != "talos":
            raise ConfigError(f"--node {node_id}: {node.hostname} runs {node.os}, not Talos")
        if by_mac and node_id not in by_mac:
            other = inv.nodes[by_mac[0]]
            raise ConfigError(
                f"--node {node_id}: the machine at {at} has the MAC of node {by_mac[0]} "
                f"({other.hostname}, {other.mac}); use --node {by_mac[0]}"
            )
        return node_id, "--node"
    if by_mac:
        found = inv.nodes[by_mac[0]]
        if found.os != "talos":
            raise ConfigError(
                f"--at {at}: the MAC {found.mac} is node {by_mac[0]}'s ({found.hostname}), "
                f"which runs {found.os}: talos.discover reads Talos nodes in maintenance mode"
            )
        return by_mac[0], f"its MAC {found.mac}"
    by_ip = [i for i, n in inv.nodes.items() if str(n.ip) == at]
    if by_ip and inv.nodes[by_ip[0]].os == "talos":
        return by_ip[0], f"its address {at}"
    raise ConfigError(
        f"--at {at}: no Talos node in the inventory has this address or one of its MACs "
        f"({', '.join(macs) or 'none read'}); name it with --node N"
    )


def propose(inv: Inventory, hw: Hardware, node_id: int | None) -> Proposal:
    link, link_notes = pick_link(hw.links)
    macs = [x.mac for x in hw.links if x.physical and x.mac]
    nid, how = find_node(inv, hw.at, node_id, macs)
    node = inv.nodes[nid]
    prop = Proposal(nid, how, link=link, notes=list(link_notes))
    if link is not None and link.mac != node.mac:
        prop.changes["mac"] = link.mac
    ok, skipped = candidates(hw.disks)
    prop.notes += skipped
    internal = [d for d in ok if d.transport in INTERNAL]
    if flashed_image(node):
        for key in ("install_disk", "install_disk_selector"):
            if key in node.model_fields_set:
                prop.changes[key] = None  # no effect on a flashed image (talos/disks.py)
        if not internal:
            prop.notes.append("no internal disk besides the card: /var stays on the card")
            return prop
        prop.disk = internal[0]
        ref = stable_ref(prop.disk, ok)
        if ref != _current(node.ephemeral_disk):
            prop.changes["ephemeral_disk"] = ref
        return prop
    pool = internal or ok
    if not pool:
        prop.notes.append("no disk to install to")
        return prop
    prop.disk = pool[0]
    ref = stable_ref(prop.disk, ok)
    if isinstance(ref, str):
        if ref != node.install_disk or "install_disk" not in node.model_fields_set:
            prop.changes["install_disk"] = ref
        if node.install_disk_selector is not None:
            prop.changes["install_disk_selector"] = None
    else:
        if ref != _current(node.install_disk_selector):
            prop.changes["install_disk_selector"] = ref
        if "install_disk" in node.model_fields_set:
            prop.changes["install_disk"] = None  # the selector decides (talos/disks.py)
    return prop


def _current(value: Any) -> Any:
    """An inventory disk setting in the shape a proposal uses (path or {field: value})."""
    if value is None or isinstance(value, str):
        return value
    return {k: v for k, v in value.model_dump().items() if v}
