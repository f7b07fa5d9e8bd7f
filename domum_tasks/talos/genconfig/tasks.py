"""Talos config tasks: `inv talos.genconfig` (patches, secrets, machine configs, talosconfig)."""

from __future__ import annotations

from typing import Any

from invoke import Context

from ...taskutil import DRY_RUN, JSON, YES, domum_task


@domum_task(
    help={
        "rotate_secrets": "generate a NEW secrets bundle even though one exists (needs --yes; "
        "the existing talosconfig and running nodes lose trust)",
        "yes": YES,
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def genconfig(
    c: Context,
    rotate_secrets: bool = False,
    yes: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Render Talos patches, machine configs and the talosconfig from the inventory.

    Patches go to cluster/core/01-talos/ (committed, deterministic); machine configs and the
    talosconfig to the git-ignored clusterconfig/. The secrets bundle is created once, stored
    SOPS-encrypted, and never regenerated unless --rotate-secrets --yes. Without talosctl the
    patches are still rendered, then the task stops (exit 3) naming `inv tools.install`.
    """
    from .generate import run_genconfig

    run_genconfig(rotate=rotate_secrets, yes=yes, dry_run=dry_run, json_out=json)


TASKS: list[Any] = [genconfig]
