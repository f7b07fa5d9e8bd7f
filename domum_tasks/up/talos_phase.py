"""Phase talos: genconfig; apply to every node in maintenance mode; bootstrap etcd once (the
probe asks etcd for members first, and talosctl answers AlreadyExists to a second bootstrap,
so a killed run never bootstraps twice); health; the kubeconfig.

Each part probes when its turn comes, after the previous part ran: on a dry-run the later
parts are probed before the earlier ones' writes, and say so (`depends`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DomumError
from ..plan import Plan
from . import facts
from .model import Builder, Ctx, Part, planned_of

TOOLS = ("talosctl",)


def _ops(plan: Plan, ctx: Ctx) -> Any:
    from ..talos.ops.glue import handlers

    return planned_of(plan, ctx.inv, handlers(), TOOLS)


ASSUMED = "assumed: "


def _states(ctx: Ctx) -> dict[int, facts.NodeState]:
    """Talos nodes' states; a VM this run started and that is not up yet is assumed to boot
    into maintenance mode, and so is a node --wait waits for (a flashed Pi, a mini PC booted
    from the ISO): the machines phase waited for them on a real run."""
    found = facts.node_states(ctx.inv, list(ctx.inv.talos_nodes))
    for i in ctx.booting | ctx.awaited:
        if i in found and found[i].state == "absent":
            why = "booting" if i in ctx.booting else "once it appears (--wait)"
            found[i] = facts.NodeState(i, found[i].hostname, "maintenance", ASSUMED + why)
    return found


def _shown(s: facts.NodeState) -> str:
    """A probe's answer as shown: an assumed state says so (a dry-run probed it absent)."""
    return f"{s.state} ({s.detail})" if s.detail.startswith(ASSUMED) else s.state


def _configs(ctx: Ctx) -> list[str]:
    from ..talos.ops.plan import config_path

    inv = ctx.inv
    return [config_path(inv, n) for n in inv.talos_nodes.values()] + [inv.cluster.talosconfig]


def _done(ctx: Ctx) -> tuple[bool, dict[str, str]]:
    states = _states(ctx)
    members, err = facts.etcd_members(ctx.inv)
    kube = facts.repo_file(ctx.inv.cluster.kubeconfig).is_file()
    probe = {s.hostname: _shown(s) for s in states.values()}
    probe["etcd members"] = ", ".join(members) if members else (err or "none")
    probe["kubeconfig"] = "present" if kube else "missing"
    every = all(s.state == "configured" for s in states.values())
    return every and bool(members) and kube, probe


def overview(ctx: Ctx) -> Part:
    done, probe = _done(ctx)
    ctx.flags["talos done"] = done  # nothing runs before the parts below read it
    part = Part("Talos cluster", probe=probe)
    if done:
        part.skip = "every node configured, etcd has members, the kubeconfig is there"
    return part


def genconfig(ctx: Ctx) -> Part:
    from ..talos.genconfig.generate import plan_genconfig_task

    part = Part("machine configs (talos.genconfig)")
    if ctx.flags.get("talos done"):
        part.skip = "the cluster runs"
        return part
    missing = [p for p in _configs(ctx) if not facts.repo_file(p).is_file()]
    part.probe["configs"] = f"missing: {', '.join(missing)}" if missing else "present"
    if not missing and not ctx.changed:
        part.skip = "every machine config and the talosconfig exist"
        return part
    part.planned.append(plan_genconfig_task(rotate=False))
    return part


def apply(ctx: Ctx) -> Part:
    from ..talos.ops.plan import plan_apply

    part = Part("apply configs to nodes in maintenance mode (talos.apply --insecure)")
    part.depends = "the machine configs genconfig writes above"
    if ctx.flags.get("talos done"):
        part.skip = "the cluster runs"
        return part
    states = _states(ctx)
    part.probe.update({s.hostname: _shown(s) for s in states.values()})
    # The machines phase found every node answering: one silent now is most likely rebooting
    # after an apply-config an interrupted run sent. Wait for it rather than strand the run.
    absent = [i for i, s in states.items() if s.state == "absent"]
    todo = [i for i, s in states.items() if s.state == "maintenance"]
    if absent:
        names = ", ".join(states[i].hostname for i in absent)
        part.notes.append(f"{names}: not answering (rebooting?): waited for below")
    if not todo and not absent:
        part.skip = "no node in maintenance mode"
        return part
    if todo:
        # genconfig (the part above) writes the files; the planner only notes a missing one
        plan = plan_apply(ctx.inv, todo, insecure=True, existing=_configs(ctx))
        part.planned.append(_ops(plan, ctx))
    part.planned.append(_wait_configured(ctx, sorted(todo + absent)))
    return part


CONFIGURED = "up.node-configured"


def _wait_configured(ctx: Ctx, ids: list[int]) -> Any:
    """After apply-config a node installs and reboots: bootstrap and health need it back,
    answering with the cluster's certificate (each node is probed, so each is seen up)."""
    from ..plan import Local, Wait

    def configured(args: Any) -> facts.NodeState:
        found = facts.talos_state(ctx.inv, int(args["node"]))
        if found.state != "configured":
            raise DomumError(f"{found.hostname} is {found.state} ({found.detail or 'rebooting'})")
        return found

    plan = Plan("wait for the nodes to reboot with their config")
    for i in ids:
        node = ctx.inv.nodes[i]
        probe = Local(CONFIGURED, {"node": i}, desc="talosctl version with the talosconfig")
        what = f"{node.hostname} ({node.ip}) to answer configured"
        plan.add(Wait(what, ctx.options.wait_timeout_s, probe, ctx.options.poll_s))
    return planned_of(plan, ctx.inv, {CONFIGURED: configured}, TOOLS)


def bootstrap(ctx: Ctx) -> Part:
    from ..talos.ops.plan import parse_duration, plan_bootstrap

    part = Part("bootstrap etcd once (talos.bootstrap)")
    part.depends = "the nodes configured above (their etcd answers only then)"
    members, err = facts.etcd_members(ctx.inv)
    part.probe["etcd members"] = ", ".join(members) if members else (err or "none")
    if members:
        part.skip = "etcd already has members: never bootstrapped twice"
        return part
    seconds = parse_duration(ctx.options.talos_timeout)
    part.planned.append(_ops(plan_bootstrap(ctx.inv, members, err, seconds), ctx))
    return part


def health(ctx: Ctx) -> Part:
    from ..talos.ops.plan import health_cmd

    part = Part("cluster health (talos.health)")
    if ctx.flags.get("talos done"):
        part.skip = "the cluster runs (talos.health checks it in depth)"
        return part
    plan = Plan("cluster health").add(health_cmd(ctx.inv, ctx.options.talos_timeout))
    part.planned.append(_ops(plan, ctx))
    return part


def kubeconfig(ctx: Ctx) -> Part:
    from ..talos.ops.plan import plan_kubeconfig

    inv = ctx.inv
    part = Part("admin kubeconfig (talos.kubeconfig)")
    path = facts.repo_file(inv.cluster.kubeconfig)
    part.probe["kubeconfig"] = "present" if path.is_file() else "missing"
    if path.is_file():
        part.skip = f"{inv.cluster.kubeconfig} exists"
        return part
    part.planned.append(_ops(plan_kubeconfig(inv, str(Path(path))), ctx))
    return part


PARTS: list[Builder] = [overview, genconfig, apply, bootstrap, health, kubeconfig]
