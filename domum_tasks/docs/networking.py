"""docs/networking.md from the inventory: the homelab's addresses, VLANs and the DHCP
reservations the router needs. Pure: an Inventory in, Markdown out (the same text for the same
inventory, so a committed page can be compared with what the inventory renders)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from ..inventory.loader import display_path, repo_root
from ..inventory.model import Inventory
from .md import table as _table

PAGE = "docs/networking.md"
_ROLE = {"controlplane": "control plane", "worker": "worker", "edge": "edge (not in the cluster)"}
_OS = {"talos": "Talos", "raspios": "Raspberry Pi OS"}


def _code(value: object) -> str:
    return f"`{value}`"


def _pve_address(api_url: str) -> str:
    return urlsplit(api_url).hostname or api_url


def _nodes(inv: Inventory) -> list[str]:
    rows = []
    for node_id, node in sorted(inv.nodes.items()):
        where = node.model or node.platform
        if node.vm is not None:
            where = f"VM {node.vm.vmid} on {node.vm.host}"
        rows.append(
            (
                node_id,
                _code(node.hostname),
                _code(node.ip),
                _code(node.mac),
                _ROLE.get(node.role, node.role),
                f"{_OS.get(node.os, node.os)}, {node.platform}",
                where,
            )
        )
    head = ("id", "hostname", "IP", "MAC", "role", "OS, platform", "hardware")
    return ["## Nodes", "", *_table(head, rows)]


def _cluster(inv: Inventory) -> list[str]:
    c = inv.cluster
    rows: list[tuple[str, str, str]] = [
        ("node LAN", _code(c.node_cidr), "every node, the VIP and the MetalLB pool live here"),
        ("gateway", _code(c.gateway), "the router"),
        ("DNS servers (nodes)", ", ".join(_code(d) for d in c.dns), "what the nodes resolve with"),
        ("Kubernetes API VIP", _code(c.vip), f"shared by the control planes; {c.endpoint}"),
        ("pod network", _code(c.pod_cidr), "inside the cluster only; must not overlap the LAN"),
        ("service network", _code(c.service_cidr), "inside the cluster only"),
    ]
    if inv.site is not None:
        lb = inv.site.metallb
        first, last = lb.hosts()
        rows += [
            ("MetalLB pool", _code(lb.addresses), f"{first} to {last}: LoadBalancer services"),
            ("ingress (Traefik)", _code(lb.ingress_ip), f"every web UI: `<app>.{inv.site.domain}`"),
            ("DNS (Pi-hole)", _code(lb.dns_ip), "hand this out as the DNS server in DHCP"),
        ]
        if inv.site.admin_node_exporter:
            rows.append(
                (
                    "admin machine's node-exporter",
                    _code(inv.site.admin_node_exporter),
                    "Prometheus scrapes the backup metrics here",
                )
            )
    return ["## Cluster and services", "", *_table(("what", "address", "notes"), rows)]


def _hosts(inv: Inventory) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []
    for name, host in sorted(inv.proxmox.items()):
        what = f"Proxmox VE host (node `{host.node}`)"
        rows.append(
            (_code(name), _code(_pve_address(host.api_url)), what, host.model or host.api_url)
        )
    if inv.nas is not None:
        shares = ", ".join(_code(p) for _, p in sorted(inv.nas.shares.items()))
        rows.append((_code(inv.nas.hostname), _code(inv.nas.host), "NAS", f"shares: {shares}"))
    for name, ct in sorted(inv.containers.items()):
        net = ct.net
        address = "no network" if net is None else str(net.ip)
        if net is not None and isinstance(net.ip, ipaddress.IPv4Interface):
            address = _code(net.ip.ip)
        rows.append(
            (_code(ct.hostname or name), address, f"LXC {ct.vmid} on {ct.host}", f"`--node {name}`")
        )
    if not rows:
        return []
    return ["## Hosts outside the cluster", "", *_table(("name", "address", "what", "notes"), rows)]


def _vlans(inv: Inventory) -> list[str]:
    tagged: dict[int, list[str]] = {}
    for node_id, node in sorted(inv.nodes.items()):
        if node.vm is not None and node.vm.vlan is not None:
            tagged.setdefault(node.vm.vlan, []).append(f"node {node_id} ({node.hostname})")
    for name, ct in sorted(inv.containers.items()):
        if ct.net is not None and ct.net.vlan is not None:
            tagged.setdefault(ct.net.vlan, []).append(f"container {name}")
    lines = ["## VLANs", ""]
    if not tagged:
        lines += [
            f"None: every guest is untagged on the node LAN ({_code(inv.cluster.node_cidr)}). "
            "A VM's `vm.vlan` or a container's `net.vlan` in the inventory tags its interface.",
            "",
        ]
        return lines
    rows = [(tag, ", ".join(who)) for tag, who in sorted(tagged.items())]
    return [*lines, *_table(("VLAN tag", "guests"), rows)]


def _dhcp(inv: Inventory) -> list[str]:
    rows = [
        (_code(node.mac), _code(node.ip), _code(node.hostname))
        for _, node in sorted(inv.nodes.items(), key=lambda kv: kv[1].ip)
    ]
    rows += [
        (_code(ct.net.mac), _code(ct.net.ip.ip), _code(ct.hostname or name))
        for name, ct in sorted(inv.containers.items())
        if ct.net is not None and ct.net.mac and isinstance(ct.net.ip, ipaddress.IPv4Interface)
    ]
    lines = [
        "## DHCP reservations for the router",
        "",
        "A node that boots (maintenance mode, a fresh Pi, a reinstalled VM) asks DHCP first; the "
        "reservation gives it its inventory address, so `inv talos.apply --insecure` and SSH "
        "find it. Enter each row in the router's static leases:",
        "",
        *_table(("MAC", "IP", "hostname"), rows),
    ]
    keep_out = [f"the VIP {_code(inv.cluster.vip)}", f"the gateway {_code(inv.cluster.gateway)}"]
    if inv.site is not None:
        keep_out.append(f"the MetalLB pool {_code(inv.site.metallb.addresses)}")
    keep_out += [
        f"{name} {_code(_pve_address(h.api_url))}" for name, h in sorted(inv.proxmox.items())
    ]
    if inv.nas is not None:
        keep_out.append(f"the NAS {_code(inv.nas.host)}")
    keep_out += [
        f"{name} {_code(ct.net.ip.ip)}"
        for name, ct in sorted(inv.containers.items())
        if ct.net is not None and isinstance(ct.net.ip, ipaddress.IPv4Interface)
    ]
    lines += [
        "The router's dynamic pool must not hand out " + ", ".join(keep_out) + ".",
        "",
    ]
    if inv.site is not None:
        lines += [
            f"DHCP option 6 (DNS server): {_code(inv.site.metallb.dns_ip)} (Pi-hole), once the "
            "cluster serves it.",
            "",
        ]
    return lines


def source_name(path: Path) -> str:
    """The inventory as the page names it: relative to the repo root when inside it, so the
    committed page is the same on every checkout."""
    try:
        return str(path.resolve().relative_to(repo_root().resolve()))
    except ValueError:
        return display_path(path)


def render(inv: Inventory, source: str) -> str:
    """The page; `source` names the inventory file it was rendered from."""
    lines = [
        "# Your network",
        "",
        f"<!-- Generated from {source} by `python -m domum_tasks.docs`; do not edit. -->",
        "",
        f"Generated from `{source}`: edit the inventory, then run "
        "`python -m domum_tasks.docs` (`inv check` warns while this page is out of date).",
        "",
    ]
    for part in (_cluster, _nodes, _hosts, _vlans, _dhcp):
        lines += part(inv)
    return "\n".join(lines).rstrip("\n") + "\n"
