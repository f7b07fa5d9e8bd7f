"""Which disks a Talos node uses, from the inventory (pure): where it boots, what the installer
selects, where the EPHEMERAL volume lives, and so what a full reset wipes.

A Raspberry Pi runs Talos from the image `pi.flash` wrote: Talos never installs from an SBC
image (the image is the installation), and upgrade and reset act on the disk it booted from. So
`install_disk` means nothing on a Talos Pi. A Pi 5 with an NVMe HAT keeps booting from its card
and puts the EPHEMERAL volume (/var: containerd, logs, etcd, /var/lib/longhorn) on the NVMe with a
`VolumeConfig` named EPHEMERAL (`ephemeral_disk` in the inventory).

Why EPHEMERAL and not a `UserVolumeConfig` for Longhorn alone (the issue's option b names it):
a user volume mounts at /var/mnt/<name>, so Longhorn would need a per-node data path (node
labels, annotations and a changed chart setting in cluster/), while containerd and the logs stayed
on the SD card, which wears out first. EPHEMERAL on the NVMe moves all of /var and leaves
Longhorn's path (/var/lib/longhorn, the kubelet mount genconfig writes) as it is. Talos reads the
EPHEMERAL disk selector from that document, default the system disk (internal/app/machined/pkg/
controllers/block/internal/volumes/volumeconfig/system_volumes.go, GetEphemeralVolumeTransformer),
and provisions EPHEMERAL only once a machine config exists, so a freshly flashed card gets it on
the NVMe from the first `talos.apply --insecure`. Why not option (a), flashing the NVMe: the Pi 5
EEPROM's BOOT_ORDER and the NVMe HAT's PCIe boot vary per board; the card stays the boot medium.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..inventory.model import DiskSelector, Node

# Talos's own SBC guides generate Pi configs with `--install-disk /dev/mmcblk0`; the value has no
# effect on a flashed image, but `talosctl validate --mode metal` wants an install disk.
SBC_BOOT_DISK = "/dev/mmcblk0"
SELECTOR_FIELDS = ("serial", "wwid", "model")


def flashed_image(node: Node) -> bool:
    """A Talos node that runs the image flashed to its card (every Talos Pi)."""
    return node.os == "talos" and node.is_pi


def selector_fields(sel: DiskSelector) -> dict[str, str]:
    return {f: v for f in SELECTOR_FIELDS if (v := getattr(sel, f))}


def install_section(node: Node) -> dict[str, Any]:
    """`machine.install` of the node's patch. A selector wins over `disk` when Talos installs
    (v1alpha1_sequencer_tasks.go, Install: the match expression first, then Disk())."""
    if flashed_image(node):
        explicit = "install_disk" in node.model_fields_set
        return {"disk": node.install_disk if explicit else SBC_BOOT_DISK}
    if node.install_disk_selector is not None:
        return {"diskSelector": selector_fields(node.install_disk_selector)}
    return {"disk": node.install_disk}


def cel_string(value: str) -> str:
    """A CEL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ephemeral_match(sel: str | DiskSelector) -> str:
    """The CEL disk match of the EPHEMERAL VolumeConfig. `glob()` and `system_disk` are what
    Talos's DiskLocator environment offers (pkg/machinery/cel/celenv/celenv.go, DiskLocator);
    `!system_disk` keeps /var off the boot card even if the selector were too wide."""
    if isinstance(sel, str):
        return f"!system_disk && disk.dev_path == {cel_string(sel)}"
    globs = [f"glob({cel_string(v)}, disk.{f})" for f, v in selector_fields(sel).items()]
    return " && ".join(["!system_disk", *globs])


def describe(sel: str | DiskSelector) -> str:
    if isinstance(sel, str):
        return sel
    return "the disk with " + ", ".join(f"{f} {v}" for f, v in selector_fields(sel).items())


def ephemeral_volume_doc(node: Node) -> dict[str, Any] | None:
    """The VolumeConfig that moves EPHEMERAL to `ephemeral_disk`, or None."""
    if node.ephemeral_disk is None or node.os != "talos":
        return None
    return {
        "apiVersion": "v1alpha1",
        "kind": "VolumeConfig",
        "name": "EPHEMERAL",
        "provisioning": {"diskSelector": {"match": ephemeral_match(node.ephemeral_disk)}},
    }


def boot_disk(node: Node) -> str:
    """The disk the node boots Talos from, in words for a plan note."""
    if flashed_image(node):
        disk = install_section(node)["disk"]
        return f"{disk} (the card or USB disk its image was flashed to)"
    if node.install_disk_selector is not None:
        return describe(node.install_disk_selector)
    return node.install_disk


def full_wipe_disks(node: Node) -> list[str]:
    """What `talosctl reset` (wipe-mode all) wipes: the system disk and every disk that holds
    STATE or EPHEMERAL, whole (pkg/machinery/resources/block/block.go, GetSystemDiskPaths)."""
    disks = [boot_disk(node)]
    if node.ephemeral_disk is not None:
        disks.append(f"{describe(node.ephemeral_disk)} (EPHEMERAL)")
    return disks
