"""Talos day-2 tasks: schematic, apply, bootstrap, kubeconfig, health, upgrade, upgrade-k8s,
etcd-snapshot (reboot, shutdown, reset: power_tasks.py). Declarations: each validates its
options, loads the inventory, probes (read-only) and returns its plan; taskutil.plan_task
prints or executes exactly that plan.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from invoke import Context

from ...taskutil import ALL, NODE, Planned, load_inventory, plan_task

WAIT = "how long talosctl health waits for the cluster (Go duration, e.g. 10m)"


def _planned(plan: Any, inv: Any, *tools: str, **kw: Any) -> Planned:
    """The plan with every ops Local handler (the dry-run's executor checks them too)."""
    from .glue import handlers

    return Planned(plan, inv, handlers(), tools=tools, **kw)


@plan_task(
    help={
        "node": NODE + "; default: every Talos node",
        "json": "print the schematics, ids and URLs as JSON (with --dry-run: the plan)",
        "offline": "do not ask the Image Factory: use the inventory id, the lock file or compute it",
        "verbose": "also show each node's schematic YAML",
    }
)
def schematic(c: Context, node: str = "", offline: bool = False, verbose: bool = False) -> Planned:
    """Show each node's Image Factory schematic, its id, installer and image URLs."""
    from ...plan import Plan
    from . import schematics
    from .glue import handlers, parse_node
    from .plan import talos_node

    inv = load_inventory()
    nid = parse_node(node, inv)
    ids = [nid] if nid is not None and talos_node(inv, nid) else list(inv.talos_nodes)
    resolved = schematics.resolve(inv, ids, offline=offline)
    plan = Plan("register Image Factory schematics and record their ids")
    plan.add(*schematics.record_steps(inv, resolved, first=0))
    if offline:
        plan.note("--offline: ids from the inventory, the lock file or computed; nothing sent")

    def report(results: Sequence[Any], json_out: bool) -> None:
        rows = schematics.after_run(resolved, schematics.confirmed(results))
        if json_out:
            import json

            print(json.dumps([vars(r) for r in rows], indent=2))
            return
        print(f"Image Factory schematics (Talos {inv.cluster.talos_version})")
        for r in rows:
            print(schematic_block(r, verbose=verbose))

    return Planned(plan, inv, {**handlers(), **schematics.handlers(resolved)}, report=report)


def schematic_block(r: Any, *, verbose: bool = False) -> str:
    """One node's schematic as lines, ids and URLs in full (a table column would cut them)."""
    lines = [
        "",
        f"node {r.node_id}  {r.hostname}  ({r.platform})",
        f"  schematic  {r.id}  ({r.source})",
        f"  installer  {r.installer}",
        *(f"  {kind:<9}  {url}" for kind, url in r.images.items()),
    ]
    if r.note and r.source != "factory":
        lines.append(f"  note       {r.note}")
    if verbose:
        lines += ["  yaml:", *(f"    {line}" for line in r.schematic_yaml.rstrip().splitlines())]
    return "\n".join(lines)


@plan_task(
    help={
        "node": NODE,
        "all": ALL + " (control planes first)",
        "insecure": "node is in maintenance mode (no client certificate yet)",
        "at": "with --insecure: the node's current (DHCP) address, when it is not the "
        "inventory IP (no DHCP reservation)",
        "mode": "auto | no-reboot | reboot | staged | try",
    }
)
def apply(
    c: Context, node: str = "", all: bool = False, insecure: bool = False, at: str = "",
    mode: str = "auto",
) -> Planned:  # fmt: skip
    """Apply generated machine configs to one node or all nodes.

    On a running node the plan's notes show talosctl's own apply-config --dry-run diff.
    """
    from ...errors import ConfigError
    from .glue import config_diff_notes, existing_files, missing_tools, parse_node
    from .plan import APPLY_MODES, config_path, plan_apply

    if mode not in APPLY_MODES:  # before the inventory, the tools or any probe
        raise ConfigError(f"--mode {mode!r}: valid modes are {', '.join(APPLY_MODES)}")
    inv = load_inventory()
    nid = parse_node(node, inv)
    if (nid is None) == (not all):
        raise ConfigError("give exactly one of --node N or --all")
    ids: list[int] = list(inv.talos_nodes) if all or nid is None else [nid]
    paths = [config_path(inv, inv.node(i)) for i in ids]
    have = existing_files(paths)
    plan = plan_apply(inv, ids, insecure=insecure, mode=mode, existing=have, at=at)
    if missing_tools("talosctl"):
        return _planned(plan, inv, "talosctl")
    missing = [n for n in plan.notes if "does not exist" in n]
    if missing:
        raise ConfigError(missing[0])
    if not insecure:
        running = [i for i in ids if config_path(inv, inv.nodes[i]) in have]
        plan.notes += config_diff_notes(inv, running, mode)
    return _planned(plan, inv, "talosctl")


@plan_task(help={"deadline": "keep retrying the bootstrap this long (e.g. 10m)"})
def bootstrap(c: Context, deadline: str = "10m") -> Planned:
    """Bootstrap etcd on the first control plane (no-op if already bootstrapped)."""
    from . import facts
    from .plan import ALREADY_BOOTSTRAPPED as ALREADY
    from .plan import first_controlplane, parse_duration, plan_bootstrap

    seconds = parse_duration(deadline, "--deadline")
    inv = load_inventory()
    first_controlplane(inv)  # a clear error when there is none
    members, err = facts.probe_etcd_members_any(inv)
    plan = plan_bootstrap(inv, members, err, seconds)

    def report(results: Sequence[Any], json_out: bool) -> None:
        if plan.notes:  # the assumption made (dry runs show notes with the plan)
            print("\n".join(plan.notes))
        if any(ALREADY in r.stderr for r in results):
            print(f"already bootstrapped (talosctl answered {ALREADY}): nothing was changed")

    return _planned(plan, inv, "talosctl", report=report)


@plan_task(help={"out": "where to write the kubeconfig (default: inventory cluster.kubeconfig)"})
def kubeconfig(c: Context, out: str = "") -> Planned:
    """Fetch the cluster's admin kubeconfig."""
    from .plan import plan_kubeconfig

    inv = load_inventory()
    # A path the user typed is relative to where they typed it; commands run from the repo.
    target = os.path.abspath(os.path.expanduser(out)) if out else inv.cluster.kubeconfig
    return _planned(plan_kubeconfig(inv, target), inv, "talosctl")


@plan_task(
    help={"wait_timeout": WAIT, "json": "the per-node summary as JSON (with --dry-run: the plan)"}
)
def health(c: Context, wait_timeout: str = "10m") -> Planned:
    """Check cluster health, then show version and readiness per node."""
    from .plan import parse_duration, plan_health

    parse_duration(wait_timeout)
    inv = load_inventory()
    plan = plan_health(inv, wait_timeout)

    def report(results: Sequence[Any], json_out: bool) -> None:
        health_report(inv, results, json_out)

    return _planned(plan, inv, "talosctl", report=report)


def health_report(inv: Any, results: Sequence[Any], json_out: bool) -> None:
    """The per-node table, also when the health check failed (then exit 1 after it)."""
    import shlex

    from ...console import print_table
    from ...errors import CommandFailed
    from .glue import probe_nodes

    found = probe_nodes(inv, inv.talos_nodes)
    rows = [
        (
            i,
            f.hostname,
            inv.nodes[i].role,
            f.version or "down",
            f.stage or "-",
            "ok" if f.ready else ("down" if not f.reachable else "not ready"),
            (f.schematic or "-")[:12],
            f.error or "",
        )
        for i, f in found.items()
    ]
    print_table(
        "Talos nodes",
        ("node", "hostname", "role", "version", "stage", "ready", "schematic", "error"),
        rows,
        json_out=json_out,
    )
    failed = next((r for r in results if not r.ok), None)
    if failed is not None:  # the check's failure is data (Cmd check=False): table first
        text = (failed.stderr or failed.stdout).strip().splitlines()
        if not isinstance(failed.value, int):  # timed out: the executor said so
            raise CommandFailed(text[0] if text else "talosctl health failed")
        raise CommandFailed(
            f"exit code {failed.value}: {shlex.join(failed.step.argv)}",
            stderr_tail="\n".join(text[-12:]),
            returncode=failed.value,
        )


@plan_task(
    help={
        "node": NODE + "; default: every Talos node, control planes first",
        "wait_timeout": WAIT + "; also the per-node upgrade timeout",
        "no_flux": "do not suspend/resume Flux (e.g. before Flux is installed)",
        "force": "upgrade even nodes already at the target version and schematic",
        "offline": "do not ask the Image Factory: use only schematic ids recorded in "
        "schematics.lock or the inventory",
    }
)
def upgrade(
    c: Context, node: str = "", wait_timeout: str = "10m", no_flux: bool = False,
    force: bool = False, offline: bool = False,
) -> Planned:  # fmt: skip
    """Rolling Talos upgrade, one node at a time, health-gated."""
    from .upgrade import plan_upgrade_task

    return plan_upgrade_task(
        node=node, wait_timeout=wait_timeout, no_flux=no_flux, force=force, offline=offline
    )


@plan_task()
def upgrade_k8s(c: Context) -> Planned:
    """Upgrade Kubernetes to the inventory's kubernetes_version."""
    from .plan import plan_upgrade_k8s

    inv = load_inventory()
    return _planned(plan_upgrade_k8s(inv), inv, "talosctl")


@plan_task(
    help={
        "out": "snapshot file to write (verified before it gets this name)",
        "node": NODE + " of a control plane; default: the first one",
    }
)
def etcd_snapshot(c: Context, out: str = "", node: str = "") -> Planned:
    """Save and verify an etcd snapshot from one control plane."""
    from .glue import parse_node, snapshot_target
    from .plan import plan_etcd_snapshot

    target = snapshot_target(out)
    inv = load_inventory()
    plan = plan_etcd_snapshot(inv, target, parse_node(node, inv))
    return _planned(plan, inv, "talosctl")  # talos.verify-snapshot says "snapshot OK"


TASKS = [
    schematic,
    apply,
    bootstrap,
    kubeconfig,
    health,
    upgrade,
    upgrade_k8s,
    etcd_snapshot,
]
