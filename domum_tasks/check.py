"""`inv check`: the offline validation of the inventory and everything derived from it.

Each checker takes the loaded inventory and yields findings; namespaces add theirs to CHECKERS
(Talos patches against the pinned schema, cluster manifests, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError
from .inventory import Loaded, load_with_findings


@dataclass(frozen=True)
class CheckFinding:
    check: str
    severity: Literal["ok", "warning", "error"]
    subject: str
    message: str


Checker = Callable[[Loaded], Iterable[CheckFinding]]


def check_inventory(loaded: Loaded) -> Iterable[CheckFinding]:
    inv = loaded.inventory
    for warning in loaded.warnings:
        yield CheckFinding("inventory", "warning", loaded.path.name, warning)
    talos, edge = len(inv.talos_nodes), len(inv.nodes) - len(inv.talos_nodes)
    yield CheckFinding(
        "inventory",
        "ok",
        loaded.path.name,
        f"{len(inv.nodes)} nodes ({len(inv.controlplanes)} control planes, {talos} Talos, "
        f"{edge} Raspberry Pi OS), {len(inv.pis)} Pis, {len(inv.proxmox)} Proxmox host(s)",
    )


def check_talos(loaded: Loaded) -> Iterable[CheckFinding]:
    from .talos.checks import check_talos as talos_checker  # lazy: avoids an import cycle

    return talos_checker(loaded)


CHECKERS: list[tuple[str, Checker]] = [
    ("inventory", check_inventory),
    ("talos", check_talos),
]


def run_checks() -> list[CheckFinding]:
    """Load the inventory (ConfigError propagates: exit 2) and run every checker."""
    loaded = load_with_findings()
    findings: list[CheckFinding] = []
    for name, checker in CHECKERS:
        try:
            findings.extend(checker(loaded))
        except ConfigError as exc:
            findings.append(CheckFinding(name, "error", "-", str(exc)))
    return findings
