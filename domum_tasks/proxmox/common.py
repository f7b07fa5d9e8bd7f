"""What the proxmox task modules share: loading, and declaring a plan's run (pre-check, report).

Only light modules at import time; proxmoxer, pydantic and rich load inside tasks.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..inventory.model import Inventory
    from ..plan import Plan
    from ..pve import Session
    from ..run import StepResult
    from ..taskutil import Planned
    from .target import Guest

VM_NODE = "node id of a proxmox-vm node (e.g. 96)"
GUEST = "node id of a proxmox-vm node (e.g. 96), or an inventory container's name (e.g. unifi)"


def load() -> Inventory:
    from ..taskutil import load_inventory

    return load_inventory()


def session(inv: Inventory) -> Session:
    """The run's PVE clients: the planner probes with them and the executor runs with them."""
    from ..pve import Session

    return Session(inv)


def need_node(inv: Inventory, node: int) -> int:
    from .target import vm_target

    if not node:
        from ..errors import ConfigError
        from .target import vm_node_ids

        ids = ", ".join(str(i) for i in vm_node_ids(inv)) or "none"
        raise ConfigError(f"--node is required: the id of a proxmox-vm node ({ids})")
    vm_target(inv, node)
    return node


def need_guest(inv: Inventory, node: int | str) -> Guest:
    """--node, required: a node's VM or an inventory container."""
    from .target import guest_refs, guest_target

    if not node:
        from ..errors import ConfigError

        refs = ", ".join(guest_refs(inv)) or "none"
        raise ConfigError(
            f"--node is required: a proxmox-vm node's id or a container's name ({refs})"
        )
    return guest_target(inv, node)


def planned(
    pve: Session,
    plan: Plan,
    *,
    extra: dict[str, Any] | None = None,
    lines: Callable[[], None] | None = None,
    refused: Sequence[str] = (),
    handlers: Mapping[str, Any] | None = None,
) -> Planned:
    """The plan, checked against the token's privileges before anything runs (the dry-run
    refuses as the real run does), with the proxmox report: the notes and each step done, or
    with --json one object (`extra` merged in). `lines` prints more before the notes (drift);
    `refused` fails the run (exit 4) after what could be applied was applied."""
    from ..errors import Refused
    from ..plan import describe, step_dict
    from ..taskutil import Planned
    from . import permissions

    if plan.steps:
        permissions.precheck(pve, plan)

    def report(results: list[StepResult], json_out: bool) -> None:
        if json_out:
            done = [step_dict(r.step, plan.secrets) for r in results]
            out = {"title": plan.title, "changed": any(_writes(r) for r in results),
                   "steps": done, "notes": plan.notes, **(extra or {})}  # fmt: skip
            print(jsonlib.dumps(out, indent=2, default=str))
        else:
            if lines is not None:
                lines()
            for note in plan.notes:
                print(f"{plan.title}: {note}")
            for r in results:
                print(f"done: {r.step.desc or describe(r.step)}")

    refuse = Refused("not applied: " + "; ".join(refused)) if refused else None
    steps = {**pve.handlers(), **(handlers or {})}  # `handlers`: the plan's Local actions
    return Planned(plan, pve.inventory, steps, report=report, pve=pve, then_fail=refuse)


def _writes(result: StepResult) -> bool:
    from ..plan import PveCall

    return isinstance(result.step, PveCall) and result.step.method != "GET"
