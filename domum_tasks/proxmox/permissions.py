"""The privilege pre-check: before a run's first write, ask PVE what the token may do.

PVE alone decides what a token holds on a path: a more specific ACL replaces what is inherited
for that user, group or token, NoAccess removes everything, pool roles apply to the members'
`/vms/<id>` and `/storage/<id>`, and a privilege-separated token holds only what both it and
its user hold (pve-access-control RPCEnvironment.pm `permissions`). So Domum never walks parent
paths itself: it asks `GET /access/permissions?path=P` once for each path the plan needs, and
PVE answers with exactly the privileges held there.

Each planned write needs what PVE checks for that call: qemu-server's create_vm/update_vm_api
(src/PVE/API2/Qemu.pm: `$check_vm_modify_config_perm` per option, `$check_storage_access`
for disks and the ISO, `check_bridge_access` for NICs, GuestHelpers `assert_tag_permissions`),
and the schema `permissions` of pve-api.json for the other calls. A run that would fail
halfway is refused up front, listing every missing privilege.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import Refused
from ..plan import Plan, PveCall
from .vm.drift import parse_nic

if TYPE_CHECKING:
    from ..pve import Session

# qemu-server 9.2 src/PVE/API2/Qemu.pm: the option classes `$check_vm_modify_config_perm` reads.
CPU = ("cores", "cpu", "runningcpu", "cpulimit", "cpuunits", "numa", "smp", "sockets", "vcpus")
MEMORY = ("memory", "balloon", "shares", "allow-ksm")
HWTYPE = ("acpi", "hotplug", "kvm", "machine", "runningmachine", "scsihw", "smbios1", "tablet",
          "vga", "watchdog", "audio0", "rng0")  # fmt: skip
OPTIONS = ("agent", "autostart", "bios", "description", "keyboard", "localtime",
           "migrate_downtime", "migrate_speed", "name", "onboot", "ostype", "protection",
           "reboot", "startdate", "startup", "tdf", "template")  # fmt: skip
DISK_OPTIONS = ("boot", "bootdisk", "vmstatestorage")
CLOUDINIT = ("cicustom", "cipassword", "citype", "ciuser", "ciupgrade", "nameserver",
             "searchdomain", "sshkeys")  # fmt: skip
# Parameters of create/update that are not config options (checked on their own, or not at all).
NOT_CONFIG = ("vmid", "digest", "delete", "revert", "skiplock", "start", "pool", "storage",
              "force", "unique", "bwlimit", "background_delay", "node")  # fmt: skip
DRIVE_RE = re.compile(r"^(ide[0-3]|sata[0-5]|scsi\d+|virtio\d+|efidisk0|tpmstate0)$")
NEW_DISK_RE = re.compile(r"^(?:([^/:\s]+):)?(\d+(?:\.\d+)?)$")  # qemu-server Drive NEW_DISK_RE
OWNED_RE = re.compile(r"(?:^|/)(?:vm|base)-(\d+)-")


@dataclass(frozen=True)
class Need:
    """Privileges one call needs: any one alternative, each a set of (path, privilege) pairs.
    No alternative at all: only root@pam may do it."""

    why: str
    alternatives: tuple[tuple[tuple[str, str], ...], ...]


def one(why: str, path: str, *privs: str) -> Need:
    """Need any one of `privs` on `path`."""
    return Need(why, tuple(((path, p),) for p in privs))


def vm_perm(why: str, vmid: str, pool: str | None, *privs: str) -> Need:
    """RPCEnvironment check_vm_perm: all of `privs` on /pool/<pool> (when a pool is given), or
    all of them on /vms/<vmid>."""
    alts = [tuple((f"/vms/{vmid}", p) for p in privs)]
    if pool:
        alts.insert(0, tuple((f"/pool/{pool}", p) for p in privs))
    return Need(why, tuple(alts))


def _volume_needs(why: str, vmid: str, key: str, value: str, default: str | None) -> list[Need]:
    """qemu-server `$check_storage_access` for one drive (and PVE::Storage check_volume_access)."""
    volume, _, rest = value.partition(",")
    cdrom = "media=cdrom" in rest.split(",")
    storeid, _, volname = volume.partition(":")
    if volume in ("", "none", "cloudinit") or volname == "cloudinit":
        return []
    if cdrom and volume == "cdrom":
        return [one(why, "/", "Sys.Console")]
    new = NEW_DISK_RE.match(volume)
    if new and not cdrom:
        store = new.group(1) or default
        return [one(f"{why} ({key})", f"/storage/{store}", "Datastore.AllocateSpace")]
    if not volname:
        return [Need(f"{why} ({key}: a host path)", ())]
    storage = f"/storage/{storeid}"
    owner = OWNED_RE.search(volname)
    if volname.startswith(("iso/", "vztmpl/", "import/")):
        # Datastore.Allocate passes check_volume_access outright; else AllocateSpace or Audit.
        privs = ("Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.Audit")
        return [one(f"{why} ({key})", storage, *privs)]
    if owner and owner.group(1) == vmid:
        return []  # the VM's own volume
    if owner:
        alts = (((storage, "Datastore.Allocate"),),
                ((storage, "Datastore.Audit"), (f"/vms/{owner.group(1)}", "VM.Config.Disk")))  # fmt: skip
        return [Need(f"{why} ({key})", alts)]
    return [one(f"{why} ({key})", storage, "Datastore.Allocate")]


def _nic_needs(why: str, value: str) -> list[Need]:
    """qemu-server check_bridge_access -> GuestHelpers check_vnet_access (zone localnetwork:
    a bridge that is an SDN vnet lives in its own zone, which Domum does not read)."""
    nic = parse_nic(value)
    if not nic.bridge:
        return []
    zone = f"/sdn/zones/localnetwork/{nic.bridge}" + (f"/{nic.tag}" if nic.tag else "")
    return [one(f"{why} (bridge {nic.bridge})", zone, "SDN.Use")]


def _option_needs(vmid: str, key: str, pool: str | None, why: str) -> list[Need]:
    """`$check_vm_modify_config_perm` for one non-drive option."""
    if key in CPU or re.fullmatch(r"numa\d+", key):
        return [vm_perm(why, vmid, pool, "VM.Config.CPU")]
    if key in MEMORY:
        return [vm_perm(why, vmid, pool, "VM.Config.Memory")]
    if key in HWTYPE:
        return [vm_perm(why, vmid, pool, "VM.Config.HWType")]
    if key in OPTIONS:
        out = [vm_perm(why, vmid, pool, "VM.Config.Options")]
        if key == "startup":  # it changes the host's behaviour
            out.append(one(f"{why} (startup)", "/", "Sys.Modify"))
        return out
    if key == "freeze":
        return [vm_perm(why, vmid, pool, "VM.PowerMgmt")]
    if key in DISK_OPTIONS:
        return [vm_perm(why, vmid, pool, "VM.Config.Disk")]
    if re.fullmatch(r"net\d+", key):
        return [vm_perm(why, vmid, pool, "VM.Config.Network")]
    if key in CLOUDINIT or re.fullmatch(r"ipconfig\d+", key):
        return [one(why, f"/vms/{vmid}", "VM.Config.Cloudinit", "VM.Config.Network")]
    if key == "vmstate":
        return [vm_perm(why, vmid, pool, "VM.Config.Disk", "VM.PowerMgmt")]
    return [Need(f"{why} ({key})", ())]  # "only root can set '<key>' config"


def config_needs(
    vmid: str, params: Mapping[str, Any], why: str, *, create: bool = False
) -> list[Need]:
    """What create_vm (`create`) or update_vm_api checks for these parameters."""
    pool = str(params["pool"]) if create and params.get("pool") else None
    default = str(params["storage"]) if create and params.get("storage") else None
    needs: list[Need] = []
    deleted = [k for k in re.split(r"[\s,;]+", str(params.get("delete") or "")) if k]
    for key in [*params, *deleted]:
        value = str(params.get(key, ""))
        if key in NOT_CONFIG:
            continue
        if DRIVE_RE.match(key) or key == "cdrom":
            if not create and key not in params:  # a deleted drive: its kind is not known
                needs.append(one(f"{why} ({key})", f"/vms/{vmid}", "VM.Config.Disk",
                                 "VM.Config.CDROM"))  # fmt: skip
            elif not create:  # update_vm_api $check_drive_perms (create checks storage only)
                media = "media=cdrom" in value.split(",")
                priv = "VM.Config.CDROM" if media or key == "cdrom" else "VM.Config.Disk"
                needs.append(vm_perm(f"{why} ({key})", vmid, None, priv))
            if key in params:
                needs += _volume_needs(why, vmid, key, value, default)
        elif re.fullmatch(r"unused\d+", key):
            needs.append(vm_perm(f"{why} ({key})", vmid, None, "VM.Config.Disk"))
        elif re.fullmatch(r"serial\d+", key):
            socket = value == "socket" or key not in params
            needs.append(vm_perm(why, vmid, pool, "VM.Config.HWType") if socket
                         else Need(f"{why} ({key}: a real device)", ()))  # fmt: skip
        elif key == "tags":  # GuestHelpers assert_tag_permissions: never through the pool
            needs.append(vm_perm(why, vmid, None, "VM.Config.Options"))
        else:
            needs += _option_needs(vmid, key, pool, why)
            if re.fullmatch(r"net\d+", key) and key in params:
                needs += _nic_needs(why, value)
    return needs


def needs_for(step: PveCall) -> list[Need]:
    """What PVE checks before it runs this call (reads need nothing here)."""
    if step.method == "GET":
        return []
    parts = step.path.strip("/").split("/")
    why = f"{step.method} {step.path}"
    p = step.params
    if parts[-1] == "download-url":
        storage, node = parts[3], parts[1]
        return [
            one(why, f"/storage/{storage}", "Datastore.AllocateTemplate"),
            Need(why, ((("/", "Sys.Audit"), ("/", "Sys.Modify")),
                       ((f"/nodes/{node}", "Sys.AccessNetwork"),))),
        ]  # fmt: skip
    if parts[-1] == "vzdump":
        vms = f"/vms/{p.get('vmid')}"
        storage = f"/storage/{p.get('storage')}"
        out = [one(why, vms, "VM.Backup"), one(why, storage, "Datastore.AllocateSpace")]
        if p.get("prune-backups"):
            out.append(one(f"{why} (prune-backups)", storage, "Datastore.Allocate"))
        return out
    if len(parts) == 3 and parts[2] in ("qemu", "lxc") and (p.get("archive") or p.get("restore")):
        return restore_needs(why, p)
    if len(parts) == 3 and parts[2] == "qemu":  # create_vm
        vmid, pool = str(p.get("vmid")), str(p["pool"]) if p.get("pool") else None
        out = [vm_perm(why, vmid, pool, "VM.Allocate")]
        if p.get("storage"):
            out.append(one(why, f"/storage/{p['storage']}", "Datastore.AllocateSpace"))
        if p.get("start"):
            out.append(vm_perm(why, vmid, pool, "VM.PowerMgmt"))
        return out + config_needs(vmid, p, why, create=True)
    if len(parts) < 4 or parts[2] not in ("qemu", "lxc"):
        return []
    vms = f"/vms/{parts[3]}"
    rest = parts[4:]
    if parts[2] == "lxc":  # pve-container API2/LXC/{Status,Snapshot}.pm `check` annotations
        return _ct_needs(step.method, why, vms, rest)
    if not rest:
        return [one(why, vms, "VM.Allocate")] if step.method == "DELETE" else []
    if rest[0] == "status":
        return [one(why, vms, "VM.PowerMgmt")]
    if rest[0] == "config":
        return config_needs(parts[3], p, why)
    if rest[0] == "resize":
        return [one(why, vms, "VM.Config.Disk")]
    if rest[0] == "snapshot":
        if rest[-1] == "rollback":
            return [one(why, vms, "VM.Snapshot", "VM.Snapshot.Rollback")]
        return [one(why, vms, "VM.Snapshot")]
    return []


def _ct_needs(method: str, why: str, vms: str, rest: list[str]) -> list[Need]:
    """A container's power, snapshot and destroy calls (Domum changes no container config)."""
    if not rest:
        return [one(why, vms, "VM.Allocate")] if method == "DELETE" else []
    if rest[0] == "status":
        return [one(why, vms, "VM.PowerMgmt")]
    if rest[0] == "snapshot":
        if rest[-1] == "rollback":
            return [one(why, vms, "VM.Snapshot", "VM.Snapshot.Rollback")]
        return [one(why, vms, "VM.Snapshot")]
    return [Need(f"{why} (not modelled: only root@pam is assumed to hold it)", ())]


BACKUP_OWNER_RE = re.compile(r"vzdump-(?:qemu|lxc)-(\d+)-")


def restore_needs(why: str, p: Mapping[str, Any]) -> list[Need]:
    """A restore (`archive` for qemu, `ostemplate` + `restore` for lxc): qemu-server
    API2/Qemu.pm `create_vm` and pve-container API2/LXC.pm `create_vm` accept VM.Allocate on the
    guest (or its pool), or VM.Backup on it when `force` replaces an existing guest; then the
    target storage's Datastore.AllocateSpace and pve-storage Storage.pm `check_volume_access`
    for the archive: Datastore.Allocate on its storage, or, unless the archive is the guest's own,
    Datastore.AllocateSpace there and VM.Backup on the guest it was taken from."""
    vmid, pool = str(p.get("vmid")), str(p["pool"]) if p.get("pool") else None
    alts = list(vm_perm(why, vmid, pool, "VM.Allocate").alternatives)
    if p.get("force"):
        alts.append(((f"/vms/{vmid}", "VM.Backup"),))
    out = [Need(why, tuple(alts))]
    if p.get("storage"):
        out.append(one(why, f"/storage/{p['storage']}", "Datastore.AllocateSpace"))
    if p.get("start"):
        out.append(vm_perm(why, vmid, pool, "VM.PowerMgmt"))
    volid = str(p.get("archive") or p.get("ostemplate") or "")
    sid = volid.split(":", 1)[0] if ":" in volid else ""
    owner = BACKUP_OWNER_RE.search(volid)
    if sid and not (owner and owner.group(1) == vmid):
        store = f"/storage/{sid}"
        access: list[tuple[tuple[str, str], ...]] = [((store, "Datastore.Allocate"),)]
        if owner:
            access.append(
                ((store, "Datastore.AllocateSpace"), (f"/vms/{owner.group(1)}", "VM.Backup"))
            )
        out.append(Need(f"{why} (read {volid})", tuple(access)))
    elif not sid:
        out.append(Need(f"{why} (a file system path as archive)", ()))
    return out


def paths(needs: Iterable[Need]) -> list[str]:
    """Every path the needs ask about, once each, sorted."""
    return sorted({path for need in needs for alt in need.alternatives for path, _ in alt})


def missing(held: Mapping[str, Mapping[str, Any]], needs: Iterable[Need]) -> list[str]:
    """'VM.Allocate on /vms/196' for every need no alternative of which is held; deduplicated.
    `held` maps each path to PVE's answer for exactly that path (privilege -> propagate)."""
    out: list[str] = []
    for need in needs:
        if any(all(priv in held.get(path, {}) for path, priv in alt) for alt in need.alternatives):
            continue
        text = (
            " or ".join(
                " + ".join(f"{priv} on {path}" for path, priv in alt) for alt in need.alternatives
            )
            or f"root@pam only: {need.why}"
        )
        if text not in out:
            out.append(text)
    return out


def precheck(session: Session, plan: Plan) -> None:
    """Refuse (exit 4) before any write if the token lacks a privilege the plan needs: one
    GET /access/permissions?path=P per path and host. Planners call it, so a dry-run refuses
    as the real run does. A host that cannot be reached is skipped: the plan already says what
    it assumed, and the real run's first call to it fails."""
    from .. import pve

    by_host: dict[str, list[Need]] = {}
    for step in [*plan.steps, *plan.finally_steps]:
        if isinstance(step, PveCall) and step.method != "GET":
            host = pve.host_for_path(session.inventory, step.path)
            by_host.setdefault(host, []).extend(needs_for(step))
    for host, needs in sorted(by_host.items()):
        try:
            client = session.client(host)
            held = {path: client.permissions(path) for path in paths(needs)}
        except pve.PveUnavailable:
            continue
        lacking = missing(held, needs)
        if lacking:
            token = client.host.token_id
            user = token.partition("!")[0]
            raise Refused(
                f"{host}: token {token} lacks {len(lacking)} privilege(s) this run needs, "
                f"so nothing was changed: {'; '.join(lacking)}",
                hint=f"a privilege-separated token holds only what BOTH the token and its user "
                f"{user} hold: grant the roles to both, e.g. pveum acl modify /vms --users "
                f"{user} --roles PVEVMAdmin, and the same with --tokens '{token}' (and "
                "PVEDatastoreUser on the storages, PVESDNUser on the bridge's zone); a more "
                "specific ACL replaces an inherited one, and NoAccess removes everything",
            )
