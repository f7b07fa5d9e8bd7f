"""Post-build substitution over a world: each Kustomization's variables (substituteFrom
ConfigMaps/Secrets found in the tree, then the inline substitute, which wins) applied strictly to
every object it renders, as kustomize-controller does after the build."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .model import Finding, FluxKs, is_flux_ks
from .render import FLUX_FIELDS, has_kustomization
from .subst import VAR_NAME, substitute

if TYPE_CHECKING:
    from .core import World

UNEMULATED = FLUX_FIELDS


def unemulated_fields(ks: FluxKs, repo_root: Path) -> list[Finding]:
    """Flux-side fields on a path without kustomization.yaml: Flux's generated kustomization
    gets them, the offline render does not."""
    used = [f for f in UNEMULATED if ks.spec.get(f)]
    target = repo_root / ks.path
    if not used or ks.declared_in is None or not target.is_dir() or has_kustomization(target):
        return []
    return [
        ks.declared_in.finding(
            "render",
            f"spec.{', spec.'.join(used)} not applied by the offline render of a path without "
            "kustomization.yaml: add one there so what Flux applies is what was checked",
            "warning",
        )
    ]


def _variables(ks: FluxKs, world: World) -> tuple[dict[str, str], list[Finding]]:
    """Flux's vars: substituteFrom in order, then the inline substitute (which wins)."""
    post = ks.spec.get("postBuild") or {}
    found: list[Finding] = []
    variables: dict[str, str] = {}
    for ref in post.get("substituteFrom") or []:
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        hits = [o for o in world.find(kind, ks.namespace, name) if kind in ("ConfigMap", "Secret")]
        if not hits:
            if not ref.get("optional"):
                found.append(
                    Finding(
                        ks.file,
                        ks.label(),
                        "substitute",
                        f"postBuild.substituteFrom {kind}/{name} is not in namespace "
                        f"{ks.namespace} in any Kustomization of the tree; create it there or "
                        "mark the reference optional: true",
                    )
                )
            continue
        data = {**(hits[0].doc.get("data") or {}), **(hits[0].doc.get("stringData") or {})}
        for key, value in data.items():
            # A SOPS-encrypted Secret's values are unknown offline; its keys are what matters.
            variables[str(key)] = str(value).replace("\n", "")
    for key, value in (post.get("substitute") or {}).items():
        variables[str(key)] = str(value).replace("\n", "")
    for key in variables:
        if not VAR_NAME.match(key):
            found.append(
                Finding(
                    ks.file,
                    ks.label(),
                    "substitute",
                    f"variable name {key!r} is invalid: Flux requires ^[_[:alpha:]][_[:alpha:][:digit:]]*$",
                )
            )
    return variables, found


def substitute_world(world: World) -> None:
    for ks in list(world.kustomizations.values()):
        world.findings += unemulated_fields(ks, world.settings.repo_root)
        post = ks.spec.get("postBuild") or {}
        variables, problems = _variables(ks, world)
        world.findings += problems
        if not variables and post.get("substituteStrategy") != "Always":
            continue  # Flux skips substitution when no variable is defined
        for obj in ks.objects:
            new, missing = substitute(obj.doc, variables)
            obj.doc = new
            for name in dict.fromkeys(missing):
                world.findings.append(
                    obj.finding(
                        "substitute",
                        f"${{{name}}} is not defined for {ks.label()} (Flux 2.9 fails the whole "
                        "Kustomization): add it to postBuild.substitute or a substituteFrom "
                        f"ConfigMap, give it a default ${{{name}:=value}}, escape it as "
                        f"$${{{name}}}, or annotate the object kustomize.toolkit.fluxcd.io/substitute: disabled",
                    )
                )
            if is_flux_ks(obj.doc):
                child = world.kustomizations.get((obj.namespace or ks.namespace, obj.name))
                if child is not None and child.declared_in is obj:
                    child.spec = obj.spec
