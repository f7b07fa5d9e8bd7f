"""Read-only probes of Proxmox VE hosts, and the pure parsers of their answers.

Probes only GET, and few of them: one `/cluster/resources` per host (guests, nodes and storage at
once), one storage listing per ISO storage, one `/pending` per existing inventory VM. A dry-run
whose host cannot be reached (or has no token secret) gets facts with `reachable=False` and the
reason, and the planner plans as for a fresh target, saying so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..pve import PveClient, Session


class GuestRef(Protocol):
    """What a probe needs of a guest target (target.VmTarget and CtTarget have it)."""

    @property
    def ref(self) -> str: ...  # what users pass as --node
    @property
    def vmid(self) -> int: ...
    @property
    def kind(self) -> str: ...  # qemu or lxc
    @property
    def host_name(self) -> str: ...


@dataclass(frozen=True)
class _VmNode:
    ref: str
    vmid: int
    host_name: str
    kind: str = "qemu"


@dataclass(frozen=True)
class VmInfo:
    """One guest (QEMU VM or LXC container) as /cluster/resources lists it."""

    vmid: int
    name: str
    node: str
    status: str
    kind: str = "qemu"
    template: bool = False
    lock: str = ""
    tags: str = ""
    cpu: float = 0.0  # share of maxcpu in use, 0..1
    maxcpu: int = 0
    mem: int = 0
    maxmem: int = 0
    uptime: int = 0
    pool: str = ""


@dataclass(frozen=True)
class HostInfo:
    """A PVE node as /cluster/resources lists it."""

    node: str
    status: str
    cpu: float = 0.0
    maxcpu: int = 0
    mem: int = 0
    maxmem: int = 0
    uptime: int = 0


@dataclass(frozen=True)
class StorageInfo:
    node: str
    storage: str
    status: str
    used: int = 0
    total: int = 0
    content: str = ""
    shared: bool = False


@dataclass(frozen=True)
class ConfigValue:
    """One key of GET .../pending: the running value, and what the next start will use."""

    value: str | None = None  # None: not set now
    pending: str | None = None  # a queued new value
    delete: bool = False  # a queued removal

    @property
    def next(self) -> str | None:
        """The value after the next (re)start."""
        if self.delete:
            return None
        return self.pending if self.pending is not None else self.value


@dataclass
class VmFacts:
    """What a planner needs to know about one inventory VM and its host."""

    host: str
    reachable: bool = True
    reason: str = ""  # why the host could not be asked (when not reachable)
    vm: VmInfo | None = None
    iso_present: bool | None = None  # None: not probed
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, ConfigValue] | None = None  # None: not probed
    lock_holders: list[str] = field(default_factory=list)  # running tasks, when vm.lock is set


@dataclass
class ClusterFacts:
    """One host's /cluster/resources, parsed."""

    hosts: list[HostInfo] = field(default_factory=list)
    guests: list[VmInfo] = field(default_factory=list)
    storages: list[StorageInfo] = field(default_factory=list)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _guest(item: Mapping[str, Any]) -> VmInfo:
    return VmInfo(
        vmid=int(item["vmid"]),
        name=str(item.get("name") or ""),
        node=str(item.get("node") or ""),
        status=str(item.get("status") or "unknown"),
        kind=str(item["type"]),
        template=str(item.get("template", 0)) in ("1", "True", "true"),
        lock=str(item.get("lock") or ""),
        tags=str(item.get("tags") or ""),
        cpu=_float(item.get("cpu")),
        maxcpu=_int(item.get("maxcpu")),
        mem=_int(item.get("mem")),
        maxmem=_int(item.get("maxmem")),
        uptime=_int(item.get("uptime")),
        pool=str(item.get("pool") or ""),
    )


def parse_cluster(data: Any) -> ClusterFacts:
    """GET /cluster/resources (no type filter) -> nodes, guests (qemu and lxc), storage."""
    out = ClusterFacts()
    for item in data or []:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind in ("qemu", "lxc") and item.get("vmid") is not None:
            out.guests.append(_guest(item))
        elif kind == "node":
            out.hosts.append(
                HostInfo(
                    node=str(item.get("node") or ""),
                    status=str(item.get("status") or "unknown"),
                    cpu=_float(item.get("cpu")),
                    maxcpu=_int(item.get("maxcpu")),
                    mem=_int(item.get("mem")),
                    maxmem=_int(item.get("maxmem")),
                    uptime=_int(item.get("uptime")),
                )
            )
        elif kind == "storage":
            out.storages.append(
                StorageInfo(
                    node=str(item.get("node") or ""),
                    storage=str(item.get("storage") or ""),
                    status=str(item.get("status") or "unknown"),
                    used=_int(item.get("disk")),
                    total=_int(item.get("maxdisk")),
                    content=str(item.get("content") or ""),
                    shared=str(item.get("shared", 0)) == "1",
                )
            )
    out.guests.sort(key=lambda v: v.vmid)
    out.hosts.sort(key=lambda h: h.node)
    out.storages.sort(key=lambda s: (s.node, s.storage))
    return out


def parse_resources(data: Any) -> list[VmInfo]:
    """The guests of a /cluster/resources answer, sorted by vmid (qemu and lxc)."""
    return parse_cluster(data).guests


def parse_snapshots(data: Any) -> list[dict[str, Any]]:
    """GET .../snapshot -> snapshot entries (name, description, parent, snaptime, vmstate),
    oldest first, without PVE's pseudo-entry "current"."""
    snaps = [
        dict(s)
        for s in data or []
        if isinstance(s, Mapping) and s.get("name") and s["name"] != "current"
    ]
    parents = {str(s["name"]): str(s.get("parent") or "") for s in snaps}

    def depth(name: str) -> int:  # PVE's snapshots form a tree by `parent`: oldest at the root
        seen: set[str] = set()
        while parents.get(name) and name not in seen:
            seen.add(name)
            name = parents[name]
        return len(seen)

    return sorted(snaps, key=lambda s: (depth(str(s["name"])), _int(s.get("snaptime"))))


def parse_pending(data: Any) -> dict[str, ConfigValue]:
    """GET .../pending -> key -> ConfigValue (PVE's own digest line is left out)."""
    out = {}
    for item in data or []:
        if not isinstance(item, Mapping) or not item.get("key") or item["key"] == "digest":
            continue
        value, pending = item.get("value"), item.get("pending")
        out[str(item["key"])] = ConfigValue(
            value=None if value is None else str(value),
            pending=None if pending is None else str(pending),
            delete=str(item.get("delete", 0)) in ("1", "2"),
        )
    return out


def parse_iso_volids(data: Any) -> set[str]:
    """GET /nodes/{node}/storage/{storage}/content -> the volume ids listed."""
    return {str(v["volid"]) for v in data or [] if isinstance(v, Mapping) and v.get("volid")}


# --- probes ---------------------------------------------------------------------------------


def cluster(pve: PveClient) -> ClusterFacts:
    """One call: everything /cluster/resources knows (the count does not grow with guests)."""
    return parse_cluster(pve.get("/cluster/resources"))


def list_vms(pve: PveClient) -> list[VmInfo]:
    return parse_resources(pve.get("/cluster/resources", type="vm"))


def find_vm(vms: Sequence[VmInfo], vmid: int) -> VmInfo | None:
    return next((v for v in vms if v.vmid == vmid), None)


def active_tasks(pve: PveClient, node: str, vmid: int) -> list[str]:
    """'qmsnapshot (UPID:...)' for each task still running on the guest (lock holders)."""
    from ..errors import PveError

    try:
        tasks = pve.get(f"/nodes/{node}/tasks", vmid=vmid, source="active") or []
    except PveError:  # only enriches a lock error: never the reason a run fails
        return []
    return [
        f"{t.get('type', '?')} ({t.get('upid', '?')})"
        for t in tasks
        if isinstance(t, Mapping) and not t.get("endtime") and t.get("status") in (None, "running")
    ]


def probe_vms(
    session: Session,
    node_ids: Iterable[int],
    *,
    plan_around_down: bool,
    iso_volids: Mapping[int, str] | None = None,
    config: bool = False,
    snapshots: bool = False,
) -> dict[int, VmFacts]:
    """probe_guests for inventory VM nodes, by node id."""
    ids = list(node_ids)
    targets = []
    for i in ids:
        spec = session.inventory.node(i).vm
        assert spec is not None  # vm_target checked the platform first
        targets.append(_VmNode(str(i), spec.vmid, spec.host))
    isos = {str(i): v for i, v in (iso_volids or {}).items()}
    found = probe_guests(
        session, targets, plan_around_down=plan_around_down, iso_volids=isos,
        config=config, snapshots=snapshots,
    )  # fmt: skip
    return {i: found[str(i)] for i in ids}


def probe_guests(
    session: Session,
    targets: Sequence[GuestRef],
    *,
    plan_around_down: bool,
    iso_volids: Mapping[str, str] | None = None,
    config: bool = False,
    snapshots: bool = False,
) -> dict[str, VmFacts]:
    """Facts about inventory guests (VMs and containers), by --node ref: one /cluster/resources
    per host, one content listing per ISO storage, then per existing guest of the expected kind
    its /pending (config) and/or snapshot list. A host that cannot be reached is an error, or
    with `plan_around_down` (planners) facts with reachable=False: the plan is made as for a
    fresh host, and the real run's first call to it fails."""
    from .. import pve

    inv = session.inventory
    by_host: dict[str, list[GuestRef]] = {}
    for t in targets:
        by_host.setdefault(t.host_name, []).append(t)
    out: dict[str, VmFacts] = {}
    for host_name, members in sorted(by_host.items()):
        host = inv.proxmox[host_name]
        facts = {t.ref: VmFacts(host=host_name) for t in members}
        out.update(facts)
        try:
            client = session.client(host_name)
            guests = list_vms(client)
            listed: dict[str, set[str]] = {}
            for t in members:
                f = facts[t.ref]
                f.vm = find_vm(guests, t.vmid)
                volid = (iso_volids or {}).get(t.ref)
                if volid:
                    storage = volid.split(":", 1)[0]
                    if storage not in listed:
                        where = f"/nodes/{host.node}/storage/{storage}/content"
                        listed[storage] = parse_iso_volids(client.get(where, content="iso"))
                    f.iso_present = volid in listed[storage]
                if f.vm is None or f.vm.kind != t.kind:
                    continue
                base = f"/nodes/{f.vm.node}/{t.kind}/{f.vm.vmid}"
                if f.vm.lock:
                    f.lock_holders = active_tasks(client, f.vm.node, f.vm.vmid)
                if config:
                    f.config = parse_pending(client.get(f"{base}/pending"))
                if snapshots:
                    f.snapshots = parse_snapshots(client.get(f"{base}/snapshot"))
        except pve.PveUnavailable as exc:
            if not plan_around_down:
                raise
            for f in facts.values():
                f.reachable = False
                f.reason = str(exc.message) + (f"; {exc.hint}" if exc.hint else "")
    return out


def probe_guest(
    session: Session, target: GuestRef, *, config: bool = False, snapshots: bool = False
) -> VmFacts:
    """probe_guests for one guest, as planners probe (an unreachable host is planned around)."""
    return probe_guests(
        session, [target], plan_around_down=True, config=config, snapshots=snapshots
    )[target.ref]


def probe_vm(
    session: Session, node_id: int, *, config: bool = False, snapshots: bool = False
) -> VmFacts:
    """probe_vms for one node, as planners probe (an unreachable host is planned around)."""
    return probe_vms(session, [node_id], plan_around_down=True, config=config, snapshots=snapshots)[
        node_id
    ]
