"""Checks of the LXC containers on the Proxmox hosts (`containers:` in config/domum.yaml; the
model is ContainerSpec in model.py).

A container is a guest like a node's VM, but not a cluster node: it has no node id. Users
address it by its inventory name (`--node pihole2`), so the name must hold a letter (a bare
number is a node id). Its vmid shares PVE's one id space with every VM.

    containers:
      pihole2:
        host: pve1
        vmid: 210
        template: local:vztmpl/debian-13-standard_13.1-2_amd64.tar.zst   # optional
        cores: 1
        memory_mib: 512
        rootfs: {storage: local-lvm, size_gib: 8}
        net: {bridge: vmbr0, ip: 10.0.10.53/24, gw: 10.0.10.1}
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .findings import Finding, Loc
from .model import ContainerSpec

if TYPE_CHECKING:
    from .model import Inventory

_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def hostname_of(name: str, spec: ContainerSpec) -> str:
    return spec.hostname or name


def container_findings(inv: Inventory) -> Iterator[Finding]:
    """Cross-field checks of `containers:`: names, hosts, one vmid per guest, addresses."""
    from .site_checks import taken_addresses

    owners: dict[int, str] = {}
    for node_id, node in sorted(inv.nodes.items()):
        if node.vm is not None:
            owners.setdefault(node.vm.vmid, f"node {node_id}'s VM")
    hostnames = {n.hostname: f"node {i}" for i, n in sorted(inv.nodes.items())}
    taken = dict(taken_addresses(inv))
    for name, ct in sorted(inv.containers.items()):
        base: Loc = ("containers", name)
        if not _NAME.match(str(name)):
            yield Finding(
                "error",
                base,
                f"{name!r} is not a container name: a lowercase DNS label with a letter "
                "(e.g. pihole2; a bare number is a node id)",
            )
        if ct.host not in inv.proxmox:
            valid = ", ".join(sorted(inv.proxmox)) or "(none defined)"
            yield Finding(
                "error",
                (*base, "host"),
                f"{ct.host!r} is not a host under proxmox:; valid: {valid}",
            )
        if ct.vmid in owners:
            yield Finding(
                "error",
                (*base, "vmid"),
                f"{ct.vmid} is already the vmid of {owners[ct.vmid]}; PVE has one id per guest",
            )
        owners.setdefault(ct.vmid, f"container {name}")
        hostname = hostname_of(name, ct)
        if hostname in hostnames:
            fix = "" if ct.hostname else f"; set containers.{name}.hostname"
            yield Finding(
                "error",
                (*base, "hostname") if ct.hostname else base,
                f"{hostname} is already the hostname of {hostnames[hostname]}; must be unique{fix}",
            )
        hostnames.setdefault(hostname, f"container {name}")
        yield from _net_findings(inv, base, name, ct, taken)


def _net_findings(
    inv: Inventory,
    base: Loc,
    name: str,
    ct: ContainerSpec,
    taken: dict[ipaddress.IPv4Address, str],
) -> Iterator[Finding]:
    net = ct.net
    if net is None or net.ip == "dhcp":
        if net is not None and net.gw is not None:
            yield Finding(
                "error", (*base, "net", "gw"), "gw is for a static ip; dhcp brings its own"
            )
        return
    assert isinstance(net.ip, ipaddress.IPv4Interface)
    addr = net.ip.ip
    if addr in taken:
        yield Finding(
            "error",
            (*base, "net", "ip"),
            f"{addr} is already used by {taken[addr]}; pick a free one",
        )
    taken.setdefault(addr, f"container {name}")
    if net.gw is not None and net.gw not in net.ip.network:
        yield Finding(
            "error", (*base, "net", "gw"), f"{net.gw} is outside the container's {net.ip.network}"
        )
    if addr in inv.cluster.node_cidr and net.ip.network != inv.cluster.node_cidr:
        yield Finding(
            "error",
            (*base, "net", "ip"),
            f"{net.ip}: on the node LAN use its prefix, {addr}/{inv.cluster.node_cidr.prefixlen}",
        )
