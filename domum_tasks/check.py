"""`inv check`: the offline validation of the inventory and everything derived from it.

Each checker takes the loaded inventory and yields findings; namespaces add theirs to CHECKERS
(Talos patches against the pinned schema, cluster manifests, ...).
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ConfigError, InventoryInvalid
from .findings import Checker, CheckFinding
from .inventory.loader import Loaded, load_with_findings

__all__ = ["CHECKERS", "CheckFinding", "Checker", "run_checks"]


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
    from .talos.genconfig.checks import check_talos as talos_checker

    return talos_checker(loaded)


def check_flux_settings(loaded: Loaded) -> Iterable[CheckFinding]:
    from .flux.settings_checks import check_settings

    return check_settings(loaded)


def check_flux_secrets(loaded: Loaded) -> Iterable[CheckFinding]:
    from .flux.sops_age import check_tree

    return check_tree(loaded)


def check_flux(loaded: Loaded) -> Iterable[CheckFinding]:
    from .flux.validate_task import check_flux as flux_checker

    return flux_checker(loaded)


def check_docs(loaded: Loaded) -> Iterable[CheckFinding]:
    from .docs.checks import check_networking

    return check_networking(loaded)


CHECKERS: list[tuple[str, Checker]] = [
    ("inventory", check_inventory),
    ("talos", check_talos),
    ("flux-settings", check_flux_settings),
    ("flux-secrets", check_flux_secrets),
    ("flux", check_flux),
    ("docs", check_docs),
]


def run_checks() -> list[CheckFinding]:
    """Load the inventory and run every checker. An invalid inventory is findings too (one row
    per problem, `file:line` as the subject): the other checkers need it, so they do not run."""
    try:
        loaded = load_with_findings()
    except InventoryInvalid as exc:
        return [CheckFinding("inventory", "error", where, what) for where, what in exc.problems]
    findings: list[CheckFinding] = []
    for name, checker in CHECKERS:
        try:
            findings.extend(checker(loaded))
        except ConfigError as exc:
            findings.append(CheckFinding(name, "error", "-", str(exc)))
    return findings
