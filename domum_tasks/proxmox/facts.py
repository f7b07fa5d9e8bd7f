"""Read-only probes of a Proxmox VE host, and the pure parsers of their answers.

Probes only GET. A dry-run whose host cannot be reached (or has no token secret) gets facts with
`reachable=False` and the reason, and the planner plans as for a fresh target, saying so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..inventory_model import Inventory
    from ..pve import PveClient


@dataclass(frozen=True)
class VmInfo:
    """One guest as /cluster/resources lists it."""

    vmid: int
    name: str
    node: str
    status: str
    kind: str = "qemu"
    template: bool = False
    lock: str = ""
    tags: str = ""


@dataclass
class VmFacts:
    """What a planner needs to know about one inventory VM and its host."""

    host: str
    reachable: bool = True
    reason: str = ""  # why the host could not be asked (when not reachable)
    vm: VmInfo | None = None
    iso_present: bool | None = None  # None: not probed
    snapshots: list[str] = field(default_factory=list)


def parse_resources(data: Any) -> list[VmInfo]:
    """GET /cluster/resources?type=vm -> VmInfo list, sorted by vmid (qemu and lxc)."""
    out = []
    for item in data or []:
        if not isinstance(item, Mapping) or item.get("type") not in ("qemu", "lxc"):
            continue
        out.append(
            VmInfo(
                vmid=int(item["vmid"]),
                name=str(item.get("name") or ""),
                node=str(item.get("node") or ""),
                status=str(item.get("status") or "unknown"),
                kind=str(item["type"]),
                template=str(item.get("template", 0)) in ("1", "True", "true"),
                lock=str(item.get("lock") or ""),
                tags=str(item.get("tags") or ""),
            )
        )
    return sorted(out, key=lambda v: v.vmid)


def parse_snapshots(data: Any) -> list[str]:
    """GET .../snapshot -> snapshot names, without PVE's pseudo-entry "current"."""
    return [
        str(s["name"])
        for s in data or []
        if isinstance(s, Mapping) and s.get("name") and s["name"] != "current"
    ]


def parse_iso_volids(data: Any) -> set[str]:
    """GET /nodes/{node}/storage/{storage}/content -> the volume ids listed."""
    return {str(v["volid"]) for v in data or [] if isinstance(v, Mapping) and v.get("volid")}


# --- probes ---------------------------------------------------------------------------------


def list_vms(pve: PveClient) -> list[VmInfo]:
    return parse_resources(pve.get("/cluster/resources", type="vm"))


def find_vm(vms: Sequence[VmInfo], vmid: int) -> VmInfo | None:
    return next((v for v in vms if v.vmid == vmid), None)


def probe_vm(
    inv: Inventory,
    node_id: int,
    *,
    dry_run: bool,
    iso_volid: str | None = None,
    snapshots: bool = False,
) -> VmFacts:
    """Facts about the VM of an inventory node. Outside a dry-run an unreachable host is an error."""
    from .. import pve

    node = inv.node(node_id)
    assert node.vm is not None  # the task checks platform proxmox-vm first
    host = inv.proxmox[node.vm.host]
    facts = VmFacts(host=node.vm.host)
    try:
        client = pve.client(inv, node.vm.host)
        facts.vm = find_vm(list_vms(client), node.vm.vmid)
        if iso_volid:
            storage = iso_volid.split(":", 1)[0]
            content = client.get(f"/nodes/{host.node}/storage/{storage}/content", content="iso")
            facts.iso_present = iso_volid in parse_iso_volids(content)
        if snapshots and facts.vm is not None:
            where = f"/nodes/{facts.vm.node}/qemu/{facts.vm.vmid}/snapshot"
            facts.snapshots = parse_snapshots(client.get(where))
    except pve.PveUnavailable as exc:
        if not dry_run:
            raise
        facts.reachable = False
        facts.reason = str(exc.message) + (f"; {exc.hint}" if exc.hint else "")
    return facts
