"""Phase flux: the sops-age Secret and `flux bootstrap` (flux.bootstrap's own plan), then wait
until every Kustomization and HelmRelease is Ready: a live table on a terminal; at the deadline
the ones still failing, with their controller's message (exit 1)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import DomumError
from ..plan import Local, Plan, Step
from . import facts
from .model import Builder, Ctx, Part, planned_of, task_planner

READY = "up.flux-ready"


def bootstrap(ctx: Ctx) -> Part:
    from invoke import Context

    from ..flux.tasks import bootstrap as flux_bootstrap

    part = Part("sops-age Secret and flux bootstrap (flux.bootstrap)")
    part.depends = "the kubeconfig the talos phase fetches"
    rows, err = facts.flux_rows(ctx.inv)
    if facts.flux_installed(rows):
        part.probe["flux"] = "installed (Kustomization flux-system/flux-system exists)"
        return _secret_only(ctx, part, task_planner(flux_bootstrap)(Context()))
    part.probe["flux"] = f"not installed ({err})" if err else "not installed"
    part.planned.append(task_planner(flux_bootstrap)(Context()))
    return part


def _secret_only(ctx: Ctx, part: Part, made: Any) -> Part:
    """Flux runs: only the `sops-age` Secret may be missing (deleted, or a bootstrap made by
    hand); then flux.bootstrap's own Secret step, and nothing else, runs."""
    from dataclasses import replace

    from ..flux.sops_age import ACTION

    steps: list[Step] = [s for s in made.plan.steps if isinstance(s, Local) and s.action == ACTION]
    if not steps:
        part.skip = "Flux is bootstrapped (the tree needs no age key)"
        return part
    there = facts.sops_age_secret(ctx.inv)
    shown = {True: "present", False: "missing", None: "unknown (kubectl could not tell)"}
    part.probe["sops-age Secret"] = shown[there]
    if there is not False:
        part.skip = "Flux is bootstrapped"
        return part
    plan = Plan("the sops-age Secret", steps=steps, notes=list(made.plan.notes))
    part.planned.append(replace(made, plan=plan))
    return part


def ready(ctx: Ctx) -> Part:
    part = Part("every Kustomization and HelmRelease Ready")
    part.depends = "flux bootstrap above"
    rows, err = facts.flux_rows(ctx.inv)
    if rows is not None and facts.flux_installed(rows):
        bad = [r for r in rows if not r.ok]
        part.probe["ready"] = f"{len(rows) - len(bad)}/{len(rows)}"
        if not bad:
            part.skip = "every Kustomization and HelmRelease is Ready"
            return part
    else:
        part.probe["ready"] = f"unknown ({err or 'Flux not installed'})"
    deadline = ctx.options.flux_timeout_s
    plan = Plan("wait for Flux to reconcile").add(
        Local(
            READY,
            {"deadline_s": deadline, "interval_s": ctx.options.poll_s},
            desc=f"poll `flux get kustomizations|helmreleases -A` until all Ready "
            f"(at most {deadline:g}s)",
        )
    )
    part.planned.append(planned_of(plan, ctx.inv, {READY: waiter(ctx)}, ("flux",)))
    return part


def _table(rows: Sequence[facts.FluxRow]) -> Any:
    from rich.table import Table

    table = Table("kind", "namespace/name", "ready", "message", title="Flux")
    for r in rows:
        table.add_row(r.kind, f"{r.namespace}/{r.name}", r.ready, r.message[:80])
    return table


def waiter(ctx: Ctx, sleep: Any = time.sleep, clock: Any = time.monotonic) -> Any:
    def wait(args: Mapping[str, Any]) -> int:
        end = clock() + float(args["deadline_s"])
        live = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            live = Live(console=Console(file=sys.stderr), transient=False)
            live.start()
        try:
            while True:
                rows, err = facts.flux_rows(ctx.inv)
                if live is not None and rows:
                    live.update(_table(rows))
                if rows and facts.flux_installed(rows) and all(r.ok for r in rows):
                    return len(rows)
                if clock() >= end:
                    raise _timed_out(rows, err, float(args["deadline_s"]))
                sleep(float(args["interval_s"]))
        finally:
            if live is not None:
                live.stop()

    return wait


def _timed_out(rows: Sequence[facts.FluxRow] | None, err: str, deadline: float) -> DomumError:
    if rows is None:
        return DomumError(f"Flux not listable after {deadline:g}s: {err}")
    bad = [r for r in rows if not r.ok]
    lines = [f"{r.kind} {r.namespace}/{r.name}: {r.message or r.ready or 'not ready'}" for r in bad]
    return DomumError(
        f"{len(bad)} of {len(rows)} Flux object(s) not Ready after {deadline:g}s:\n  "
        + "\n  ".join(lines or ["flux-system Kustomization missing"]),
        hint="fix them (`domum flux.status`), then run `domum up` again: it resumes at flux",
    )


PARTS: list[Builder] = [bootstrap, ready]
