"""Drift between an existing VM and the inventory, field by field, each with how it would apply.

Pure. The VM's side is GET .../pending (the running value and what the next start uses), so a
change PVE has already queued is reported as waiting for a restart, not as drift again. Values
are compared by meaning, not text: PVE rewrites what it stores (drive options sorted and
`size=` added, `virtio=MAC` first, tags sorted and lower-cased, memory as a string), and
comparing strings is how other tools report drift that is not there.

Classes, for a running VM, as qemu-server applies each field (the table and its sources are in
hotplug.py):
  live           PVE applies it at once (name, tags, another ISO, bridge/VLAN, a NIC re-plug,
                 disk growth, memory with memory hotplug); `disruptive` when the guest loses
                 its network now
  pending        PVE queues it until the VM restarts (CPU, memory, balloon on/off, disk
                 options, a missing ide2, bios, machine, efidisk0, ...)
  needs-stop     PVE refuses it on a running VM (a drive's media type)
  destroys-data  cannot be done in place without losing the disk (shrink, another storage)
For a stopped VM every change but destroys-data applies at once, so it is classed live.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..facts import ConfigValue
from . import hotplug
from .hotplug import DriftClass, Hotplug

INT_KEYS = ("cores", "sockets", "onboot", "balloon")
DEFAULTS = {"sockets": "1", "onboot": "0", "bios": "seabios"}  # PVE's value when key is absent
NET_MODELS = ("virtio", "e1000", "e1000e", "rtl8139", "vmxnet3")
SIZE_UNITS = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}
DISK_OPTIONS = ("discard", "ssd", "iothread", "cache")  # compared; others (backup=) are the user's
EFI_DEFAULTS = {"efitype": "2m", "pre-enrolled-keys": "0"}  # the efidisk0 schema's defaults
BIOS_BOOT = (
    "Talos installed under SeaBIOS boots GRUB from its BIOS partition and has no EFI loader "
    "(Talos boot loader docs): the VM would not boot it under OVMF"
)


@dataclass(frozen=True)
class FieldDrift:
    key: str
    have: str | None
    want: str
    cls: DriftClass
    why: str
    disruptive: bool = False  # applied at once and the guest loses its network now


def split_props(text: str | None) -> tuple[str, dict[str, str]]:
    """'local-lvm:vm-1-disk-0,discard=on,size=40G' -> ('local-lvm:vm-1-disk-0', {...})."""
    first, props = "", {}
    for i, part in enumerate((text or "").split(",")):
        key, eq, value = part.partition("=")
        if i == 0 and not eq:
            first = part
        elif eq:
            props[key.strip()] = value.strip()
    return first, props


def size_gib(text: str | None) -> float | None:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT])?", (text or "").strip())
    if not found:
        return None
    return float(found.group(1)) * SIZE_UNITS[found.group(2) or "G"]


@dataclass(frozen=True)
class Disk:
    storage: str
    volume: str
    size_gib: float | None  # None: a size-only spec like "local-lvm:40" gives it in the volume
    options: dict[str, str]


def parse_disk(text: str | None) -> Disk:
    volume, props = split_props(text)
    storage, _, name = volume.partition(":")
    size = size_gib(props.pop("size", None))
    if size is None and re.fullmatch(r"\d+(\.\d+)?", name):  # "local-lvm:40": allocate 40 GiB
        size = float(name)
    return Disk(storage, volume, size, props)


@dataclass(frozen=True)
class Nic:
    model: str
    mac: str
    bridge: str
    tag: str


def parse_nic(text: str | None) -> Nic:
    model = mac = ""
    rest: dict[str, str] = {}
    for part in (text or "").split(","):
        key, _, value = part.partition("=")
        if key in NET_MODELS:
            model, mac = key, value
        elif key == "model":
            model = value
        elif key == "macaddr":
            mac = value
        else:
            rest[key] = value
    return Nic(model, mac.upper(), rest.get("bridge", ""), rest.get("tag", ""))


def _enabled(text: str | None) -> str:
    first, props = split_props(text)
    return props.get("enabled", first or "0")


def _tags(text: str | None) -> set[str]:
    return {t.lower() for t in re.split(r"[;, ]+", text or "") if t}


def machine_type(text: str | None) -> str:
    """'pc-q35-9.2+pve1' -> 'q35'; unset, 'pc' or 'pc-i440fx-9.2' -> 'i440fx' (PVE's default)."""
    first, props = split_props(text)
    kind = props.get("type", first) or "pc"
    return "q35" if "q35" in kind else kind if kind.startswith("virt") else "i440fx"


def efi_opts(text: str | None) -> dict[str, str]:
    props = split_props(text)[1]
    return {k: props.get(k, default) for k, default in EFI_DEFAULTS.items()}


def same(key: str, have: str | None, want: str) -> bool:
    """True when PVE's stored value means what the inventory asks for."""
    if have is None:
        have = DEFAULTS.get(key)
    if have is None:
        return False
    if key == "memory":
        return split_props(have)[1].get("current", split_props(have)[0]) == want
    if key in INT_KEYS:
        return have.strip() == want.strip()
    if key == "tags":
        return _tags(have) == _tags(want)
    if key == "agent":
        return _enabled(have) == _enabled(want)
    if key == "cpu":
        return split_props(have)[1].get("cputype", split_props(have)[0]) == want
    if key == "machine":
        return machine_type(have) == machine_type(want)
    if key == "efidisk0":  # any volume will do; the vars' type and keys matter
        return efi_opts(have) == efi_opts(want)
    if key == "net0":
        return parse_nic(have) == parse_nic(want)
    if key == "scsi0":
        h, w = parse_disk(have), parse_disk(want)
        return (h.storage, h.size_gib, disk_opts(h)) == (w.storage, w.size_gib, disk_opts(w))
    if key == "ide2":  # PVE adds size= to an ISO it finds; the volume and media matter
        (hv, hp), (wv, wp) = split_props(have), split_props(want)
        return (hv, hp.get("media")) == (wv, wp.get("media"))
    return have.strip() == want.strip()


def disk_opts(d: Disk) -> dict[str, str]:
    return {k: v for k, v in d.options.items() if k in DISK_OPTIONS}


def _nic_fields(text: str | None) -> hotplug.NicFields | None:
    if text is None:
        return None
    n = parse_nic(text)
    return hotplug.NicFields(n.model, n.mac, n.bridge, n.tag)


def running_change(key: str, have: str | None, want: str, hp: Hotplug) -> hotplug.Applies:
    """What qemu-server does with this change on a running VM (the table in hotplug.py)."""
    if key in hotplug.FAST_PLUG:
        return hotplug.Applies("live", "PVE applies it to a running VM")
    if key == "memory":
        return hotplug.memory(hp)
    if key == "balloon":
        return hotplug.balloon(have, want)
    if key == "net0":
        wn = _nic_fields(want)
        assert wn is not None
        return hotplug.nic(_nic_fields(have), wn, hp)
    if key == "ide2":
        return hotplug.cdrom(
            split_props(have)[1].get("media"), split_props(want)[1].get("media"), have is not None
        )
    if key == "agent":
        return hotplug.agent(have)
    if key in ("bios", "machine", "efidisk0"):
        return hotplug.cold(key)
    return hotplug.PENDING


def change_of(
    key: str, have: str | None, want: str, *, running: bool, hp: Hotplug
) -> hotplug.Applies:
    if key == "scsi0" and have is not None:
        h, w = parse_disk(have), parse_disk(want)
        if h.storage != w.storage:
            return hotplug.Applies("destroys-data", (
                f"the disk is on {h.storage}, not {w.storage}: Domum would recreate it empty "
                "(or move it yourself: Move Disk in the PVE GUI keeps the data)"
            ))  # fmt: skip
        if h.size_gib is not None and w.size_gib is not None and w.size_gib < h.size_gib:
            return hotplug.Applies(
                "destroys-data", f"PVE cannot shrink a disk ({h.size_gib:g}G -> {w.size_gib:g}G)"
            )
        if h.size_gib != w.size_gib and disk_opts(h) == disk_opts(w):
            return hotplug.Applies(
                "live", f"grows online ({h.size_gib:g}G -> {w.size_gib:g}G, PUT resize)"
            )
    change = (
        running_change(key, have, want, hp)
        if running
        else hotplug.Applies("live", "the VM is stopped: applies at once")
    )
    if key == "bios" and want == "ovmf":
        return hotplug.Applies(change.cls, f"{change.why}; {BIOS_BOOT}")
    return change


def compare(
    desired: Mapping[str, object], config: Mapping[str, ConfigValue], *, running: bool
) -> tuple[list[FieldDrift], list[str]]:
    """(drift per field, notes on changes PVE has queued that already match the inventory)."""
    drifts, queued = [], []
    hp = Hotplug.of(_current(config, "hotplug"), _current(config, "numa"))
    for key, raw in desired.items():
        if key == "vmid":
            continue
        want = str(raw)
        current = config.get(key, ConfigValue())
        if same(key, current.next, want):
            if running and current.pending is not None and not same(key, current.value, want):
                queued.append(f"{key}: {want} is queued by PVE and applies at the next restart")
            continue
        c = change_of(key, current.next, want, running=running, hp=hp)
        drifts.append(FieldDrift(key, current.next, want, c.cls, c.why, c.disruptive))
    return drifts, queued


def recreate_only(d: FieldDrift) -> bool:
    """Drift PVE would apply but the installed system would not survive: only a new VM fixes it."""
    return d.key == "bios" and d.want == "ovmf"


def _current(config: Mapping[str, ConfigValue], key: str) -> str | None:
    """The value the running QEMU was started with (a queued change is not in effect yet)."""
    return config.get(key, ConfigValue()).value


def memory_hotplug(config: Mapping[str, ConfigValue]) -> bool:
    """The VM's hotplug lists memory (now or at the next start): Talos's guide says not to."""
    return any(
        "memory" in hotplug.parse_features(v)
        for v in (_current(config, "hotplug"), config.get("hotplug", ConfigValue()).next)
    )


def applied_value(key: str, have: str | None, want: str) -> str:
    """The value to send for a drifting key: for the disk, keep its volume and size."""
    if key != "scsi0" or have is None:
        return want
    h, w = parse_disk(have), parse_disk(want)
    opts = {k: v for k, v in h.options.items() if k not in DISK_OPTIONS} | disk_opts(w)
    if h.size_gib is not None:
        opts["size"] = f"{h.size_gib:g}G"
    return ",".join([h.volume, *(f"{k}={v}" for k, v in sorted(opts.items()))])
