"""The one entry point: settings from the inventory, then every check over every entry point."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import chartvalues, crossref, envdup, schemas, semantics, site, traefik, treefiles
from .core import Check, Settings, build_worlds, run_checks
from .model import Finding, SiteFacts

if TYPE_CHECKING:
    from ...inventory.model import Inventory

WORLD_CHECKS: list[Check] = [
    schemas.check_schemas,
    crossref.check_sources,
    crossref.check_depends_on,
    crossref.check_namespaces,
    crossref.check_crd_order,
    semantics.check_api_versions,
    semantics.check_helmreleases,
    chartvalues.check_chart_values,
    semantics.check_plaintext_secrets,
    semantics.check_cert_manager,
    semantics.check_pod_security,
    semantics.check_bitnami,
    site.check_site,
    traefik.check_middlewares,
    traefik.check_services,
    envdup.check_env_duplicates,
]


def schema_dirs() -> list[Path]:
    """$DOMUM_CRD_SCHEMAS (one or more dirs, os.pathsep-separated), then the tools cache."""
    from ... import settings
    from ...tools.schemas import crd_cache_dir

    return [*settings.crd_schema_dirs(), crd_cache_dir()]


def chart_dirs() -> list[Path]:
    """$DOMUM_CHARTS (os.pathsep-separated), then the charts `inv tools.install` fetched."""
    from ... import settings
    from ...tools.charts import chart_cache_dir

    return [*settings.chart_dirs(), chart_cache_dir()]


def site_facts(inv: Inventory, source: str) -> SiteFacts:
    """The inventory values the tree must agree with: cluster.vip, and from the optional `site:`
    section (site.domain, site.metallb.addresses) when the inventory has one."""
    site_cfg = getattr(inv, "site", None)
    domain = getattr(site_cfg, "domain", None)
    pool = getattr(getattr(site_cfg, "metallb", None), "addresses", None)
    pools = [pool] if isinstance(pool, str) else list(pool or ())
    return SiteFacts(
        source,
        vip=str(inv.cluster.vip),
        domain=str(domain) if domain else None,
        pool=tuple(str(p) for p in pools),
    )


def settings_for(
    inv: Inventory, repo_root: Path, inventory_file: str, tree: Path | None = None
) -> Settings:
    from ...tools.pins import FLUX_VERSION

    tree = tree or repo_root / "cluster"
    return Settings(
        repo_root=repo_root,
        tree=tree,
        k8s_version=str(inv.cluster.kubernetes_version),
        schema_dirs=schema_dirs(),
        site=site_facts(inv, inventory_file),
        flux_version=FLUX_VERSION,
        sops_age_flag=treefiles.has_sops_age_flag(tree),
        chart_dirs=chart_dirs(),
    )


def validate(settings: Settings, entries: list[Path] | None = None) -> list[Finding]:
    worlds = build_worlds(settings, entries)
    found = run_checks(worlds, WORLD_CHECKS)
    extra = [
        *treefiles.check_sops_files(settings.repo_root, settings.tree),
        *treefiles.check_gotk(settings.tree, settings.repo_root, settings.flux_version),
    ]
    seen = dict.fromkeys(found)
    for f in extra:
        seen.setdefault(f, None)
    return sorted(seen, key=lambda f: (f.severity != "error", f.file, f.obj, f.check))


def summary(findings: list[Finding], worlds: int | None = None) -> str:
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    return f"{errors} error(s), {warnings} warning(s)"
