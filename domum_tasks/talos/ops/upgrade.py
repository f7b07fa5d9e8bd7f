"""`talos.upgrade` planning: ids, probes and refusals in, one Planned out (tasks.py declares it).

Probes (node versions and schematics, Flux Kustomizations) only read and see the same state
in a dry-run and a real run, so both make the same plan. Registering the schematics and
recording them in schematics.lock are steps of that plan (ops/schematics.py), never done
while planning; an unreachable factory stops the run at that step unless the ids were recorded
before, and `--offline` refuses ids that were only computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import DomumError
from ...plan import Local
from ...taskutil import Planned, load_inventory


def plan_upgrade_task(
    *, node: str, wait_timeout: str, no_flux: bool, force: bool, offline: bool
) -> Planned:
    from . import facts, schematics
    from .glue import Progress, handlers, missing_tools, parse_node, probe_nodes
    from .plan import parse_duration, plan_upgrade, rolling_order, talos_node

    parse_duration(wait_timeout)  # bad input is exit 2 before anything else
    inv = load_inventory()
    nid = parse_node(node, inv)
    ids = [nid] if nid is not None and talos_node(inv, nid) else rolling_order(inv)
    tools = ("talosctl", *(() if no_flux else ("flux",)))
    schematics.check_inventory_ids(inv, ids)  # bad input first (exit 2)
    resolved = schematics.resolve(inv, ids, offline=offline)
    absent = missing_tools(*tools)  # the task ends with exit 3: no probes, no refusals
    found = {} if absent else probe_nodes(inv, ids)
    ks: list[facts.Kustomization] | None = None
    flux_err = f"{', '.join(absent)} not found" if absent else ""
    if not no_flux and not absent:
        ks, flux_err = facts.probe_kustomizations(inv)
    plan = plan_upgrade(
        inv,
        {i: r.installer for i, r in resolved.items()},
        {i: r.id for i, r in resolved.items()},
        found,
        wait_timeout=wait_timeout,
        suspend_flux=not no_flux,
        force=force,
        kustomizations=ks,
        flux_error=flux_err,
    )
    if absent:
        plan.note(f"{', '.join(absent)} not found: nothing probed; the task stops with exit 3")
    if plan.steps and ks is None and not no_flux and not absent:
        # `--all` would resume Kustomizations suspended on purpose: refuse before any node.
        raise DomumError(
            f"upgrade stopped before any node was touched: cannot list Flux Kustomizations "
            f"({flux_err or 'no answer'}), so it is unknown which ones were suspended on purpose",
            hint="check `flux get kustomizations --all-namespaces` with the inventory's "
            "kubeconfig (inv talos.kubeconfig); use --no-flux if Flux is not installed",
        )
    todo = [
        int(s.args["node"])
        for s in plan.steps
        if isinstance(s, Local) and s.action == "talos.upgrade-node"
    ]
    used = {i: resolved[i] for i in todo}  # the installers the plan pulls: registered first
    if offline:
        schematics.refuse_unrecorded_offline(used)
    plan.steps[:0] = schematics.record_steps(inv, used, first=0, use=True)
    progress = Progress()
    flux_notes = [n for n in plan.notes if n.startswith("Flux")]

    def report(results: Sequence[Any], json_out: bool) -> None:
        # nothing to do: say why; else which Kustomizations stayed as the operator left them
        lines = flux_notes if plan.steps else plan.notes
        if lines:
            print("\n".join(lines))

    def on_error(exc: DomumError) -> DomumError:
        if flux_notes:
            print("\n".join(flux_notes))
        return progress.failure_report(exc, rolling_order(inv, ids), inv)

    return Planned(
        plan,
        inv,
        {**handlers(progress), **schematics.handlers(resolved)},
        report=report,
        tools=tools,
        on_error=on_error,
    )
