"""Phases schematics and machines: register the Image Factory schematics; create and start the
Proxmox VMs (proxmox.create-vm --all --start); find every other node configured, in maintenance
mode or absent, and for an absent one say exactly what to do (or, with --wait, wait for it)."""

from __future__ import annotations

from typing import Any

from ..errors import Refused
from ..plan import Local, Plan, Wait
from . import facts
from .model import Ctx, Part, planned_of, task_planner

NODE_ANSWERS = "up.node-answers"
# Exit 4 (refused), not 1: nothing failed; the run cannot go on until a person powers on or
# flashes a machine, and a script can tell "needs hands" from "broke" (README exit codes).
RESUME = "then run `domum up` again: it resumes at the machines phase"


def schematics(ctx: Ctx) -> Part:
    from invoke import Context

    from ..talos.ops.tasks import schematic

    done, missing = facts.schematics_recorded(ctx.inv)
    part = Part("Image Factory schematics")
    part.probe["recorded"] = ", ".join(map(str, done)) or "none"
    if not missing:
        part.skip = "every Talos node's schematic id is recorded (schematics.lock or inventory)"
        return part
    part.probe["not recorded"] = ", ".join(map(str, missing))
    part.planned.append(task_planner(schematic)(Context(), node="", offline=False))
    return part


def _answers_handler(ctx: Ctx) -> dict[str, Any]:
    return {NODE_ANSWERS: lambda args: facts.node_answers(ctx.inv, int(args["node"]))}


def _wait_for(ctx: Ctx, ids: list[int], deadline_s: float, why: str) -> Any:
    plan = Plan(f"wait for {why}")
    for i in ids:
        node = ctx.inv.nodes[i]
        probe = Local(NODE_ANSWERS, {"node": i}, desc="configured or in maintenance mode")
        what = f"node {i} {node.hostname} ({node.ip}) to answer"
        plan.add(Wait(what, deadline_s, probe, ctx.options.poll_s))
    return planned_of(plan, ctx.inv, _answers_handler(ctx))


def _still_absent(ctx: Ctx, ids: list[int]) -> Any:
    """--wait ran out: the nodes still absent stop the run as they would without --wait
    (exit 4, what to do, the resume hint): it still needs hands, nothing broke."""

    def refuse(exc: Exception) -> Refused:
        states = facts.node_states(ctx.inv, ids)
        gone = [i for i in ids if states[i].state == "absent"] or ids
        todo = [what_to_do(ctx, i, states[i]) for i in gone]
        return Refused(
            f"--wait-timeout ran out ({exc}); {len(gone)} node(s) still not there:\n  "
            + "\n  ".join(todo),
            hint=RESUME,
        )

    return refuse


def vms(ctx: Ctx) -> Part:
    from invoke import Context

    from ..proxmox.vm.tasks import create_vm

    inv = ctx.inv
    ids = [i for i, n in inv.nodes.items() if n.platform == "proxmox-vm"]
    part = Part("Proxmox VMs (proxmox.create-vm --all --start)")
    if not ids:
        part.skip = "the inventory has no proxmox-vm node"
        return part
    states = facts.node_states(inv, ids)
    part.probe.update({f"{states[i].hostname}": states[i].state for i in ids})
    quiet = [i for i in ids if states[i].state == "absent"]
    made = task_planner(create_vm)(
        Context(), node=0, all=True, start=True, apply_drift=False, force=False
    )
    if made.plan.steps:
        part.planned.append(made)
    if quiet:
        # A VM Domum runs boots the Talos ISO into maintenance mode: wait for it, whether this
        # run started it or an interrupted one did (stopping here would strand the next `up`).
        ctx.booting.update(quiet)
        part.notes.append(
            "a VM that never answers: check its console in the PVE UI (boot order, the Talos ISO)"
        )
        part.planned.append(
            _wait_for(ctx, quiet, ctx.options.wait_timeout_s, "the VMs to boot Talos")
        )
    if not part.planned and not part.stop:
        part.skip = "every VM exists, runs and answers"
    return part


def what_to_do(ctx: Ctx, node_id: int, state: facts.NodeState) -> str:
    """The exact command (or ISO URL) that brings an absent node up."""
    from ..talos.schematic import node_image_urls, node_schematic_id

    inv = ctx.inv
    node = inv.nodes[node_id]
    head = f"node {node_id} {node.hostname} ({node.ip}, {node.platform}) is {state.state}"
    if state.state == "unenrolled":
        return f"{head}: {state.detail}"
    if node.is_pi:
        then = f"; then `domum pi.enroll --node {node_id}`" if node.os == "raspios" else ""
        return (
            f"{head}: flash its SD card: `domum pi.flash --node {node_id} --device /dev/sdX`, "
            f"put it in and power it on{then}"
        )
    iso = node_image_urls(inv, node, node_schematic_id(inv, node)).get("iso", "")
    return f"{head}: boot it from the Talos ISO {iso} (USB stick or PXE)"


def others(ctx: Ctx) -> Part:
    """Pis and bare-metal nodes: Domum cannot power them on; it says how, or waits."""
    inv = ctx.inv
    ids = [i for i, n in inv.nodes.items() if n.platform != "proxmox-vm"]
    part = Part("Raspberry Pis and bare-metal nodes")
    if not ids:
        part.skip = "the inventory has no Pi or bare-metal node"
        return part
    states = facts.node_states(inv, ids)
    part.probe.update({s.hostname: s.state for s in states.values()})
    absent = [i for i in ids if states[i].state in ("absent", "unenrolled")]
    if not absent:
        part.skip = "every node answers"
        return part
    todo = [what_to_do(ctx, i, states[i]) for i in absent]
    part.notes += todo
    waitable = [i for i in absent if states[i].state == "absent"]
    if ctx.options.wait and len(waitable) == len(absent):
        timeout, poll = ctx.options.wait_timeout_s, ctx.options.poll_s
        part.notes += [
            f"--wait: waiting up to {timeout:g}s for node {i} {inv.nodes[i].hostname} "
            f"({inv.nodes[i].ip}) to appear, probing every {poll:g}s"
            for i in waitable
        ]
        waiting = _wait_for(ctx, waitable, timeout, "the absent nodes to appear")
        waiting.on_error = _still_absent(ctx, waitable)
        part.planned.append(waiting)
        # the talos phase plans them as in maintenance mode, once they appear (a dry-run
        # probes them absent; the real run gets past this wait only once they answer)
        ctx.awaited.update(waitable)
        return part
    part.stop = Refused(
        f"{len(absent)} node(s) not there yet:\n  " + "\n  ".join(todo),
        hint=RESUME + (" (or add --wait to wait for them)" if waitable else ""),
    )
    return part
