"""Tasks of the flux namespace: bootstrap, reconcile, suspend/resume and status, via the flux CLI."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from invoke import Collection, Context

from ..taskutil import DRY_RUN, JSON, domum_task, executor, load_inventory

if TYPE_CHECKING:
    pass

NAME = "Kustomization name (default: every Kustomization for suspend/resume, flux-system for reconcile)"


@domum_task(help={"dry_run": DRY_RUN, "json": JSON})
def bootstrap(c: Context, dry_run: bool = False, json: bool = False) -> None:
    """Install Flux on the cluster and point it at the inventory's Git repository."""
    from ..errors import ConfigError
    from ..secrets import load as load_secrets
    from .plan import TOKEN_ENV, TOKEN_SECRET_KEY, bootstrap_plan

    inv = load_inventory()
    env_var = TOKEN_ENV[inv.flux.provider]
    token = os.environ.get(env_var) or load_secrets().get(TOKEN_SECRET_KEY)
    if not token and not dry_run:
        raise ConfigError(
            f"no Git token for flux bootstrap: set {env_var}, or {TOKEN_SECRET_KEY} in "
            "config/secrets.sops.yaml (env DOMUM_FLUX_GIT_TOKEN)"
        )
    executor(dry_run=dry_run, json_out=json).execute(bootstrap_plan(inv, token or "<git token>"))


@domum_task(
    help={
        "name": NAME,
        "no_source": "do not fetch the Git source first",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def reconcile(
    c: Context,
    name: str = "flux-system",
    no_source: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Reconcile a Kustomization now, fetching its Git source first."""
    from .plan import reconcile_plan

    plan = reconcile_plan(load_inventory(), name, with_source=not no_source)
    executor(dry_run=dry_run, json_out=json).execute(plan)


@domum_task(help={"name": NAME, "dry_run": DRY_RUN, "json": JSON})
def suspend(c: Context, name: str = "", dry_run: bool = False, json: bool = False) -> None:
    """Suspend Flux Kustomizations (all of them unless --name)."""
    from .plan import suspend_plan

    executor(dry_run=dry_run, json_out=json).execute(suspend_plan(load_inventory(), name))


@domum_task(help={"name": NAME, "dry_run": DRY_RUN, "json": JSON})
def resume(c: Context, name: str = "", dry_run: bool = False, json: bool = False) -> None:
    """Resume Flux Kustomizations (all of them unless --name)."""
    from .plan import resume_plan

    executor(dry_run=dry_run, json_out=json).execute(resume_plan(load_inventory(), name))


@domum_task
def status(c: Context) -> None:
    """Show Git sources, Kustomizations and HelmReleases with their ready state."""
    from ..run import run_cmd
    from .plan import status_argvs

    for argv in status_argvs(load_inventory()):
        print(run_cmd(argv, timeout_s=60).stdout.rstrip())


@domum_task(help={"dry_run": DRY_RUN, "json": JSON})
def render_settings(c: Context, dry_run: bool = False, json: bool = False) -> None:
    """Write cluster/core/02-flux/cluster-settings.yaml (the tree's ${VARS}) from the inventory."""
    from ..inventory import repo_root
    from .plan import render_settings_plan
    from .settings import SETTINGS_PATH

    root = repo_root()
    path = root / SETTINGS_PATH
    on_disk = path.read_text() if path.is_file() else None
    plan = render_settings_plan(load_inventory(), str(root), on_disk)
    executor(dry_run=dry_run, json_out=json).execute(plan)


ns = Collection("flux", bootstrap, reconcile, suspend, resume, status, render_settings)
