"""Pure planners for the flux namespace: inventory in, Plan out (no I/O).

Every flux argv comes from talos.argv.flux, so it always names --kubeconfig and --namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..inventory.model import Inventory
from ..plan import Cmd, Plan, Write
from ..talos.argv import FLUX_NAMESPACE, flux

# The env var each `flux bootstrap <provider>` reads its API token from.
TOKEN_ENV = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN", "gitea": "GITEA_TOKEN"}
TOKEN_SECRET_KEY = "flux.git_token"
ROOT_KUSTOMIZATION = "flux-system"


def bootstrap_plan(inv: Inventory, token: str, age_recipients: Sequence[str] = ()) -> Plan:
    """`flux check --pre`, the `sops-age` Secret (when the tree's Secrets need age keys), then
    `flux bootstrap <provider>` for the inventory's repository, `--path` the overlay.

    flux bootstrap is idempotent by design: on an installed cluster it commits nothing new and
    only re-applies the sync manifests, so a second run is safe; so is the server-side apply of
    the Secret. The Secret comes first: kustomize-controller decrypts from its first
    reconciliation on, which starts as soon as bootstrap has applied gotk-sync.yaml.
    """
    from .sops_age import step as sops_age_step

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
    plan.add(Cmd(flux(inv, "check", "--pre"), desc="cluster meets Flux's prerequisites"))
    if age_recipients:
        plan.add(sops_age_step(inv, age_recipients))
    plan.add(
        Cmd(
            flux(inv, *args),
            env=env,
            timeout_s=900,
            desc="install Flux and commit its sync manifests",
        ),
    )
    plan.note("flux bootstrap is idempotent: on a bootstrapped cluster it only re-applies the sync")
    return plan


def check_plan(inv: Inventory, pre: bool = False) -> Plan:
    """`flux check` (controllers, CRDs, versions) or `flux check --pre` before bootstrap."""
    args = ["check", "--pre"] if pre else ["check"]
    what = "cluster meets Flux's prerequisites" if pre else "Flux controllers and CRDs are healthy"
    return Plan(f"flux {' '.join(args)}", [Cmd(flux(inv, *args), desc=what, timeout_s=300)])


def reconcile_plan(
    inv: Inventory,
    name: str = ROOT_KUSTOMIZATION,
    with_source: bool = False,
    namespace: str = FLUX_NAMESPACE,
) -> Plan:
    """`flux reconcile kustomization NAME [--with-source]`: apply the latest revision now."""
    args = ["reconcile", "kustomization", name]
    if with_source:
        args.append("--with-source")  # fetch the Git source first, then reconcile
    return Plan(
        f"flux reconcile {namespace}/{name}",
        [Cmd(flux(inv, *args, namespace=namespace), timeout_s=600)],
    )


def _target(name: str, all_: bool, verb: str) -> list[str]:
    if bool(name) == all_:
        raise ConfigError(
            f"flux.{verb}: name one Kustomization with --kustomization NAME, or pass --all "
            "for every Kustomization in the namespace (not both)"
        )
    return ["--all"] if all_ else [name]


def suspend_plan(
    inv: Inventory, name: str = "", all_: bool = False, namespace: str = FLUX_NAMESPACE
) -> Plan:
    """Suspend one Kustomization, or with all_ every one in the namespace."""
    target = _target(name, all_, "suspend")
    return Plan(
        f"flux suspend {name or f'every Kustomization in {namespace}'}",
        [Cmd(flux(inv, "suspend", "kustomization", *target, namespace=namespace))],
    )


def resume_plan(
    inv: Inventory, name: str = "", all_: bool = False, namespace: str = FLUX_NAMESPACE
) -> Plan:
    target = _target(name, all_, "resume")
    return Plan(
        f"flux resume {name or f'every Kustomization in {namespace}'}",
        [Cmd(flux(inv, "resume", "kustomization", *target, namespace=namespace), timeout_s=600)],
    )


@dataclass(frozen=True)
class DiffTarget:
    """A Flux Kustomization of the tree: where it lives and the path it renders."""

    name: str
    namespace: str
    path: str


def diff_plan(inv: Inventory, targets: list[DiffTarget]) -> Plan:
    """`flux diff kustomization NAME --path DIR` per Kustomization: the local tree against the
    cluster, with Flux 2.9's strict substitution. flux exits 1 both for differences and for
    errors, so each step's exit is its outcome (check=False), judged after the run."""
    plan = Plan("flux diff: the local tree against the cluster")
    for t in targets:
        argv = flux(
            inv,
            "diff",
            "kustomization",
            t.name,
            "--path",
            t.path,
            "--strict-substitute",
            namespace=t.namespace,
        )
        plan.add(Cmd(argv, desc=f"{t.namespace}/{t.name} ({t.path})", check=False))
    return plan


def status_argvs(inv: Inventory) -> list[tuple[str, ...]]:
    """Read-only probes for `inv flux.status`: Kustomizations and HelmReleases, every namespace."""
    return [
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
