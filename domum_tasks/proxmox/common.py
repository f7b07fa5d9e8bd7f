"""What the proxmox task modules share: loading, and running a plan (pre-check, confirm, report).

Only light modules at import time; proxmoxer, pydantic and rich load inside tasks.
"""

from __future__ import annotations

import json as jsonlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..inventory.model import Inventory
    from ..plan import Plan
    from ..run import StepResult

VM_NODE = "node id of a proxmox-vm node (e.g. 96)"


def load() -> Inventory:
    from ..taskutil import load_inventory

    return load_inventory()


def need_node(inv: Inventory, node: int) -> int:
    from .target import vm_target

    if not node:
        from ..errors import ConfigError
        from .target import vm_node_ids

        ids = ", ".join(str(i) for i in vm_node_ids(inv)) or "none"
        raise ConfigError(f"--node is required: the id of a proxmox-vm node ({ids})")
    vm_target(inv, node)
    return node


def execute(
    inv: Inventory,
    plan: Plan,
    *,
    dry_run: bool,
    json: bool,
    yes: bool = False,
    extra: dict[str, Any] | None = None,
) -> list[StepResult]:
    """Dry-run: print the plan. Otherwise say why (notes), check the token's privileges before
    the first write, run it (destructive steps need --yes or a typed 'yes'), report."""
    from ..plan import describe, step_dict
    from ..taskutil import executor
    from . import permissions
    from .power import actions as power

    run = executor(
        dry_run=dry_run,
        json_out=json,
        inventory=inv,
        handlers={power.WAIT_STATE: power.state_waiter(inv)},
    )
    if not dry_run and not json:
        for note in plan.notes:  # before any confirmation prompt: they may matter for it
            print(f"{plan.title}: {note}")
    if not dry_run and plan.steps:
        permissions.precheck(inv, plan)
    results: list[StepResult] = run.execute(plan, yes=yes)
    if dry_run:
        return results
    if json:
        done = [step_dict(r.step, plan.secrets) for r in results]
        report = {"title": plan.title, "changed": any(_writes(r) for r in results),
                  "steps": done, "notes": plan.notes, **(extra or {})}  # fmt: skip
        print(jsonlib.dumps(report, indent=2, default=str))
        return results
    for r in results:
        print(f"done: {r.step.desc or describe(r.step)}")
    return results


def _writes(result: StepResult) -> bool:
    from ..plan import PveCall

    return isinstance(result.step, PveCall) and result.step.method != "GET"
