"""Cross-field checks of the inventory's `site:` section (the values the GitOps tree renders).

The MetalLB pool hands out addresses on the node LAN, so it must sit inside cluster.node_cidr
and must not contain an address something else already owns: a node, the Talos VIP, the
gateway, the NAS, a Proxmox host, a DNS server. A clash there shows up as ARP flapping on the
LAN, long after the merge; here it is one line naming the field.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from posixpath import normpath
from urllib.parse import urlsplit

from .findings import Finding, Loc
from .model import Inventory

IPv4 = ipaddress.IPv4Address


def taken_addresses(inv: Inventory) -> dict[IPv4, str]:
    """Every address on the LAN the inventory already assigns, with who owns it."""
    c = inv.cluster
    owners: dict[IPv4, str] = {c.vip: "cluster.vip", c.gateway: "cluster.gateway"}
    for i, dns in enumerate(c.dns):
        owners.setdefault(dns, f"cluster.dns[{i}]")
    for node_id, node in sorted(inv.nodes.items()):
        owners.setdefault(node.ip, f"node {node_id} ({node.hostname})")
    if inv.nas is not None:
        owners.setdefault(inv.nas.host, "nas.host")
    for name, host in sorted(inv.proxmox.items()):
        try:
            ip = IPv4(urlsplit(host.api_url).hostname or "")
        except ValueError:
            continue  # a DNS name: nothing to compare
        owners.setdefault(ip, f"proxmox.{name}.api_url")
    return owners


def site_findings(inv: Inventory) -> Iterator[Finding]:
    site = inv.site
    if site is None:
        return
    base: Loc = ("site", "metallb")
    lb = site.metallb
    first, last = lb.hosts()
    cidr = inv.cluster.node_cidr
    if first not in cidr or last not in cidr:
        yield Finding(
            "error",
            (*base, "addresses"),
            f"{lb.addresses} is not inside cluster.node_cidr {cidr}; MetalLB L2 answers ARP "
            "only for addresses on the node LAN",
        )
    else:
        clashes = [
            f"{ip} ({who})"
            for ip, who in sorted(taken_addresses(inv).items())
            if first <= ip <= last
        ]
        if clashes:
            yield Finding(
                "error",
                (*base, "addresses"),
                f"{lb.addresses} contains {', '.join(clashes)}; pick a range clear of every "
                "address the inventory assigns (nodes, VIP, gateway, DNS, NAS, Proxmox)",
            )
        if first == cidr.network_address or last == cidr.broadcast_address:
            yield Finding(
                "error",
                (*base, "addresses"),
                f"{lb.addresses} includes the network or broadcast address of {cidr}",
            )
    for field in ("ingress_ip", "dns_ip"):
        ip = getattr(lb, field)
        if not first <= ip <= last:
            yield Finding(
                "error",
                (*base, field),
                f"{ip} is outside site.metallb.addresses {lb.addresses}; MetalLB can only "
                "assign addresses from its pool",
            )
    if lb.ingress_ip == lb.dns_ip:
        yield Finding(
            "error",
            (*base, "dns_ip"),
            f"{lb.dns_ip} is also site.metallb.ingress_ip; Traefik and Pi-hole need one each",
        )
    yield from _nas_paths(inv)


def _nas_paths(inv: Inventory) -> Iterator[Finding]:
    site = inv.site
    assert site is not None
    for field in ("longhorn_backup_path", "nfs_bulk_path"):
        loc: Loc = ("site", field)
        path = getattr(site, field)
        if not path.startswith("/") or normpath(path) != path.rstrip("/"):
            yield Finding("error", loc, f"{path!r} must be an absolute, normalised path on the NAS")
            continue
        if inv.nas is None:
            yield Finding("error", loc, "needs a nas: section (the NFS server's host)")
            continue
        shares = inv.nas.shares.values()
        if not any(path == s or path.startswith(s.rstrip("/") + "/") for s in shares):
            valid = ", ".join(sorted(shares)) or "(none defined)"
            yield Finding(
                "error", loc, f"{path} is not inside one of nas.shares; exported: {valid}"
            )
