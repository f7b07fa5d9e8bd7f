"""Talos config tasks: `inv talos.genconfig` (patches, secrets, machine configs, talosconfig)."""

from __future__ import annotations

from typing import Any

from invoke import Context

from ...taskutil import Planned, plan_task


@plan_task(
    yes=True,
    help={
        "rotate_secrets": "generate a NEW secrets bundle even though one exists (needs --yes; "
        "the existing talosconfig and running nodes lose trust)",
    },
)
def genconfig(c: Context, rotate_secrets: bool = False) -> Planned:
    """Render Talos patches, machine configs and the talosconfig from the inventory.

    Patches go to cluster/core/01-talos/ (committed, deterministic); machine configs and the
    talosconfig to the git-ignored clusterconfig/. The secrets bundle is created once, stored
    SOPS-encrypted, and never regenerated unless --rotate-secrets --yes. Without talosctl the
    patches are still rendered, then the task stops (exit 3) naming `inv tools.install`.
    """
    from .generate import plan_genconfig_task

    return plan_genconfig_task(rotate=rotate_secrets)


TASKS: list[Any] = [genconfig]
