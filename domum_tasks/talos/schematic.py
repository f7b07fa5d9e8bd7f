"""Image Factory schematics, installer images and boot-image URLs (pure: no I/O).

A schematic is what the Image Factory builds a Talos image from. Per node it is:

* Raspberry Pis: the overlay `siderolabs/sbc-raspberrypi`, board profile `rpi_generic` for the
  Pi 3/4 ("models before Pi 5") and `rpi_5` for the Pi 5 (sbc-raspberrypi >= v0.1.8; Talos 1.13's
  pkg/machinery/platforms/sbcs.go lists it from 1.12.3, at community support level), with no
  overlay options. No `configTxtAppend: dtparam=watchdog=on`: since 2025 the Pi firmware arms
  the watchdog before the kernel starts when it is set, and Pi 4s boot-looped (Sidero added it
  to the overlay and reverted it: siderolabs/sbc-raspberrypi#38/#41, siderolabs/talos#10273).
  A node that wants a watchdog opts in with `watchdog:` in the inventory (a Talos
  WatchdogTimerConfig, armed by Talos after boot; genconfig/patches.py);
* Proxmox VMs: the official extension `siderolabs/qemu-guest-agent`;
* nodes that carry Longhorn volumes (`Node.carries_volumes`): `siderolabs/iscsi-tools` and
  `siderolabs/util-linux-tools` (Longhorn's iSCSI engine and its fstrim/nsenter helpers);
* plus `cluster.extensions` and the node's `schematic.extensions` / `schematic.extra_kernel_args`.

Extensions are de-duplicated and sorted, so the order they are listed in the inventory does not
change the id; kernel arguments keep their order (it matters on a command line).

The factory's id is the sha256 of the schematic's canonical YAML: its `Schematic` struct
(siderolabs/image-factory pkg/schematic/schematic.go: field order, `omitempty`) marshalled by
go-yaml. `factory_document` builds that struct's shape, goyaml.py emits it with go-yaml's
style choices (tests/test_talos_schematic_vectors.py runs the factory's own vectors). The factory
remains the authority: every use of an id registers it first (ops/schematics.py), which also
makes the factory reject unknown extension names.

Image names (Talos >= 1.10 serves platform-specific installers, as talosctl's own default does):

    installer_image("factory.talos.dev", ID, "v1.13.9")
        -> "factory.talos.dev/metal-installer/ID:v1.13.9"
    image_url("https://factory.talos.dev", ID, "v1.13.9", arch="arm64", suffix="raw.xz")
        -> "https://factory.talos.dev/image/ID/v1.13.9/metal-arm64.raw.xz"
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from . import goyaml

if TYPE_CHECKING:
    from ..inventory.model import Inventory, Node

RPI_OVERLAY_IMAGE = "siderolabs/sbc-raspberrypi"
RPI_OVERLAY_NAME = "rpi_generic"  # Pi 3 and Pi 4
RPI5_OVERLAY_NAME = "rpi_5"
PI_OVERLAYS = {"rpi3": RPI_OVERLAY_NAME, "rpi4": RPI_OVERLAY_NAME, "rpi5": RPI5_OVERLAY_NAME}
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
    overlay_options: tuple[tuple[str, str], ...] = ()  # (key, value); go-yaml sorts map keys

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
        """The factory's canonical form (go-yaml Marshal of its Schematic struct)."""
        return goyaml.marshal(factory_document(self.to_dict()))

    @property
    def local_id(self) -> str:
        """sha256 of the canonical YAML: what the factory answers for the same schematic."""
        return hashlib.sha256(self.canonical_yaml().encode()).hexdigest()


# --- the factory's Schematic struct (image-factory v1.5.0 pkg/schematic/schematic.go) ----------

_CUSTOMIZATION = (
    "embeddedMachineConfiguration", "extraKernelArgs", "meta", "systemExtensions",
    "bootloader", "secureboot", "diskImage",
)  # fmt: skip


def _known(data: Mapping[str, Any], where: str, fields: tuple[str, ...]) -> Mapping[str, Any]:
    """The factory decodes with KnownFields(true): an unknown field is its HTTP 400."""
    for key in data:
        if key not in fields:
            raise ValueError(f"{where}: field {key} not found in the factory's schematic")
    return data


def _go_map(value: Any) -> Any:
    """A `map[string]any` value as go-yaml walks it: map keys in keyList order."""
    if isinstance(value, Mapping):
        return {k: _go_map(value[k]) for k in goyaml.sorted_keys(str(k) for k in value)}
    if isinstance(value, list):
        return [_go_map(v) for v in value]
    return value


def factory_document(data: Mapping[str, Any]) -> dict[str, object]:
    """A schematic (parsed YAML/JSON, or `Schematic.to_dict`) in the factory struct's field
    order with `omitempty` applied: what its yaml.Marshal walks. Struct order, not sorted;
    `customization` has no omitempty (so `customization: {}`); empty structs are omitted."""
    top = _known(data, "schematic", ("owner", "overlay", "customization"))
    doc: dict[str, object] = {}
    if top.get("owner"):
        doc["owner"] = str(top["owner"])
    ov = _known(top.get("overlay") or {}, "overlay", ("image", "name", "options"))
    if ov.get("image") or ov.get("name") or ov.get("options"):
        overlay: dict[str, object] = {
            "image": str(ov.get("image") or ""),
            "name": str(ov.get("name") or ""),
        }
        if ov.get("options"):
            overlay["options"] = _go_map(ov["options"])
        doc["overlay"] = overlay
    c = _known(top.get("customization") or {}, "customization", _CUSTOMIZATION)
    out: dict[str, object] = {}
    if c.get("embeddedMachineConfiguration"):
        out["embeddedMachineConfiguration"] = str(c["embeddedMachineConfiguration"])
    if c.get("extraKernelArgs"):
        out["extraKernelArgs"] = [str(a) for a in c["extraKernelArgs"]]
    if c.get("meta"):  # []MetaValue{Key uint8, Value string}: no omitempty inside
        out["meta"] = [
            {"key": int(m.get("key") or 0), "value": str(m.get("value") or "")} for m in c["meta"]
        ]
    ext = _known(c.get("systemExtensions") or {}, "systemExtensions", ("officialExtensions",))
    if ext.get("officialExtensions"):
        out["systemExtensions"] = {
            "officialExtensions": [str(e) for e in ext["officialExtensions"]]
        }
    if c.get("bootloader") not in (None, "", "none"):  # an enum; "none" is its zero value
        out["bootloader"] = str(c["bootloader"])
    sb = _known(
        c.get("secureboot") or {}, "secureboot", ("enrollKeys", "includeWellKnownCertificates")
    )
    secureboot: dict[str, object] = {}
    if sb.get("enrollKeys"):
        secureboot["enrollKeys"] = str(sb["enrollKeys"])
    if sb.get("includeWellKnownCertificates"):
        secureboot["includeWellKnownCertificates"] = True
    if secureboot:
        out["secureboot"] = secureboot
    disk = _known(c.get("diskImage") or {}, "diskImage", ("sectorSize",))
    if disk.get("sectorSize"):
        out["diskImage"] = {"sectorSize": int(disk["sectorSize"])}
    doc["customization"] = out
    return doc


def canonical_yaml_of(data: Mapping[str, Any]) -> str:
    """The factory's canonical YAML of any schematic it accepts (e.g. one POSTed as JSON)."""
    return goyaml.marshal(factory_document(data))


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
    )


def node_schematic_id(inv: Inventory, node: Node) -> str:
    """The id a node uses (installer, image, ISO): its schematic's. An inventory `schematic.id`
    caches the factory's answer; one that differs is stale (or another schematic's), and
    cannot be registered (the factory needs the document, the id is a hash): refused, rather
    than booting a node with extensions the inventory no longer lists."""
    computed = schematic_for(inv, node).local_id
    cached = node.schematic.id if node.schematic is not None else None
    if cached and cached != computed:
        from ..errors import ConfigError

        node_id = next((i for i, n in inv.nodes.items() if n is node), node.hostname)
        raise ConfigError(
            f"nodes.{node_id}.schematic.id: {cached} is not the id of the schematic the "
            f"inventory describes ({computed}); set it to that id or remove it",
            hint=f"`inv talos.schematic --node {node_id} --verbose` shows the schematic",
        )
    return computed


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
