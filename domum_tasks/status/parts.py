"""Which probes make the screen: every part the inventory has, in screen order."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
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


def parse_timeouts(text: str) -> dict[str, float]:
    """`--timeout 5` (every part) or `--timeout proxmox=2,pi=3` (those parts; the others keep
    their defaults) -> {part: seconds}. Bad input is exit 2."""
    text = text.strip()
    if not text:
        return {}
    items = [(None, text)] if "=" not in text else [i.partition("=")[::2] for i in text.split(",")]
    out: dict[str, float] = {}
    for part, value in items:
        if part is not None and part.strip() not in PARTS:
            raise ConfigError(
                f"--timeout {text}: no part {part.strip()!r}; valid: {', '.join(PARTS)}"
            )
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ConfigError(f"--timeout {text}: {value!r} is not a number of seconds above 0 "
                              "(e.g. --timeout 5 or --timeout proxmox=2,pi=3)")  # fmt: skip
        for name in PARTS if part is None else (part.strip(),):
            out[name] = seconds
    return out


def _makers() -> list[Callable[[Inventory, float | None], list[Probe]]]:
    from . import backups, flux, pis, proxmox, talos

    return [talos.probes, flux.probes, proxmox.probes, pis.probes, backups.probes]


def probes(
    inv: Inventory, parts: set[str], timeouts: dict[str, float] | None = None
) -> list[Probe]:
    """The probes of the asked parts, each with its part's timeout (`timeouts`, else the
    part's default); a part the inventory lacks (no Proxmox host, no backup job, no Talos node)
    has none, so it is absent from the screen, not failing."""
    timeouts = timeouts or {}
    out: list[Probe] = []
    for make in _makers():
        made = make(inv, None)
        out += [
            replace(p, timeout_s=timeouts[p.part]) if p.part in timeouts else p
            for p in made
            if p.part in parts
        ]
    return sorted(out, key=lambda p: PARTS.index(p.part))  # stable: node order within a part
