"""Phase summary: the apps' URLs from the inventory's domain, and what remains by hand."""

from __future__ import annotations

from .model import Ctx, Part


def summary(ctx: Ctx) -> Part:
    from ..inventory.loader import repo_root
    from . import facts

    inv = ctx.inv
    part = Part("apps and what remains by hand")
    part.skip = "read-only"
    domain = inv.site.domain if inv.site is not None else ""
    if domain:
        part.notes += [f"https://{app}.{domain}" for app in facts.app_hosts(repo_root())]
    part.notes += checklist(ctx)
    return part


def checklist(ctx: Ctx) -> list[str]:
    inv = ctx.inv
    out = []
    for i, n in sorted(inv.nodes.items()):
        if n.mac:
            out.append(f"[ ] DHCP reservation: {n.mac} -> {n.ip} ({n.hostname}, node {i})")
    site = inv.site
    if site is not None:
        ingress = site.metallb.ingress_ip
        out.append(f"[ ] DNS: *.{site.domain} -> {ingress} (Traefik), in your local resolver")
        if site.metallb.dns_ip:
            out.append(f"[ ] DHCP: hand out {site.metallb.dns_ip} (Pi-hole) as the DNS server")
    return out
