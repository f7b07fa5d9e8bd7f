"""Tasks of the flux namespace: validate the tree offline; bootstrap, check, diff, reconcile,
suspend/resume and status through the flux CLI."""

from __future__ import annotations

import os

from invoke import Collection, Context

from ..taskutil import DRY_RUN, JSON, domum_task, executor, load_inventory
from .validate_task import validate

KS = "Kustomization name"
NS = "namespace of the Kustomization (default flux-system)"
ALL = "every Kustomization in the namespace"


@domum_task(help={"dry_run": DRY_RUN, "json": JSON})
def bootstrap(c: Context, dry_run: bool = False, json: bool = False) -> None:
    """Install Flux on the cluster and point it at the inventory's Git repository."""
    from ..errors import ConfigError
    from ..secrets.store import load as load_secrets
    from .plan import TOKEN_ENV, TOKEN_SECRET_KEY, bootstrap_plan

    inv = load_inventory()
    env_var = TOKEN_ENV[inv.flux.provider]
    token = os.environ.get(env_var) or load_secrets().get(TOKEN_SECRET_KEY)
    if not token:  # --dry-run too: a plan that the real run would refuse is no plan
        raise ConfigError(
            f"no Git token for flux bootstrap: set {env_var}, or {TOKEN_SECRET_KEY} in "
            "config/secrets.sops.yaml (env DOMUM_FLUX_GIT_TOKEN)"
        )
    executor(dry_run=dry_run, json_out=json).execute(bootstrap_plan(inv, token))


@domum_task(
    help={"pre": "only the prerequisites, before bootstrap", "dry_run": DRY_RUN, "json": JSON}
)
def check(c: Context, pre: bool = False, dry_run: bool = False, json: bool = False) -> None:
    """Check the Flux installation, or with --pre the cluster before bootstrap."""
    import sys

    from .plan import check_plan

    results = executor(dry_run=dry_run, json_out=json).execute(check_plan(load_inventory(), pre))
    for r in results:  # flux reports each check on stderr
        print((r.stderr or r.stdout).rstrip(), file=sys.stderr)


@domum_task(
    help={
        "kustomization": f"{KS} (default: every Kustomization in the tree)",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def diff(c: Context, kustomization: str = "", dry_run: bool = False, json: bool = False) -> None:
    """Show what the local tree would change in the cluster (`flux diff`)."""
    from .diff_task import run_diff

    run_diff(load_inventory(), kustomization, dry_run=dry_run, json_out=json)


@domum_task(
    help={
        "kustomization": f"{KS} (default flux-system)",
        "with_source": "fetch the Git source first",
        "namespace": NS,
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def reconcile(
    c: Context,
    kustomization: str = "flux-system",
    with_source: bool = False,
    namespace: str = "flux-system",
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Reconcile a Kustomization now, with --with-source fetching Git first."""
    from .plan import reconcile_plan

    plan = reconcile_plan(load_inventory(), kustomization, with_source, namespace)
    executor(dry_run=dry_run, json_out=json).execute(plan)


@domum_task(
    help={"kustomization": KS, "all": ALL, "namespace": NS, "dry_run": DRY_RUN, "json": JSON}
)
def suspend(
    c: Context,
    kustomization: str = "",
    all: bool = False,
    namespace: str = "flux-system",
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Suspend one Kustomization (--kustomization NAME) or every one (--all)."""
    from .plan import suspend_plan

    plan = suspend_plan(load_inventory(), kustomization, all, namespace)
    executor(dry_run=dry_run, json_out=json).execute(plan)


@domum_task(
    help={"kustomization": KS, "all": ALL, "namespace": NS, "dry_run": DRY_RUN, "json": JSON}
)
def resume(
    c: Context,
    kustomization: str = "",
    all: bool = False,
    namespace: str = "flux-system",
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Resume one Kustomization (--kustomization NAME) or every one (--all)."""
    from .plan import resume_plan

    plan = resume_plan(load_inventory(), kustomization, all, namespace)
    executor(dry_run=dry_run, json_out=json).execute(plan)


@domum_task(help={"json": "print the rows as JSON"})
def status(c: Context, json: bool = False) -> None:
    """Show Kustomizations and HelmReleases: ready, revision, message.

    Exits 1 when any of them is not Ready."""
    from ..console import print_table
    from ..errors import DomumError
    from ..run import run_cmd
    from .facts import parse_table
    from .plan import status_argvs

    rows = []
    for kind, argv in zip(
        ("Kustomization", "HelmRelease"), status_argvs(load_inventory()), strict=True
    ):
        for r in parse_table(run_cmd(argv, timeout_s=60).stdout):
            rows.append(
                (
                    kind,
                    r.get("namespace", ""),
                    r.get("name", ""),
                    r.get("ready", ""),
                    r.get("suspended", ""),
                    r.get("revision", ""),
                    r.get("message", ""),
                )
            )
    cols = ("kind", "namespace", "name", "ready", "suspended", "revision", "message")
    print_table("flux status", cols, rows, json_out=json)
    bad = [f"{r[0]}/{r[1]}/{r[2]}" for r in rows if r[3] != "True"]
    if bad:
        raise DomumError(f"{len(bad)} not ready: {', '.join(bad)}")


@domum_task(help={"dry_run": DRY_RUN, "json": JSON})
def render_settings(c: Context, dry_run: bool = False, json: bool = False) -> None:
    """Render the inventory's site: into the tree's cluster-settings ConfigMap."""
    from ..inventory.loader import repo_root
    from .plan import render_settings_plan
    from .settings import SETTINGS_PATH

    root = repo_root()
    path = root / SETTINGS_PATH
    on_disk = path.read_text() if path.is_file() else None
    plan = render_settings_plan(load_inventory(), str(root), on_disk)
    executor(dry_run=dry_run, json_out=json).execute(plan)


ns = Collection(
    "flux", validate, bootstrap, check, diff, reconcile, suspend, resume, status, render_settings
)
