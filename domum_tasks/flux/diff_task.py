"""`inv flux.diff`: which Kustomizations to diff (from the tree), and what the diffs say."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CommandFailed, ConfigError
from ..plan import Cmd

if TYPE_CHECKING:
    from ..inventory.model import Inventory
    from ..run import StepResult
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


def report_diff(results: list[StepResult], json_out: bool) -> None:
    """After the plan ran: each diff on stdout, the drift summary on stderr; exit 1 only when
    flux itself failed (`flux diff` exits 1 for drift too: the outcome tells them apart)."""
    from .facts import diff_outcome

    failed, drifted = [], []
    for r in results:
        assert isinstance(r.step, Cmd)
        name = r.step.argv[3]
        code = r.value if isinstance(r.value, int) else -1
        outcome = diff_outcome(code, r.stdout, r.stderr)
        if r.stdout.strip():
            print(r.stdout.rstrip())
        if outcome == "error":
            lines = r.stderr.strip().splitlines()
            failed.append(f"{name}: {lines[-1] if lines else f'exit {code}'}")
        elif outcome == "differs":
            drifted.append(name)
    if drifted:
        print(f"drift in {len(drifted)} Kustomization(s): {', '.join(drifted)}", file=sys.stderr)
    if failed:
        raise CommandFailed(
            f"flux diff failed for {len(failed)} Kustomization(s): " + "; ".join(failed)
        )
