"""talos.discover: read a node in maintenance mode (disks, links) and propose its install disk
(or, on a flashed Pi, its ephemeral disk) and MAC for the inventory, as a diff; `--write`
applies it, a Write step of the plan (atomic: temp file, then rename)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from invoke import Context

from ...taskutil import NODE, Planned, load_inventory, plan_task


@plan_task(
    help={
        "at": "the node's address in maintenance mode (its DHCP lease, e.g. 10.0.10.153)",
        "node": NODE + "; default: the node whose MAC the machine has, else whose IP is --at",
        "write": "apply the proposed change to the inventory file",
    }
)
def discover(c: Context, at: str = "", node: str = "", write: bool = False) -> Planned:
    """Read a maintenance-mode node: propose its disk and MAC for the inventory."""
    import ipaddress

    from ... import settings
    from ...errors import ConfigError, DomumError
    from ...inventory.loader import display_path
    from ...plan import Plan, Write
    from ...tools import require_tool
    from ..ops.glue import parse_node
    from . import facts
    from .choose import propose
    from .edit import edit_node, flow, unified_diff

    try:
        ipaddress.ip_address(at)
    except ValueError:
        raise ConfigError(
            f"--at {at!r}: give the node's maintenance-mode IP address (e.g. 10.0.10.153)"
        ) from None
    inv = load_inventory()
    nid = parse_node(node, inv)
    require_tool("talosctl")  # no probe, nothing to propose: the dry-run stops here too
    hw = facts.probe_hardware(inv, at)
    if hw.error:
        raise DomumError(
            f"talosctl get disks/links --insecure at {at}: {hw.error}",
            hint="is the node in maintenance mode at that address (a fresh or reset node)?",
        )
    prop = propose(inv, hw, nid)
    path = settings.inventory_path()
    shown = display_path(path)
    text, mode = facts.read_text(path)
    new_text = edit_node(text, prop.node_id, prop.changes) if prop.changes else text
    _check_inventory(new_text, shown)
    diff = unified_diff(text, new_text, shown)
    host = inv.nodes[prop.node_id].hostname
    plan = Plan(f"record node {prop.node_id} ({host}) as found at {at}")
    plan.note(f"node {prop.node_id} ({host}): matched by {prop.how}")
    plan.notes += prop.notes
    for key, value in prop.changes.items():
        plan.note(f"nodes.{prop.node_id}.{key}: " + ("remove" if value is None else flow(value)))
    if not prop.changes:
        plan.note(f"{shown} already records what the node reports: nothing to change")
    elif write:
        plan.add(Write(str(path), new_text, mode, desc=f"update nodes.{prop.node_id} in {shown}"))
    else:
        plan.note(f"run again with --write to apply this to {shown}")

    def report(results: Sequence[Any], json_out: bool) -> None:
        if json_out:
            out = {
                "node": prop.node_id,
                "matched_by": prop.how,
                "at": at,
                "disks": [vars(d) for d in hw.disks],
                "links": [vars(x) for x in hw.links if x.physical],
                "changes": prop.changes,
                "notes": prop.notes,
                "diff": diff,
                "written": bool(results),
            }
            print(json.dumps(out, indent=2))
            return
        print(f"node {prop.node_id} ({host}) at {at}, matched by {prop.how}")
        for d in hw.disks:
            mark = "*" if prop.disk is not None and d.id == prop.disk.id else " "
            print(
                f" {mark} {d.dev_path:<14} {d.pretty_size:>8}  {d.transport or '-':<6} "
                f"{d.model or '-'}  serial {d.serial or '-'}"
            )
        for note in prop.notes:
            print(f"   {note}")
        if diff:
            sys.stdout.write(diff)
            print(
                f"written to {shown}"
                if results
                else f"apply with: inv talos.discover --at {at} --write"
            )

    return Planned(plan, inv, report=report, tools=("talosctl",))


def _check_inventory(text: str, shown: str) -> None:
    """The edited inventory must still load (model and cross-field errors)."""
    import yaml
    from pydantic import ValidationError

    from ...errors import ConfigError
    from ...inventory.loader import cross_check
    from ...inventory.model import Inventory

    try:
        inv = Inventory.model_validate(yaml.safe_load(text))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{shown}: the proposed change breaks {where}: {first['msg']}") from None
    errors = [f for f in cross_check(inv) if f.severity == "error"]
    if errors:
        raise ConfigError(f"{shown}: the proposed change breaks {errors[0].render(shown)}")


TASKS = [discover]
