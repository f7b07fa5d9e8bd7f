"""Image Factory schematics, installer images and boot-image URLs (pure: no I/O).

A schematic is what the Image Factory builds a Talos image from. Per node it is:

* Raspberry Pis: the overlay `siderolabs/sbc-raspberrypi`, board profile `rpi_generic` for the
  Pi 3/4 ("models before Pi 5") and `rpi_5` for the Pi 5 (sbc-raspberrypi >= v0.1.8; Talos 1.13's
  pkg/machinery/platforms/sbcs.go lists it from 1.12.3, at community support level). Both
  profiles ship a config.txt without the firmware watchdog, so the overlay option
  `configTxtAppend: dtparam=watchdog=on` turns it on: the WatchdogTimerConfig patch of the Pis
  (genconfig/patches.py) needs the device it names;
* Proxmox VMs: the official extension `siderolabs/qemu-guest-agent`;
* nodes that carry Longhorn volumes (`Node.carries_volumes`): `siderolabs/iscsi-tools` and
  `siderolabs/util-linux-tools` (Longhorn's iSCSI engine and its fstrim/nsenter helpers);
* plus `cluster.extensions` and the node's `schematic.extensions` / `schematic.extra_kernel_args`.

Extensions are de-duplicated and sorted, so the order they are listed in the inventory does not
change the id; kernel arguments keep their order (it matters on a command line).

The factory's id is the sha256 of the schematic's canonical YAML (yaml.v3, 4-space indent,
`overlay` before `customization`, `customization: {}` when empty). `canonical_yaml` reproduces that
byte for byte for the inputs Domum produces (checked against the factory's own test vectors, see
tests/test_talos_schematic.py), so `local_id` is a faithful offline fallback. The factory remains
the authority when reachable: it also rejects unknown extension names.

Image names (Talos >= 1.10 serves platform-specific installers, as talosctl's own default does):

    installer_image("factory.talos.dev", ID, "v1.13.9")
        -> "factory.talos.dev/metal-installer/ID:v1.13.9"
    image_url("https://factory.talos.dev", ID, "v1.13.9", arch="arm64", suffix="raw.xz")
        -> "https://factory.talos.dev/image/ID/v1.13.9/metal-arm64.raw.xz"
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..inventory.model import Inventory, Node

RPI_OVERLAY_IMAGE = "siderolabs/sbc-raspberrypi"
RPI_OVERLAY_NAME = "rpi_generic"  # Pi 3 and Pi 4
RPI5_OVERLAY_NAME = "rpi_5"
PI_OVERLAYS = {"rpi3": RPI_OVERLAY_NAME, "rpi4": RPI_OVERLAY_NAME, "rpi5": RPI5_OVERLAY_NAME}
# Appended to the overlay's config.txt: enables the bcm2835 watchdog (/dev/watchdog0).
PI_WATCHDOG_CONFIG_TXT = "dtparam=watchdog=on"
QEMU_GUEST_AGENT = "siderolabs/qemu-guest-agent"
LONGHORN_EXTENSIONS = ("siderolabs/iscsi-tools", "siderolabs/util-linux-tools")

Arch = Literal["amd64", "arm64"]
# Talos platform of the boot media and installer. All nodes get static addresses from their
# machine-config patches, so `metal` fits Proxmox VMs too; `nocloud` would need a cloud-init drive.
TalosPlatform = Literal["metal", "nocloud"]
PI_SUFFIXES = ("raw.xz", "raw.zst")  # .raw.zst is served since Talos v1.8.0
ISO_SUFFIX = "iso"


@dataclass(frozen=True)
class Schematic:
    """One Image Factory schematic (the subset Domum uses: overlay, extensions, kernel args)."""

    extensions: tuple[str, ...] = ()
    extra_kernel_args: tuple[str, ...] = ()
    overlay_image: str = ""
    overlay_name: str = ""
    overlay_options: tuple[tuple[str, str], ...] = ()  # sorted (key, value): yaml.v3 sorts maps

    def to_dict(self) -> dict[str, object]:
        """The schematic as the factory's API takes it (also valid as a JSON body)."""
        out: dict[str, object] = {}
        if self.overlay_image:
            overlay: dict[str, object] = {"image": self.overlay_image, "name": self.overlay_name}
            if self.overlay_options:
                overlay["options"] = dict(self.overlay_options)
            out["overlay"] = overlay
        custom: dict[str, object] = {}
        if self.extra_kernel_args:
            custom["extraKernelArgs"] = list(self.extra_kernel_args)
        if self.extensions:
            custom["systemExtensions"] = {"officialExtensions": list(self.extensions)}
        out["customization"] = custom
        return out

    def canonical_yaml(self) -> str:
        """The factory's canonical form (go yaml.v3 Marshal of its Schematic struct)."""
        return _emit(self.to_dict(), 0)

    @property
    def local_id(self) -> str:
        """sha256 of the canonical YAML: what the factory answers for the same schematic."""
        return hashlib.sha256(self.canonical_yaml().encode()).hexdigest()


# --- canonical YAML (the small yaml.v3 subset schematics need) ------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_./][A-Za-z0-9_./=,+@-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value: str) -> str:
    if _PLAIN.match(value) and value.lower() not in _RESERVED:
        return value
    return json.dumps(value)  # double-quoted; only reached for unusual kernel args


def _emit(obj: dict[str, object], indent: int) -> str:
    pad = " " * indent
    lines: list[str] = []
    for key, value in obj.items():
        if isinstance(value, dict):
            if not value:
                lines.append(f"{pad}{key}: {{}}\n")
            else:
                lines.append(f"{pad}{key}:\n{_emit(value, indent + 4)}")
        elif isinstance(value, list):
            lines.append(f"{pad}{key}:\n")
            lines += [f"{pad}    - {_scalar(str(v))}\n" for v in value]
        else:
            lines.append(f"{pad}{key}: {_scalar(str(value))}\n")
    return "".join(lines)


# --- per node --------------------------------------------------------------------------------------


def arch_of(node: Node) -> Arch:
    """CPU architecture: Pis are arm64; Proxmox VMs and the mini PCs are amd64."""
    return "arm64" if node.is_pi else "amd64"


def platform_of(node: Node) -> TalosPlatform:
    """Talos platform of the node's boot media and installer (see TalosPlatform)."""
    return "metal"


def schematic_for(inv: Inventory, node: Node) -> Schematic:
    """The node's schematic: platform overlay/extension + cluster + node extensions."""
    extensions = set(inv.cluster.extensions)
    kernel_args: list[str] = []
    if node.schematic is not None:
        extensions.update(node.schematic.extensions)
        kernel_args = list(dict.fromkeys(node.schematic.extra_kernel_args))
    if node.platform == "proxmox-vm":
        extensions.add(QEMU_GUEST_AGENT)
    if node.carries_volumes:
        extensions.update(LONGHORN_EXTENSIONS)
    if not node.is_pi:
        return Schematic(extensions=tuple(sorted(extensions)), extra_kernel_args=tuple(kernel_args))
    return Schematic(
        extensions=tuple(sorted(extensions)),
        extra_kernel_args=tuple(kernel_args),
        overlay_image=RPI_OVERLAY_IMAGE,
        overlay_name=PI_OVERLAYS[node.platform],
        overlay_options=(("configTxtAppend", PI_WATCHDOG_CONFIG_TXT),),
    )


def pi_watchdog_enabled(schematic: Schematic) -> bool:
    """True when the schematic's config.txt turns the Pi firmware watchdog on."""
    return PI_WATCHDOG_CONFIG_TXT in dict(schematic.overlay_options).get("configTxtAppend", "")


def installer_image(
    registry: str, schematic_id: str, talos_version: str, platform: TalosPlatform = "metal"
) -> str:
    """The installer for `talosctl upgrade --image` and `gen config --install-image`.

    Built from the inventory's schematic and pinned version, never from what a node runs now
    (reusing the running image is how new extensions silently never land).
    """
    _check_id(schematic_id)
    return f"{registry.rstrip('/')}/{platform}-installer/{schematic_id}:{talos_version}"


def image_url(
    factory: str,
    schematic_id: str,
    talos_version: str,
    *,
    arch: Arch,
    suffix: str,
    platform: TalosPlatform = "metal",
) -> str:
    """A boot image URL, e.g. suffix "raw.xz"/"raw.zst" (Pi disk image) or "iso".

    `factory` is the inventory's `cluster.image_factory` (e.g. "https://factory.talos.dev").
    A GET may redirect to a CDN; HEAD answers directly with Content-Length.
    """
    _check_id(schematic_id)
    base = factory.rstrip("/")
    return f"{base}/image/{schematic_id}/{talos_version}/{platform}-{arch}.{suffix}"


def node_image_urls(inv: Inventory, node: Node, schematic_id: str) -> dict[str, str]:
    """Boot media for one node: Pis get the raw disk images, the others an ISO.

    Keys are the suffixes ("raw.xz", "raw.zst" or "iso"). `pi.flash` uses this.
    """
    suffixes = PI_SUFFIXES if node.is_pi else (ISO_SUFFIX,)
    return {
        s: image_url(
            inv.cluster.image_factory,
            schematic_id,
            inv.cluster.talos_version,
            arch=arch_of(node),
            suffix=s,
            platform=platform_of(node),
        )
        for s in suffixes
    }


def node_installer_image(inv: Inventory, node: Node, schematic_id: str) -> str:
    """The installer image of one node (inventory registry, schematic id and Talos version)."""
    return installer_image(
        inv.cluster.installer_registry, schematic_id, inv.cluster.talos_version, platform_of(node)
    )


def _check_id(schematic_id: str) -> None:
    if not re.fullmatch(r"[0-9a-f]{64}", schematic_id):
        raise ValueError(f"schematic id must be 64 hex characters, got {schematic_id!r}")
