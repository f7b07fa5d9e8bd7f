"""`inv flux.diff`: which Kustomizations to diff (from the tree), then `flux diff` for each."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CommandFailed, ConfigError

if TYPE_CHECKING:
    from ..inventory.model import Inventory
    from .plan import DiffTarget


def live_entry(inv: Inventory, repo_root: Path) -> Path:
    """The entry point the cluster's flux-system Kustomization syncs: the inventory's
    flux.path when it is a kustomize directory, else the first overlay."""
    from .validate.core import find_entries
    from .validate.render import has_kustomization

    path = repo_root / inv.flux.path
    if path.is_dir() and has_kustomization(path):
        return path
    return find_entries(repo_root / "cluster")[0]


def targets(inv: Inventory, repo_root: Path, only: str = "") -> list[DiffTarget]:
    from .plan import DiffTarget
    from .validate.api import settings_for
    from .validate.core import build_worlds

    settings = settings_for(inv, repo_root, "inventory")
    (world,) = build_worlds(settings, [live_entry(inv, repo_root)])
    found = [
        DiffTarget(ks.name, ks.namespace, ks.path)
        for ks in world.kustomizations.values()
        if not only or ks.name == only
    ]
    if not found:
        names = ", ".join(sorted(k.name for k in world.kustomizations.values()))
        raise ConfigError(f"flux.diff: no Kustomization {only!r} in the tree; valid: {names}")
    return found


def run_diff(inv: Inventory, only: str, *, dry_run: bool, json_out: bool) -> None:
    from ..inventory.loader import repo_root
    from ..run import run_cmd
    from ..taskutil import executor
    from .facts import diff_outcome
    from .plan import diff_plan

    plan = diff_plan(inv, targets(inv, repo_root(), only))
    if dry_run:
        executor(dry_run=True, json_out=json_out).execute(plan)
        return
    failed, drifted = [], []
    for step in plan.steps:
        argv = step.argv  # type: ignore[union-attr]
        proc = run_cmd(argv, timeout_s=600, check=False)
        outcome = diff_outcome(proc.returncode, proc.stdout, proc.stderr)
        if proc.stdout.strip():
            print(proc.stdout.rstrip())
        if outcome == "error":
            failed.append(
                f"{argv[3]}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f'exit {proc.returncode}'}"
            )
        elif outcome == "differs":
            drifted.append(argv[3])
    if drifted:
        print(f"drift in {len(drifted)} Kustomization(s): {', '.join(drifted)}", file=sys.stderr)
    if failed:
        raise CommandFailed(
            f"flux diff failed for {len(failed)} Kustomization(s): " + "; ".join(failed)
        )
