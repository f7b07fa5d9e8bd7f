"""Talos day-2 tasks: schematic, apply, bootstrap, kubeconfig, health, upgrade, upgrade-k8s,
etcd-snapshot (reboot, shutdown, reset: power_tasks.py). Thin: parse args, load the inventory, probe, plan (ops_plan), execute.
"""

from __future__ import annotations

import os
from typing import Any

from invoke import Context

from ...taskutil import ALL, DRY_RUN, JSON, NODE, Planned, domum_task, load_inventory, plan_task

WAIT = "how long talosctl health waits for the cluster (Go duration, e.g. 10m)"


def _require(dry_run: bool, *tools: str) -> None:
    """A real run needs its CLIs: exit 3 at once, before any probe, retry or file (a dry run
    plans without them, as for a fresh cluster)."""
    if dry_run:
        return
    from ...tools import require_tool

    for name in tools:
        require_tool(name)


def _executor(dry_run: bool, json: bool, inv: Any, progress: Any = None) -> Any:
    from ...taskutil import executor
    from .glue import handlers

    return executor(dry_run=dry_run, json_out=json, inventory=inv, handlers=handlers(progress))


@domum_task(
    help={
        "node": NODE + "; default: every Talos node",
        "json": "print the schematics, ids and URLs as JSON",
        "offline": "do not ask the Image Factory: use the inventory id, the lock file or compute it",
        "verbose": "also show each node's schematic YAML",
        "dry_run": DRY_RUN,
    }
)
def schematic(
    c: Context,
    node: str = "",
    json: bool = False,
    offline: bool = False,
    verbose: bool = False,
    dry_run: bool = False,
) -> None:
    """Show each node's Image Factory schematic, its id, installer and image URLs."""
    from ...plan import Local, Plan
    from .glue import parse_node, resolve_schematics
    from .plan import talos_node

    inv = load_inventory()
    nid = parse_node(node, inv)
    ids = [nid] if nid is not None and talos_node(inv, nid) else list(inv.talos_nodes)
    if dry_run:
        plan = Plan("resolve Image Factory schematic ids").add(
            Local(
                "talos.schematic-resolve",
                {"nodes": ids, "factory": inv.cluster.image_factory, "offline": offline},
                desc="POST /schematics per distinct schematic; record answers in the lock",
            )
        )
        _executor(True, json, inv).execute(plan)
        return
    res = resolve_schematics(inv, ids, offline=offline, write_lock=not offline)
    if json:
        import json as _json

        print(_json.dumps([vars(r) for r in res.values()], indent=2))
        return
    print(f"Image Factory schematics (Talos {inv.cluster.talos_version})")
    for r in res.values():
        print(schematic_block(r, verbose=verbose))


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


@domum_task(
    help={
        "node": NODE,
        "all": ALL + " (control planes first)",
        "insecure": "node is in maintenance mode (no client certificate yet)",
        "at": "with --insecure: the node's current (DHCP) address, when it is not the "
        "inventory IP (no DHCP reservation)",
        "mode": "auto | no-reboot | reboot | staged | try",
        "dry_run": DRY_RUN + "; on a running node also talosctl's own apply-config --dry-run diff",
        "json": JSON,
    }
)
def apply(
    c: Context,
    node: str = "",
    all: bool = False,
    insecure: bool = False,
    at: str = "",
    mode: str = "auto",
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Apply generated machine configs to one node or all nodes."""
    from ...errors import ConfigError
    from .glue import existing_files, parse_node, show_config_diffs
    from .plan import config_path, plan_apply

    _require(dry_run, "talosctl")
    inv = load_inventory()
    nid = parse_node(node, inv)
    if (nid is None) == (not all):
        raise ConfigError("give exactly one of --node N or --all")
    ids: list[int] = list(inv.talos_nodes) if all or nid is None else [nid]
    paths = [config_path(inv, inv.node(i)) for i in ids]
    have = existing_files(paths)
    plan = plan_apply(inv, ids, insecure=insecure, mode=mode, existing=have, at=at)
    missing = [n for n in plan.notes if "does not exist" in n]
    if missing and not dry_run:
        raise ConfigError(missing[0])
    _executor(dry_run, json, inv).execute(plan)
    if dry_run and not insecure and not json:
        show_config_diffs(inv, [i for i in ids if config_path(inv, inv.nodes[i]) in have], mode)


@domum_task(
    help={
        "deadline": "keep retrying the bootstrap this long (e.g. 10m)",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def bootstrap(c: Context, deadline: str = "10m", dry_run: bool = False, json: bool = False) -> None:
    """Bootstrap etcd on the first control plane (no-op if already bootstrapped)."""
    from . import facts
    from .plan import ALREADY_BOOTSTRAPPED as ALREADY
    from .plan import first_controlplane, parse_duration, plan_bootstrap

    _require(dry_run, "talosctl")
    inv = load_inventory()
    seconds = parse_duration(deadline, "--deadline")
    first_controlplane(inv)  # a clear error when there is none
    members, err = facts.probe_etcd_members_any(inv)
    plan = plan_bootstrap(inv, members, err, seconds)
    if not dry_run and plan.notes:  # the assumption made (dry runs show notes themselves)
        print("\n".join(plan.notes))
    results = _executor(dry_run, json, inv).execute(plan)
    if any(ALREADY in r.stderr for r in results):
        print(f"already bootstrapped (talosctl answered {ALREADY}): nothing was changed")


@plan_task(help={"out": "where to write the kubeconfig (default: inventory cluster.kubeconfig)"})
def kubeconfig(c: Context, out: str = "") -> Planned:
    """Fetch the cluster's admin kubeconfig."""
    from .plan import plan_kubeconfig
    from .glue import handlers

    inv = load_inventory()
    # A path the user typed is relative to where they typed it; commands run from the repo.
    target = os.path.abspath(os.path.expanduser(out)) if out else inv.cluster.kubeconfig
    plan = plan_kubeconfig(inv, target)
    return Planned(plan, inv, handlers(None), tools=("talosctl",))


@domum_task(
    help={"wait_timeout": WAIT, "dry_run": DRY_RUN, "json": JSON + " (the per-node summary)"}
)
def health(
    c: Context, wait_timeout: str = "10m", dry_run: bool = False, json: bool = False
) -> None:
    """Check cluster health, then show version and readiness per node."""
    from ...console import print_table
    from ...errors import DomumError
    from .glue import probe_nodes
    from .plan import plan_health

    _require(dry_run, "talosctl")
    inv = load_inventory()
    plan = plan_health(inv, wait_timeout)
    failure: DomumError | None = None
    try:
        _executor(dry_run, json, inv).execute(plan)
    except DomumError as exc:
        failure = exc
    if dry_run:
        return
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
        json_out=json,
    )
    if failure is not None:
        raise failure


@domum_task(
    help={
        "node": NODE + "; default: every Talos node, control planes first",
        "wait_timeout": WAIT + "; also the per-node upgrade timeout",
        "no_flux": "do not suspend/resume Flux (e.g. before Flux is installed)",
        "force": "upgrade even nodes already at the target version and schematic",
        "offline": "do not ask the Image Factory for schematic ids",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def upgrade(
    c: Context,
    node: str = "",
    wait_timeout: str = "10m",
    no_flux: bool = False,
    force: bool = False,
    offline: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Rolling Talos upgrade, one node at a time, health-gated."""
    from ...errors import DomumError
    from . import facts
    from .glue import Progress, parse_node, probe_nodes, resolve_schematics
    from .plan import plan_upgrade, rolling_order, talos_node

    _require(dry_run, "talosctl", *(() if no_flux else ("flux",)))
    inv = load_inventory()
    nid = parse_node(node, inv)
    ids = [nid] if nid is not None and talos_node(inv, nid) else rolling_order(inv)
    res = resolve_schematics(inv, ids, offline=offline, write_lock=not dry_run and not offline)
    found = probe_nodes(inv, ids)
    ks, flux_err = (None, "") if no_flux else facts.probe_kustomizations(inv)
    plan = plan_upgrade(
        inv,
        {i: r.installer for i, r in res.items()},
        {i: r.id for i, r in res.items()},
        found,
        wait_timeout=wait_timeout,
        suspend_flux=not no_flux,
        force=force,
        kustomizations=ks,
        flux_error=flux_err,
    )
    if not plan.steps and not (dry_run and json):
        print("\n".join(plan.notes))
        return
    if ks is None and not no_flux and not dry_run:
        # `--all` would resume Kustomizations suspended on purpose: refuse before any node.
        raise DomumError(
            f"upgrade stopped before any node was touched: cannot list Flux Kustomizations "
            f"({flux_err or 'no answer'}), so it is unknown which ones were suspended on purpose",
            hint="check `flux get kustomizations --all-namespaces` with the inventory's "
            "kubeconfig (inv talos.kubeconfig); use --no-flux if Flux is not installed",
        )
    flux_notes = [n for n in plan.notes if n.startswith("Flux")]
    if flux_notes and not dry_run:  # which Kustomizations stay as the operator left them
        print("\n".join(flux_notes))
    progress = Progress()
    try:
        _executor(dry_run, json, inv, progress).execute(plan)
    except DomumError as exc:
        raise progress.failure_report(exc, rolling_order(inv, ids), inv) from None


@domum_task(help={"dry_run": DRY_RUN, "json": JSON})
def upgrade_k8s(c: Context, dry_run: bool = False, json: bool = False) -> None:
    """Upgrade Kubernetes to the inventory's kubernetes_version."""
    from .plan import plan_upgrade_k8s

    _require(dry_run, "talosctl")
    inv = load_inventory()
    _executor(dry_run, json, inv).execute(plan_upgrade_k8s(inv))


@domum_task(
    help={
        "out": "snapshot file to write (verified before it gets this name)",
        "node": NODE + " of a control plane; default: the first one",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def etcd_snapshot(
    c: Context, out: str = "", node: str = "", dry_run: bool = False, json: bool = False
) -> None:
    """Save and verify an etcd snapshot from one control plane."""
    from ...errors import ConfigError
    from .plan import plan_etcd_snapshot

    if not out:
        raise ConfigError("--out PATH is required: where to write the snapshot")
    from .glue import parse_node

    _require(dry_run, "talosctl")
    inv = load_inventory()
    # `--out=~/x` reaches us unexpanded (the shell expands ~ only at the start of a word)
    plan = plan_etcd_snapshot(inv, os.path.abspath(os.path.expanduser(out)), parse_node(node, inv))
    _executor(dry_run, json, inv).execute(plan)


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
