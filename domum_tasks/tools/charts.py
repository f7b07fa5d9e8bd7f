"""Helm charts for flux.validate: which the tree pins, and the plan to fetch them.

`inv tools.install` fetches each chart a HelmRelease of the tree pins, verified against its
sha256 pin (tools/chart_pins.py, or the OCIRepository's own `ref.digest`), into
`<cache>/charts/<chart>/<version>/` (the layout of $DOMUM_CHARTS): Chart.yaml, values.yaml,
values.schema.json (and the JSON files it $refs by relative path), the same for each
dependency under `charts/<dep>/`. A chart without a pin is not downloaded (a note says so).
The tree is read as committed, without rendering: a HelmRelease's chartRef is matched to the
source of that name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from ..plan import Local, Plan
from .chart_pins import CHARTS

PIN_FILE = ".sha256"  # in a fetched chart's directory: the pin it was verified against


def chart_cache_dir() -> Path:
    return settings.cache_dir() / "charts"


@dataclass(frozen=True)
class ChartFile:
    name: str
    version: str
    kind: str  # "helm" (a HelmRepository's index.yaml) or "oci"
    url: str  # the repository URL, or oci://host/path of the chart
    sha256: str
    dest: Path

    def to_args(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "url": self.url,
            "sha256": self.sha256,
            "dest": str(self.dest),
        }


def _docs(tree: Path) -> list[dict[str, Any]]:
    import yaml

    out: list[dict[str, Any]] = []
    for path in sorted(tree.rglob("*.y*ml")) if tree.is_dir() else ():
        try:
            out += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            continue
    return out


def _exact(version: str) -> bool:
    import re

    return bool(version) and not re.search(r"[\^~<>=*|, $]|(?:^|\.)[xX](?:\.|$)", version)


def charts_in_tree(tree: Path) -> set[tuple[str, str, str, str, str]]:
    """(chart, version, kind, url, digest pinned by the tree or "") of every HelmRelease."""
    docs = _docs(tree)
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for d in docs:
        name = (d.get("metadata") or {}).get("name")
        if name and isinstance(d.get("spec"), dict):
            by_kind.setdefault(str(d.get("kind")), {})[str(name)] = d["spec"]
    found: set[tuple[str, str, str, str, str]] = set()
    for d in docs:
        spec = d.get("spec") if d.get("kind") == "HelmRelease" else None
        if not isinstance(spec, dict):
            continue
        chart = (spec.get("chart") or {}).get("spec") or {}
        ref = spec.get("chartRef") or {}
        if chart and (chart.get("sourceRef") or {}).get("kind") == "HelmRepository":
            repo = by_kind.get("HelmRepository", {}).get(str(chart["sourceRef"].get("name")))
            name, version = str(chart.get("chart", "")), str(chart.get("version", ""))
            if repo and repo.get("url") and _exact(version):
                url = str(repo["url"]).rstrip("/")
                if repo.get("type") == "oci" or url.startswith("oci://"):
                    found.add((name, version, "oci", f"{url}/{name}", ""))
                else:
                    found.add((name, version, "helm", url, ""))
        elif ref.get("kind") == "OCIRepository":
            oci = by_kind.get("OCIRepository", {}).get(str(ref.get("name")))
            tag = str(((oci or {}).get("ref") or {}).get("tag") or "")
            if oci and oci.get("url") and _exact(tag):
                url = str(oci["url"]).rstrip("/")
                digest = str((oci.get("ref") or {}).get("digest") or "").removeprefix("sha256:")
                found.add((url.rsplit("/", 1)[-1], tag, "oci", url, digest))
    return found


def wanted(tree: Path) -> tuple[list[ChartFile], list[str]]:
    """(pinned charts to have, charts of the tree that have no pin)."""
    files: list[ChartFile] = []
    unpinned: list[str] = []
    for name, version, kind, url, digest in sorted(charts_in_tree(tree)):
        pin = CHARTS.get(f"{name}/{version}") or digest
        if not pin:
            unpinned.append(f"chart {name} {version}")
            continue
        dest = chart_cache_dir() / name / version
        files.append(ChartFile(name, version, kind, url, pin, dest))
    return files, unpinned


def plan_charts(plan: Plan, files: list[ChartFile], unpinned: list[str], *, force: bool) -> None:
    """Pure apart from reading the pin each cached chart was fetched with."""
    have = 0
    for cf in files:
        marker = cf.dest / PIN_FILE
        if not force and marker.is_file() and marker.read_text().strip() == cf.sha256:
            have += 1
            continue
        plan.add(
            Local(
                "tools.chart",
                cf.to_args(),
                desc=f"chart {cf.name} {cf.version} from {cf.url}, verified by pinned sha256",
            )
        )
    if have:
        plan.note(f"{have} chart(s) already in {chart_cache_dir()} with their pinned sha256")
    for what in unpinned:
        plan.note(f"no pinned sha256 for {what}: not downloaded (add it to tools/chart_pins.py)")


def install_chart(args: Mapping[str, Any]) -> dict[str, str]:
    """Fetch one chart, verify it, keep its values files in the cache."""
    from .chartfetch import fetch_helm, fetch_oci, unpack

    if args["kind"] == "oci":
        tarball = fetch_oci(args["url"], args["version"], args["sha256"])
    else:
        tarball = fetch_helm(args["url"], args["name"], args["version"], args["sha256"])
    unpack(tarball, Path(args["dest"]), args["sha256"])
    return {"chart": f"{args['name']} {args['version']}", "path": args["dest"]}
