"""proxmox.status as data: hosts, guests (QEMU and LXC), storage and missing inventory guests
(nodes' VMs and `containers:`).

Built from one `/cluster/resources` per inventory host, so the number of API calls does not grow
with the number of guests. Pure apart from `collect`. The JSON and the tables hold the same
rows with the same snake_case keys; only numbers are formatted for people in the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import DomumError
from ..facts import ClusterFacts

if TYPE_CHECKING:
    from ...inventory.model import Inventory

GIB = 1024**3


@dataclass
class StatusReport:
    hosts: list[dict[str, Any]] = field(default_factory=list)
    guests: list[dict[str, Any]] = field(default_factory=list)
    storage: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)

    @property
    def down(self) -> list[str]:
        return [h["host"] for h in self.hosts if h["status"] == "down"]

    def to_json(self) -> dict[str, Any]:
        return {"hosts": self.hosts, "guests": self.guests, "storage": self.storage,
                "missing": self.missing}  # fmt: skip


def why_down(exc: DomumError) -> str:
    """A short, actionable reason a host could not be asked."""
    text = str(exc.message)
    if "no API token secret" in text or "cannot read the token secret" in text:
        reason = "no API token secret"
    elif "TLS verification failed" in text:
        reason = "TLS verification failed: pin the CA with ca_file or the fingerprint"
    elif ": 401 " in text:
        reason = "token rejected"
    elif "cannot reach" in text:
        reason = "unreachable"
    elif ": 403 " in text:
        reason = "token lacks VM.Audit/Sys.Audit"
    else:
        reason = "API error"
    detail = text + (f" ({exc.hint})" if exc.hint else "")
    return f"{reason}: {detail}"


def _pct(used: float, total: float) -> float:
    return round(100.0 * used / total, 1) if total else 0.0


def _gib(value: int) -> float:
    return round(value / GIB, 1)


def build(inv: Inventory, per_host: dict[str, ClusterFacts | DomumError]) -> StatusReport:
    """The report from each inventory host's facts (or the error that kept us from them)."""
    from ..target import guest_refs, guest_target

    report = StatusReport()
    ours = {t.vmid: t for t in (guest_target(inv, r) for r in guest_refs(inv))}
    seen_nodes: set[str] = set()
    seen_guests: set[int] = set()
    seen_storage: set[tuple[str, str]] = set()
    for name in sorted(inv.proxmox):
        facts = per_host[name]
        host = inv.proxmox[name]
        if isinstance(facts, DomumError):
            report.hosts.append({"host": name, "node": host.node, "status": "down",
                                 "cpu_pct": None, "mem_used_gib": None, "mem_total_gib": None,
                                 "uptime_s": None, "reason": why_down(facts)})  # fmt: skip
            continue
        for h in facts.hosts:  # a PVE cluster lists all its nodes: show each once
            if h.node in seen_nodes:
                continue
            seen_nodes.add(h.node)
            report.hosts.append({"host": name if h.node == host.node else "-", "node": h.node,
                                 "status": h.status, "cpu_pct": _pct(h.cpu, 1.0),
                                 "mem_used_gib": _gib(h.mem), "mem_total_gib": _gib(h.maxmem),
                                 "uptime_s": h.uptime, "reason": ""})  # fmt: skip
        for g in facts.guests:
            if g.vmid in seen_guests:
                continue
            seen_guests.add(g.vmid)
            t = ours.get(g.vmid)
            mark = "not in inventory" if t is None else _mark(t.kind, t.ref)
            if t is not None and (t.kind, t.name) != (g.kind, g.name):
                mark += f" (expects {'' if t.kind == g.kind else t.kind + ' '}{t.name})"
            report.guests.append({"vmid": g.vmid, "type": g.kind, "name": g.name,
                                  "status": "template" if g.template else g.status,
                                  "node": g.node, "cpu_pct": _pct(g.cpu, 1.0),
                                  "mem_used_gib": _gib(g.mem), "mem_total_gib": _gib(g.maxmem),
                                  "uptime_s": g.uptime, "lock": g.lock, "inventory": mark})  # fmt: skip
        for s in facts.storages:
            key = ("shared" if s.shared else s.node, s.storage)
            if key in seen_storage:
                continue
            seen_storage.add(key)
            report.storage.append({"storage": s.storage, "node": "shared" if s.shared else s.node,
                                   "status": s.status, "used_gib": _gib(s.used),
                                   "total_gib": _gib(s.total), "used_pct": _pct(s.used, s.total),
                                   "content": s.content})  # fmt: skip
    down = {h["host"] for h in report.hosts if h["status"] == "down"}
    for vmid, t in sorted(ours.items()):
        if vmid not in seen_guests and t.host_name not in down:
            fix = (f"inv proxmox.create-vm --node {t.ref}" if t.kind == "qemu"
                   else f"inv proxmox.restore --node {t.ref} --from VOLID")  # fmt: skip
            report.missing.append({"guest": _mark(t.kind, t.ref), "type": t.kind, "vmid": vmid,
                                   "hostname": t.name, "host": t.host_name,
                                   "fix": fix})  # fmt: skip
    return report


def _mark(kind: str, ref: str) -> str:
    """How the inventory names a guest: `node 96` (a node's VM) or `container unifi`."""
    return f"node {ref}" if kind == "qemu" else f"container {ref}"


def uptime(seconds: Any) -> str:
    if not seconds:
        return "-"
    s = int(seconds)
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    return f"{d}d {h}h" if d else f"{h}h {m}m"


def table_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns and cells for print_table: the JSON keys, uptime made readable."""
    if not rows:
        return [], []
    cols = [("uptime" if k == "uptime_s" else k) for k in rows[0]]
    cells = [[uptime(v) if k == "uptime_s" else ("-" if v in (None, "") else v)
              for k, v in r.items()] for r in rows]  # fmt: skip
    return cols, cells


def collect(inv: Inventory) -> dict[str, ClusterFacts | DomumError]:
    """One GET /cluster/resources per inventory host; a host that fails keeps its error."""
    from ... import pve
    from ..facts import cluster

    out: dict[str, ClusterFacts | DomumError] = {}
    session = pve.Session(inv)
    for name in sorted(inv.proxmox):
        try:
            out[name] = cluster(session.client(name))
        except DomumError as exc:  # PveError, PveUnavailable, ConfigError (ca_file) alike
            out[name] = exc
    return out
