"""The privilege pre-check: before a run's first write, ask PVE once what the token may do.

`GET /access/permissions` returns the token's effective privileges as a tree of ACL paths; a
privilege counts on a path when it is granted there or on a parent with propagation. Each planned
write needs what PVE's permission check for that call asks (pve-api.json's `permissions`, and the
notes in contracts/pve-notes.md). A run that would fail halfway is refused up front, listing
every missing privilege. Privileges that come only through a pool (/pool/NAME) are not seen here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import Refused
from ..plan import Plan, PveCall
from .vm.drift import parse_disk, parse_nic

if TYPE_CHECKING:
    from ..pve import Session

CPU = ("cores", "sockets", "cpu", "vcpus", "numa", "cpulimit", "cpuunits", "affinity")
MEMORY = ("memory", "balloon", "shares")
OPTIONS = ("name", "description", "onboot", "tags", "agent", "protection", "startup")
NOT_CONFIG = ("vmid", "digest", "delete", "skiplock", "start", "pool", "storage")


@dataclass(frozen=True)
class Need:
    """Privileges one call needs: any one alternative, each a set of (path, privilege) pairs."""

    why: str
    alternatives: tuple[tuple[tuple[str, str], ...], ...]


def one(why: str, path: str, *privs: str) -> Need:
    """Need any one of `privs` on `path`."""
    return Need(why, tuple(((path, p),) for p in privs))


def _config_needs(vmid: str, params: Mapping[str, Any], why: str) -> list[Need]:
    vms = f"/vms/{vmid}"
    needs = []
    for key, value in params.items():
        if key in NOT_CONFIG:
            continue
        text = str(value)
        if key in CPU:
            needs.append(one(why, vms, "VM.Config.CPU"))
        elif key in MEMORY:
            needs.append(one(why, vms, "VM.Config.Memory"))
        elif key in OPTIONS:
            needs.append(one(why, vms, "VM.Config.Options"))
        elif key.startswith("net"):
            needs.append(one(why, vms, "VM.Config.Network"))
            nic = parse_nic(text)
            zone = f"/sdn/zones/localnetwork/{nic.bridge}" + (f"/{nic.tag}" if nic.tag else "")
            needs.append(one(f"{why} (bridge {nic.bridge})", zone, "SDN.Use"))
        elif "media=cdrom" in text:
            needs.append(one(why, vms, "VM.Config.CDROM"))
        elif key.startswith(("scsi", "virtio", "sata", "ide", "efidisk")) and key[-1].isdigit():
            needs.append(one(why, vms, "VM.Config.Disk"))
            disk = parse_disk(text)
            name = disk.volume.partition(":")[2]
            if disk.storage and name.replace(".", "").isdigit():  # "storage:SIZE" allocates
                needs.append(one(why, f"/storage/{disk.storage}", "Datastore.AllocateSpace"))
        elif key == "boot":
            needs.append(one(why, vms, "VM.Config.Disk"))
        elif key == "ostype":  # general options in qemu-server; HWType in some versions
            needs.append(one(why, vms, "VM.Config.Options", "VM.Config.HWType"))
        else:
            needs.append(one(why, vms, "VM.Config.HWType"))
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
    if len(parts) == 3 and parts[2] == "qemu":  # create
        return [one(why, f"/vms/{p.get('vmid')}", "VM.Allocate"),
                *_config_needs(str(p.get("vmid")), p, why)]  # fmt: skip
    if len(parts) < 4 or parts[2] != "qemu":
        return []
    vms = f"/vms/{parts[3]}"
    rest = parts[4:]
    if not rest:
        return [one(why, vms, "VM.Allocate")] if step.method == "DELETE" else []
    if rest[0] == "status":
        return [one(why, vms, "VM.PowerMgmt")]
    if rest[0] == "config":
        return _config_needs(parts[3], p, why)
    if rest[0] == "resize":
        return [one(why, vms, "VM.Config.Disk")]
    if rest[0] == "snapshot":
        if rest[-1] == "rollback":
            return [one(why, vms, "VM.Snapshot", "VM.Snapshot.Rollback")]
        return [one(why, vms, "VM.Snapshot")]
    return []


def holds(tree: Mapping[str, Mapping[str, Any]], path: str, priv: str) -> bool:
    """True if `priv` is granted on `path` itself or propagated from a parent."""
    parts = path.strip("/").split("/")
    for depth in range(len(parts), -1, -1):
        here = "/" + "/".join(parts[:depth])
        granted = tree.get(here, {})
        if priv in granted and (here == path or str(granted[priv]) not in ("0", "False")):
            return True
    return False


def missing(tree: Mapping[str, Mapping[str, Any]], needs: Iterable[Need]) -> list[str]:
    """'VM.Allocate on /vms/196' for every need no alternative of which is held; deduplicated."""
    out: list[str] = []
    for need in needs:
        if any(all(holds(tree, path, priv) for path, priv in alt) for alt in need.alternatives):
            continue
        text = " or ".join(
            " + ".join(f"{priv} on {path}" for path, priv in alt) for alt in need.alternatives
        )
        if text not in out:
            out.append(text)
    return out


def precheck(session: Session, plan: Plan) -> None:
    """Refuse (exit 4) before any write if the token lacks a privilege the plan needs: one
    /access/permissions per host. Planners call it, so a dry-run refuses as the real run does.
    A host that cannot be reached is skipped: the plan already says what it assumed, and the
    real run's first call to it fails."""
    from .. import pve

    by_host: dict[str, list[Need]] = {}
    for step in [*plan.steps, *plan.finally_steps]:
        if isinstance(step, PveCall) and step.method != "GET":
            host = pve.host_for_path(session.inventory, step.path)
            by_host.setdefault(host, []).extend(needs_for(step))
    for host, needs in sorted(by_host.items()):
        try:
            client = session.client(host)
            raw = client.get("/access/permissions") or {}
        except pve.PveUnavailable:
            continue
        tree = {str(k): dict(v) for k, v in raw.items() if isinstance(v, Mapping)}
        lacking = missing(tree, needs)
        if lacking:
            raise Refused(
                f"{host}: token {client.host.token_id} lacks {len(lacking)} privilege(s) this "
                f"run needs, so nothing was changed: {'; '.join(lacking)}",
                hint=f"grant them, e.g. pveum acl modify /vms --tokens '{client.host.token_id}' "
                "--roles PVEVMAdmin (and PVEDatastoreUser on the storages)",
            )
