"""Pure planners for the flux namespace: inventory in, Plan out (no I/O).

Every flux argv comes from talos.argv.flux, so it always names --kubeconfig and --namespace.
"""

from __future__ import annotations

from ..inventory_model import Inventory
from ..plan import Cmd, Plan, Write
from ..talos.argv import flux

# The env var each `flux bootstrap <provider>` reads its API token from.
TOKEN_ENV = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN", "gitea": "GITEA_TOKEN"}
TOKEN_SECRET_KEY = "flux.git_token"
ROOT_KUSTOMIZATION = "flux-system"


def bootstrap_plan(inv: Inventory, token: str) -> Plan:
    """`flux check --pre`, then `flux bootstrap <provider>` for the inventory's repository.

    flux bootstrap is idempotent by design: on an installed cluster it commits nothing new and
    only re-applies the sync manifests, so a second run is safe.
    """
    f = inv.flux
    args = [
        "bootstrap",
        f.provider,
        "--owner",
        f.owner,
        "--repository",
        f.repository,
        "--branch",
        f.branch,
        "--path",
        f.path,
    ]
    if f.personal:
        args.append("--personal")
    env = {TOKEN_ENV[f.provider]: token}
    plan = Plan(f"flux bootstrap {f.provider}:{f.owner}/{f.repository}", secrets=[token])
    plan.add(
        Cmd(flux(inv, "check", "--pre"), desc="cluster meets Flux's prerequisites"),
        Cmd(
            flux(inv, *args),
            env=env,
            timeout_s=900,
            desc="install Flux and commit its sync manifests",
        ),
    )
    plan.note("flux bootstrap is idempotent: on a bootstrapped cluster it only re-applies the sync")
    return plan


def reconcile_plan(
    inv: Inventory, name: str = ROOT_KUSTOMIZATION, with_source: bool = True
) -> Plan:
    args = ["reconcile", "kustomization", name]
    if with_source:
        args.append("--with-source")
    return Plan(f"flux reconcile {name}", [Cmd(flux(inv, *args), timeout_s=600)])


def suspend_plan(inv: Inventory, name: str = "") -> Plan:
    """Suspend one Kustomization, or every one in flux-system when no name is given."""
    target = [name] if name else ["--all"]
    return Plan(
        f"flux suspend {name or 'all kustomizations'}",
        [Cmd(flux(inv, "suspend", "kustomization", *target))],
    )


def resume_plan(inv: Inventory, name: str = "") -> Plan:
    target = [name] if name else ["--all"]
    return Plan(
        f"flux resume {name or 'all kustomizations'}",
        [Cmd(flux(inv, "resume", "kustomization", *target), timeout_s=600)],
    )


def status_argvs(inv: Inventory) -> list[tuple[str, ...]]:
    """Read-only probes for `inv flux.status`: sources, Kustomizations and HelmReleases."""
    return [
        flux(inv, "get", "sources", "git", "--all-namespaces"),
        flux(inv, "get", "kustomizations", "--all-namespaces"),
        flux(inv, "get", "helmreleases", "--all-namespaces"),
    ]


def render_settings_plan(inv: Inventory, root: str, on_disk: str | None) -> Plan:
    """Write cluster-settings.yaml when it differs from what the inventory renders."""
    from .settings import SETTINGS_PATH, render

    text = render(inv)
    plan = Plan(f"render {SETTINGS_PATH}")
    if on_disk == text:
        plan.note(f"{SETTINGS_PATH} already matches the inventory: nothing to write")
        return plan
    state = "missing" if on_disk is None else "out of date"
    plan.add(Write(f"{root}/{SETTINGS_PATH}", text, 0o644, desc=f"generated settings ({state})"))
    return plan
