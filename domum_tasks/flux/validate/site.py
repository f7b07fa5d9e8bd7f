"""The tree against the inventory: the MetalLB pool, the VIP and the domain of config/domum.yaml.

Values that the inventory holds must not be typed again in the tree; when they are (or when a
substituted value is stale) they have to agree.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from .core import World
from .model import Finding, Obj

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
HOST_RULE = re.compile(r"Host(?:SNI)?\(([^)]*)\)")


def _span(entry: str) -> tuple[int, int] | None:
    """An address range or CIDR as (first, last) integers."""
    try:
        if "-" in entry:
            a, b = (ipaddress.ip_address(x.strip()) for x in entry.split("-", 1))
            return int(a), int(b)
        net: IPNet = ipaddress.ip_network(entry.strip(), strict=False)
        return int(net.network_address), int(net.broadcast_address)
    except ValueError:
        return None


def _within_domain(host: str, domain: str) -> bool:
    host = host.strip().strip("`\"'").rstrip(".").lower().removeprefix("*.")
    return host == domain or host.endswith("." + domain)


def _hosts(o: Obj) -> list[str]:
    s = o.spec
    if o.kind == "Ingress":
        hosts = [str(r.get("host")) for r in s.get("rules") or [] if r.get("host")]
        return hosts + [str(h) for t in s.get("tls") or [] for h in t.get("hosts") or []]
    if o.kind in ("IngressRoute", "IngressRouteTCP"):
        found = []
        for route in s.get("routes") or []:
            for m in HOST_RULE.findall(str(route.get("match", ""))):
                found += [h.strip() for h in m.split(",") if h.strip()]
        return found
    if o.kind == "Certificate":
        return [str(h) for h in s.get("dnsNames") or []]
    if o.kind == "ClusterIssuer":
        return [
            str(z)
            for sol in (s.get("acme") or {}).get("solvers") or []
            for z in ((sol or {}).get("selector") or {}).get("dnsZones") or []
        ]
    if o.kind == "HTTPRoute":
        return [str(h) for h in s.get("hostnames") or []]
    return []


def check_site(world: World) -> Iterator[Finding]:
    facts = world.settings.site
    if facts is None:
        return
    want = sorted(s for s in (_span(p) for p in facts.pool) if s)
    for o in world.objects:
        if o.kind == "IPAddressPool" and o.group == "metallb.io":
            addresses = [str(a) for a in o.spec.get("addresses") or []]
            spans = sorted(s for s in (_span(a) for a in addresses) if s)
            if want and spans != want:
                yield o.finding(
                    "inventory",
                    f"spec.addresses {addresses} disagree with {facts.source} ({', '.join(facts.pool)}): render them from the inventory (${{...}} from cluster-settings)",
                )
            if facts.vip:
                vip = int(ipaddress.ip_address(facts.vip))
                if any(a <= vip <= b for a, b in spans):
                    yield o.finding(
                        "inventory",
                        f"spec.addresses {addresses} contain the cluster VIP {facts.vip} from {facts.source}: MetalLB would hand it to a Service",
                    )
        if facts.domain:
            for host in _hosts(o):
                if not _within_domain(host, facts.domain.lower()):
                    yield o.finding(
                        "inventory",
                        f"host {host!r} is not in the domain {facts.domain} of {facts.source}: use ${{DOMAIN}}-style substitution from cluster-settings",
                    )
