"""Tasks of the flux namespace: validate the tree offline; bootstrap, check, diff, reconcile,
suspend/resume and status through the flux CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoke import Collection, Context

from ..taskutil import Planned, domum_task, load_inventory, plan_task
from .validate_task import validate

if TYPE_CHECKING:
    from ..inventory.model import Inventory
    from ..plan import Plan
    from ..run import StepResult

KS = "Kustomization name"
NS = "namespace of the Kustomization (default flux-system)"
ALL = "every Kustomization in the namespace"


def _planned(plan: Plan, inv: Inventory, report: Any = None) -> Planned:
    return Planned(plan, inv, report=report, tools=("flux",))


@plan_task()
def bootstrap(c: Context) -> Planned:
    """Install Flux on the cluster and point it at the inventory's Git repository."""
    from .. import settings
    from ..errors import ConfigError
    from ..secrets.store import is_placeholder
    from ..secrets.store import load as load_secrets
    from .plan import TOKEN_ENV, TOKEN_SECRET_KEY, bootstrap_plan

    inv = load_inventory()
    env_var = TOKEN_ENV[inv.flux.provider]
    store = load_secrets()
    token = settings.get(env_var) or store.get(TOKEN_SECRET_KEY)
    why = "unset"
    if token and is_placeholder(token):  # `ghp_change-me` copied from the example
        token, why = None, f"{env_var} is a placeholder value"
    elif not token:
        why = f"{TOKEN_SECRET_KEY} {store.unset_reason(TOKEN_SECRET_KEY)}"
    if not token:  # --dry-run too: a plan that the real run would refuse is no plan
        raise ConfigError(
            f"no Git token for flux bootstrap: set {env_var}, or {TOKEN_SECRET_KEY} in "
            f"config/secrets.sops.yaml (env DOMUM_FLUX_GIT_TOKEN); {why}"
        )
    # Refuse a tree the cluster could not decrypt (--dry-run too): reads the SOPS metadata of
    # cluster/ and the public halves of your age keys (age-keygen -y, key on stdin).
    from ..inventory.loader import repo_root
    from ..secrets.facts import identities
    from . import sops_age

    root = repo_root()
    files = sops_age.cluster_files(root)
    mine = {i.public for i in identities()}
    bad = sops_age.undecryptable(files, mine)
    if bad:
        raise sops_age.refusal(bad, mine)
    need = sops_age.recipients_for_cluster(root, files, mine)
    return Planned(
        bootstrap_plan(inv, token, need),
        inv,
        handlers={sops_age.ACTION: sops_age.apply_secret},
        tools=("flux", "kubectl", "age-keygen"),
    )


@plan_task(help={"pre": "only the prerequisites, before bootstrap"})
def check(c: Context, pre: bool = False) -> Planned:
    """Check the Flux installation, or with --pre the cluster before bootstrap."""
    import sys

    from .plan import check_plan

    def report(results: list[StepResult], json_out: bool) -> None:
        for r in results:  # flux reports each check on stderr
            print((r.stderr or r.stdout).rstrip(), file=sys.stderr)

    inv = load_inventory()
    return _planned(check_plan(inv, pre), inv, report)


@plan_task(help={"kustomization": f"{KS} (default: every Kustomization in the tree)"})
def diff(c: Context, kustomization: str = "") -> Planned:
    """Show what the local tree would change in the cluster (`flux diff`)."""
    from ..inventory.loader import repo_root
    from .diff_task import report_diff, targets
    from .plan import diff_plan

    inv = load_inventory()
    return _planned(diff_plan(inv, targets(inv, repo_root(), kustomization)), inv, report_diff)


@plan_task(
    help={
        "kustomization": f"{KS} (default flux-system)",
        "with_source": "fetch the Git source first",
        "namespace": NS,
    }
)
def reconcile(
    c: Context,
    kustomization: str = "flux-system",
    with_source: bool = False,
    namespace: str = "flux-system",
) -> Planned:
    """Reconcile a Kustomization now, with --with-source fetching Git first."""
    from .plan import reconcile_plan

    inv = load_inventory()
    return _planned(reconcile_plan(inv, kustomization, with_source, namespace), inv)


@plan_task(help={"kustomization": KS, "all": ALL, "namespace": NS})
def suspend(
    c: Context, kustomization: str = "", all: bool = False, namespace: str = "flux-system"
) -> Planned:
    """Suspend one Kustomization (--kustomization NAME) or every one (--all)."""
    from .plan import suspend_plan

    inv = load_inventory()
    return _planned(suspend_plan(inv, kustomization, all, namespace), inv)


@plan_task(help={"kustomization": KS, "all": ALL, "namespace": NS})
def resume(
    c: Context, kustomization: str = "", all: bool = False, namespace: str = "flux-system"
) -> Planned:
    """Resume one Kustomization (--kustomization NAME) or every one (--all)."""
    from .plan import resume_plan

    inv = load_inventory()
    return _planned(resume_plan(inv, kustomization, all, namespace), inv)


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


@plan_task()
def render_settings(c: Context) -> Planned:
    """Render the inventory's site: into the tree's cluster-settings ConfigMap."""
    from ..inventory.loader import repo_root
    from .plan import render_settings_plan
    from .settings import SETTINGS_PATH

    root = repo_root()
    path = root / SETTINGS_PATH
    on_disk = path.read_text() if path.is_file() else None
    inv = load_inventory()
    return Planned(render_settings_plan(inv, str(root), on_disk), inv)


ns = Collection(
    "flux", validate, bootstrap, check, diff, reconcile, suspend, resume, status, render_settings
)
