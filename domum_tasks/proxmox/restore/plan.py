"""proxmox.restore: bring a VM or container back from a vzdump archive. Pure (facts in, Plan out).

One call, as PVE's own restore takes it:
* a VM: `POST /nodes/{node}/qemu` with `archive=<volid>` (qemu-server src/PVE/API2/Qemu.pm,
  `create_vm`): `force=1` replaces an existing VM; PVE refuses a running one ("unable to
  restore VM N - vm is running") and a protected one;
* a container: `POST /nodes/{node}/lxc` with `ostemplate=<volid>` and `restore=1` (pve-container
  src/PVE/API2/LXC.pm, `create_vm`): `force=1` replaces an existing container; PVE refuses a
  running one ("can't overwrite running container"). Without `storage` PVE puts the restored
  volumes on `local`, so the plan always names the inventory's storage.
Without `force` both refuse an existing vmid (PVE::Cluster::check_vmid_unused), and `force`
replaces only a guest of the same kind. So the plan refuses what PVE would refuse, before any
call, and says how to get past it (stop the guest first: a restore never stops one itself).
A replace is destructive: the plan lists the guest's current disks, which PVE frees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError, Refused
from ...inventory.model import Inventory
from ...plan import Local, Plan, PveCall, Wait
from ...pve import VM_STATE
from ..facts import VmFacts
from ..power.actions import STATE_DEADLINE_S, STATE_INTERVAL_S
from ..target import Guest, check_ours, check_unlocked, guest_target, unreachable_note

# The names vzdump gives its archives (pve-storage src/PVE/Storage.pm, archive_info):
# vzdump-{qemu|lxc|openvz}-<vmid>-YYYY_MM_DD-HH_MM_SS.{vma|tar|tgz}[.zst|.gz|.lzo|.bz2]
VZDUMP_RE = re.compile(
    r"^(?P<storage>[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]):backup/vzdump-(?P<type>qemu|lxc|openvz)-"
    r"(?P<vmid>[1-9][0-9]{2,8})-\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2}\.(?:vma|tar|tgz)"
    r"(?:\.(?:zst|gz|lzo|bz2))?$"
)
# Proxmox Backup Server snapshots: <storage>:backup/{vm|ct}/<vmid>/<RFC 3339 time>
PBS_RE = re.compile(
    r"^(?P<storage>[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]):backup/(?P<type>vm|ct)/"
    r"(?P<vmid>[1-9][0-9]{2,8})/\S+$"
)
EXAMPLE = "nas-backup:backup/vzdump-qemu-196-2026_12_01-02_30_00.vma.zst"
# Config keys that hold a guest's volumes (qemu-server Drive.pm; pve-container rootfs/mpN).
DISK_RE = re.compile(r"^(scsi|virtio|sata|ide|efidisk|tpmstate|unused)\d+$|^(rootfs|mp\d+)$")


@dataclass(frozen=True)
class Archive:
    volid: str
    storage: str
    kind: str  # qemu or lxc
    vmid: int  # the guest it was taken of


def parse_archive(volid: str) -> Archive:
    """--from: a vzdump backup volume id; which kind of guest it holds, and whose it was."""
    found = VZDUMP_RE.match(volid) or PBS_RE.match(volid)
    if not found:
        raise ConfigError(
            f"--from {volid!r}: not a vzdump backup volume id (e.g. {EXAMPLE}); "
            "list them with pvesm list STORAGE --content backup"
        )
    kind = {"vm": "qemu", "ct": "lxc", "openvz": "lxc"}.get(found["type"], found["type"])
    return Archive(volid, found["storage"], kind, int(found["vmid"]))


def disks(config: Mapping[str, Any] | None) -> list[str]:
    """'scsi0 local-lvm:vm-196-disk-0,size=32G' per volume of a guest's config (no CD-ROMs)."""
    out = []
    for key, value in sorted((config or {}).items()):
        text = str(getattr(value, "value", value) or "")
        if text and DISK_RE.match(key) and "media=cdrom" not in text:
            out.append(f"{key} {text}")
    return out


def _what(t: Guest) -> str:
    return "VM" if t.kind == "qemu" else "container"


def restore_storage(inv: Inventory, t: Guest, storage: str | None) -> str:
    """--storage, else where the inventory keeps the guest's disks."""
    if storage:
        return storage
    return t.spec.storage if t.kind == "qemu" else t.spec.rootfs.storage  # type: ignore[union-attr]


def plan_restore(
    inv: Inventory,
    node: int | str,
    facts: VmFacts,
    volid: str,
    *,
    listed: Sequence[str] | None,
    storage: str | None = None,
    start: bool = False,
) -> Plan:
    """`listed`: the backup volids on the archive's storage (None: not probed)."""
    t = guest_target(inv, node)
    archive = parse_archive(volid)
    if archive.kind != t.kind:
        raise ConfigError(
            f"--from {volid}: a {'VM' if archive.kind == 'qemu' else 'container'} archive cannot "
            f"restore {t.label}, a {_what(t)}"
        )
    if listed is not None and volid not in listed:
        shown = ", ".join(sorted(listed)[-3:]) or "none"
        raise Refused(
            f"{archive.storage} holds no backup {volid} (newest there of guest {archive.vmid}: "
            f"{shown})",
            hint=f"list them with pvesm list {archive.storage} --content backup",
        )
    plan = Plan(f"restore {t.label} from {volid}")
    target = restore_storage(inv, t, storage)
    vm = facts.vm
    replace = vm is not None
    if vm is not None:
        if vm.kind != t.kind:
            raise Refused(
                f"vmid {t.vmid} on {vm.node} holds a {vm.kind} guest {vm.name!r}: PVE restores a "
                f"{t.kind} archive only over a guest of the same kind",
                hint=f"change {t.vmid_field}, or remove that guest",
            )
        check_ours(t, vm)
        if vm.status == "running":
            raise Refused(
                f"{t.label} is running: PVE does not restore over a running {_what(t)}",
                hint=f"stop it first: inv proxmox.shutdown --node {t.ref} (or proxmox.stop)",
            )
        check_unlocked(t, vm, facts.lock_holders)
        current = facts.config or {}
        protection = current.get("protection")
        if protection is not None and str(protection.next) == "1":
            raise Refused(
                f"{t.label} is protected: PVE refuses to replace it",
                hint="clear its protection flag (Options > Protection) first",
            )
        held = disks(current) if facts.config is not None else []
        plan.note(
            f"replaces {t.label} ({vm.status}) with the archive's state; "
            + (f"its disks are freed: {'; '.join(held)}" if held else "its disks are freed")
        )
    plan.notes += unreachable_note(
        facts.host, facts.reachable, facts.reason, f"assumed vmid {t.vmid} is free"
    )
    if archive.vmid != t.vmid:
        plan.note(f"the archive is of guest {archive.vmid}; it is restored as {t.vmid}")
    node_name = vm.node if vm is not None else t.host.node
    params: dict[str, object] = {"vmid": t.vmid, "storage": target}
    if t.kind == "qemu":
        params["archive"] = volid
    else:
        params.update(ostemplate=volid, restore=1)
    if replace:
        params["force"] = 1
    if start:
        params["start"] = 1
    desc = f"restore {t.label} from {volid} onto {target}" + (
        f", replacing the {_what(t)} and its disks" if replace else ""
    )
    plan.add(
        PveCall("POST", f"/nodes/{node_name}/{t.kind}", params, desc=desc,
                destructive=replace, wait_task=True)
    )  # fmt: skip
    if start:
        base = f"/nodes/{node_name}/{t.kind}/{t.vmid}"
        plan.add(
            Wait(f"{t.label} to be running", STATE_DEADLINE_S,
                 probe=Local(VM_STATE, {"path": f"{base}/status/current", "want": "running"}),
                 interval_s=STATE_INTERVAL_S)
        )  # fmt: skip
    return plan
