"""Proxmox hosts and the inventory's guests (VMs and containers), from proxmox.status's report:
one `GET /cluster/resources` per host, with this probe's timeout."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from .model import Probe, Row

if TYPE_CHECKING:
    from ..inventory.model import Inventory

DEFAULT_TIMEOUT_S = 15.0


def _host_detail(h: dict[str, Any]) -> str:
    from ..proxmox.status.report import uptime

    return (
        f"{h['status']}, cpu {h['cpu_pct']}%, mem {h['mem_used_gib']}/{h['mem_total_gib']} GiB, "
        f"up {uptime(h['uptime_s'])}"
    )


def host_rows(inv: Inventory, name: str, timeout_s: float) -> list[Row]:
    from .. import pve
    from ..errors import DomumError
    from ..proxmox.facts import ClusterFacts, cluster
    from ..proxmox.status.report import build

    got: ClusterFacts | DomumError
    try:
        client = pve.client(inv, name)
        client.timeout_s = timeout_s  # the HTTP read timeout (connecting has pve's own 5 s)
        got = cluster(client)
    except DomumError as exc:
        got = exc
    # build() reports every inventory host: the others are asked by their own probes.
    other = DomumError("asked by its own probe")
    report = build(inv, {n: got if n == name else other for n in inv.proxmox})
    node = inv.proxmox[name].node
    others = {h.node for n, h in inv.proxmox.items() if n != name}
    rows = []
    for h in report.hosts:
        if h["host"] != name:
            continue
        if h["status"] == "down":
            rows.append(Row("proxmox", f"host {name}", False, h["reason"], h))
        else:
            rows.append(Row("proxmox", f"host {name}", h["status"] == "online", _host_detail(h), h))
    for g in report.guests:
        if g["inventory"] == "not in inventory" or g["status"] == "template":
            continue
        if g["node"] != node and g["node"] in others:  # that host's probe shows it
            continue
        ok = g["status"] == "running"
        detail = f"{g['status']} on {g['node']}, {g['inventory']}"
        if g.get("lock"):
            detail += f", locked ({g['lock']})"
        rows.append(Row("proxmox", f"{g['type']} {g['vmid']} {g['name']}", ok, detail, g))
    for m in report.missing:
        if m["host"] == name:
            detail = f"missing on {name}: {m['fix']}"
            rows.append(
                Row("proxmox", f"{m['type']} {m['vmid']} {m['hostname']}", False, detail, m)
            )
    return rows


def probes(inv: Inventory, timeout_s: float | None) -> list[Probe]:
    t = timeout_s or DEFAULT_TIMEOUT_S
    return [
        Probe("proxmox", f"host {n}", t, partial(host_rows, inv, n)) for n in sorted(inv.proxmox)
    ]
