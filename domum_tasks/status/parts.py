"""Which probes make the screen: every part the inventory has, in screen order."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .model import Probe

if TYPE_CHECKING:
    from ..inventory.model import Inventory

PARTS = ("talos", "etcd", "flux", "proxmox", "pi", "backup")


def parse_only(only: str) -> set[str]:
    """`--only talos,pi` -> the parts; an unknown one is bad input (exit 2)."""
    asked = {p.strip() for p in only.split(",") if p.strip()}
    unknown = sorted(asked - set(PARTS))
    if unknown:
        raise ConfigError(f"--only {','.join(unknown)}: no such part; valid: {', '.join(PARTS)}")
    return asked or set(PARTS)


def _makers() -> list[Callable[[Inventory, float | None], list[Probe]]]:
    from . import backups, flux, pis, proxmox, talos

    return [talos.probes, flux.probes, proxmox.probes, pis.probes, backups.probes]


def probes(inv: Inventory, parts: set[str], timeout_s: float | None = None) -> list[Probe]:
    """The probes of the asked parts; a part the inventory lacks (no Proxmox host, no backup
    job, no Talos node) has none, so it is absent from the screen, not failing."""
    out: list[Probe] = []
    for make in _makers():
        out += [p for p in make(inv, timeout_s) if p.part in parts]
    return sorted(out, key=lambda p: PARTS.index(p.part))  # stable: node order within a part
