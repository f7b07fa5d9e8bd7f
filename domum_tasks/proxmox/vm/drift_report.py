"""Drift, as people read it: one table row per field, with its class and how it would apply."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...inventory.model import Inventory
    from .drift import FieldDrift

LIMIT = 60  # characters of a value shown; descriptions can be long


def _short(value: str | None) -> str:
    if value is None:
        return "(unset)"
    return value if len(value) <= LIMIT else value[: LIMIT - 3] + "..."


def _cls(d: FieldDrift) -> str:
    # A live change the guest feels at once (its NIC re-plugged) must stand out in the table.
    return f"{d.cls} (disruptive)" if d.disruptive else d.cls


def print_drift(inv: Inventory, drift: dict[int, list[FieldDrift]]) -> None:
    from ...console import print_table

    rows = [
        (str(node_id), d.key, _short(d.have), _short(d.want), _cls(d), d.why)
        for node_id, ds in sorted(drift.items())
        for d in ds
    ]
    print_table(
        "Drift from the inventory",
        ("node", "field", "on proxmox", "inventory", "class", "why"),
        rows,
    )
