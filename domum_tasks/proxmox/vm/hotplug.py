"""How qemu-server applies one config change to a running VM: the drift table. Pure.

Read from proxmox/qemu-server 9.2.6 (commit e6352be6). `update_vm_api` (src/PVE/API2/Qemu.pm)
writes every change to the config's [PENDING] section first, then calls, for a running VM,
`vmconfig_hotplug_pending` (src/PVE/QemuServer.pm) on the keys it changed: what that applies
leaves [PENDING] at once, the rest waits for the next start. A stopped VM takes everything
(`vmconfig_apply_pending`). The VM's own `hotplug` option decides several rows; unset it is
`network,disk,usb` ("1" too, "0" none: `parse_hotplug_features`).

| field                          | running VM                                    | source (QemuServer.pm)       |
|--------------------------------|-----------------------------------------------|------------------------------|
| name, description, onboot, tags| live                                          | $fast_plug_option            |
| memory                         | live with `memory` hotplug (and numa: 1),     | vmconfig_hotplug_pending;    |
|                                | else pending                                  | Memory.pm qemu_memory_hotplug|
| balloon                        | pending if the balloon device turns on or off | vmconfig_hotplug_pending     |
|                                | (0 <-> other/unset), else live                |                              |
| net0 model or MAC              | live with `network` hotplug: the NIC is       | vmconfig_update_net          |
|                                | unplugged and plugged again (link lost now);  |                              |
|                                | pending without it                            |                              |
| net0 bridge or VLAN tag        | live, whatever `hotplug` says: the tap is     | vmconfig_update_net          |
|                                | moved, the guest's link set down and up       |                              |
| net0 missing                   | live with `network` hotplug, else pending     | vmconfig_update_net          |
| scsi0 cache/discard/ssd/iothread| pending ("skip non hotpluggable value")      | vmconfig_update_disk         |
| scsi0 grow                     | live (PUT resize, block_resize)               | API2/Qemu.pm resize_vm       |
| ide2, another ISO              | live (change_medium), whatever `hotplug` says | vmconfig_update_disk (cdrom) |
| ide2 missing                   | pending: ide/sata drives are never hot-plugged| vmconfig_update_disk (end)   |
| ide2 disk <-> cdrom            | PVE fails "unable to change media type"       | vmconfig_update_disk         |
| efidisk0                       | pending (always skipped)                      | vmconfig_hotplug_pending     |
| agent                          | pending unless only fstrim_cloned_disks moves | vmconfig_update_agent        |
| cores, sockets, cpu, scsihw,   | pending (no branch: "skip non-hot-pluggable   | vmconfig_hotplug_pending     |
| ostype, boot, serial0, bios,   | options"); bios/machine/efidisk0 take effect  |                              |
| machine                        | only when QEMU starts again (stop/start)      |                              |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DriftClass = Literal["live", "pending", "needs-stop", "destroys-data"]

FAST_PLUG = ("name", "description", "onboot", "tags")  # QemuServer.pm $fast_plug_option
DEFAULT_FEATURES = frozenset({"network", "disk", "usb"})  # hotplug's schema default


@dataclass(frozen=True)
class Hotplug:
    """The running VM's `hotplug` features and whether NUMA is on (memory hotplug needs it)."""

    features: frozenset[str] = DEFAULT_FEATURES
    numa: bool = False

    @classmethod
    def of(cls, hotplug: str | None, numa: str | None) -> Hotplug:
        return cls(parse_features(hotplug), (numa or "0").strip() in ("1", "on", "yes", "true"))

    @property
    def memory(self) -> bool:
        return "memory" in self.features and self.numa


def parse_features(text: str | None) -> frozenset[str]:
    """parse_hotplug_features: unset or "1" is the default, "0" disables hotplug."""
    value = (text or "1").strip()
    if value == "0":
        return frozenset()
    if value == "1":
        return DEFAULT_FEATURES
    return frozenset(f for f in re.split(r"[\s,;]+", value) if f)


@dataclass(frozen=True)
class Applies:
    cls: DriftClass
    why: str
    disruptive: bool = False  # applied at once, and the guest feels it (the NIC goes away)


PENDING = Applies("pending", "PVE queues it until the VM restarts")


def memory(hp: Hotplug) -> Applies:
    if hp.memory:
        return Applies("live", "memory hotplug is on: PVE plugs or unplugs DIMMs now")
    return Applies("pending", "no memory hotplug on this VM: waits for a restart")


def balloon(have: str | None, want: str) -> Applies:
    def on(v: str | None) -> bool:
        return v is None or v.strip() != "0"

    if on(have) != on(want):
        return Applies("pending", "the balloon device cannot be added or removed live")
    return Applies("live", "a new balloon target applies at once")


@dataclass(frozen=True)
class NicFields:
    model: str
    mac: str
    bridge: str
    tag: str


def nic(have: NicFields | None, want: NicFields, hp: Hotplug) -> Applies:
    """vmconfig_update_net: a new model/MAC (or NIC) is a device re-plug, needing `network`
    hotplug; a bridge or VLAN change moves the tap without it."""
    net = "network" in hp.features
    if have is None:
        if net:
            return Applies("live", "PVE plugs the missing NIC in now")
        return Applies("pending", "no network hotplug: the NIC appears at the next start")
    if (have.model, have.mac) != (want.model, want.mac) or not (have.bridge and want.bridge):
        if net:
            return Applies(
                "live",
                "PVE unplugs the NIC and plugs the new one in at once: the guest loses its "
                "network now",
                disruptive=True,
            )
        return Applies("pending", "no network hotplug: the new NIC waits for a restart")
    return Applies(
        "live",
        "PVE moves the NIC to the new bridge/VLAN now (the guest sees its link go down and up)",
        disruptive=True,
    )


def cdrom(have_media: str | None, want_media: str | None, present: bool) -> Applies:
    if not present:
        return Applies("pending", "PVE never hot-plugs an IDE drive: it appears at the next start")
    if (have_media or "disk") != (want_media or "disk"):
        return Applies("needs-stop", "PVE cannot change a drive's media type on a running VM")
    return Applies("live", "PVE changes the CD-ROM's medium at once")


def agent(have: str | None) -> Applies:
    # vmconfig_update_agent: only fstrim_cloned_disks is live; Domum asks for enabled= only.
    if not have:
        return Applies("pending", "the agent device appears at the next start")
    return Applies("pending", "a changed agent setting waits for a restart")


def cold(key: str) -> Applies:
    """Firmware, machine and EFI disk: read by QEMU at start only."""
    return Applies("pending", f"{key} takes effect when the VM is next started (stop/start)")
