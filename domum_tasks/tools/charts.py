"""Helm charts for flux.validate: which the tree pins, and the plan to fetch them.

`inv tools.install` fetches each chart a HelmRelease of the tree installs into
`<cache>/charts/<chart>/<version>/` (the layout of $DOMUM_CHARTS): Chart.yaml, values.yaml,
values.schema.json (and the JSON files it $refs by relative path), the same for each
dependency under `charts/<dep>/`. Each fetch is verified against, in this order:
  1. a maintainer-verified pin: tools/chart_pins.py, else the OCIRepository's own `ref.digest`;
  2. config/charts.lock, the digest recorded when the chart was first fetched;
  3. on first use, the digest its source publishes (index.yaml `digest`, or the OCI manifest's
     sha256), which a plan step then records in config/charts.lock.
Trust on first use over TLS, then pinned: see tools/chartlock.py. A chart $DOMUM_CHARTS already
has is not fetched (flux.validate reads those first).
The tree is read as committed, without rendering: a HelmRelease's chartRef is matched to the
source of that name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from ..plan import Local, Plan, ResultOf
from .chart_pins import CHARTS
from .chartlock import LOCK_STEP, lock_path, read_lock, shown

PIN_FILE = ".sha256"  # in a fetched chart's directory: the pin it was verified against


def chart_cache_dir() -> Path:
    return settings.cache_dir() / "charts"


@dataclass(frozen=True)
class ChartFile:
    name: str
    version: str
    kind: str  # "helm" (a HelmRepository's index.yaml) or "oci"
    url: str  # the repository URL, or oci://host/path of the chart
    sha256: str | None  # the expected digest; None on first use
    verified_by: str  # "pin", "lock" or "first-use"
    how: str  # where the expected digest comes from, as the messages say it
    dest: Path

    def key(self) -> str:
        return f"{self.name}/{self.version}"

    def to_args(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "url": self.url,
            "sha256": self.sha256,
            "verified_by": self.verified_by,
            "how": self.how if self.sha256 else "",  # first use: the desc says it
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


def _in_chart_dirs(name: str, version: str) -> Path | None:
    """The copy of a chart in $DOMUM_CHARTS, which flux.validate reads before the cache."""
    bare = version.removeprefix("v")
    for d in settings.chart_dirs():
        for v in dict.fromkeys([version, bare, f"v{bare}"]):
            if (d / name / v / "Chart.yaml").is_file():
                return d / name / v
    return None


def wanted(tree: Path) -> tuple[list[ChartFile], list[str]]:
    """(charts to have, each with what verifies it; notes). Reads config/charts.lock."""
    lock_file = lock_path()
    lock = read_lock(lock_file)
    lock_name = shown(lock_file)
    files: list[ChartFile] = []
    notes: list[str] = []
    for name, version, kind, url, digest in sorted(charts_in_tree(tree)):
        key = f"{name}/{version}"
        local = _in_chart_dirs(name, version)
        if local is not None:
            notes.append(f"chart {name} {version} is in $DOMUM_CHARTS ({local}): not fetched")
            continue
        dest = chart_cache_dir() / name / version
        recorded = lock.get(key)
        pin, how = CHARTS.get(key), "pinned in domum_tasks/tools/chart_pins.py"
        if not pin and digest:
            pin, how = digest, "the OCIRepository's ref.digest in the tree"
        if pin:
            if recorded and recorded["sha256"] != pin and recorded["source"] == url:
                notes.append(f"{lock_name} records another digest for {key}; the pin wins")
            files.append(ChartFile(name, version, kind, url, pin, "pin", how, dest))
        elif recorded and recorded["source"] == url:
            how = f"recorded in {lock_name}"
            files.append(ChartFile(name, version, kind, url, recorded["sha256"], "lock", how, dest))
        else:
            if recorded:
                notes.append(
                    f"{lock_name} has {key} from {recorded['source']}, the tree now takes it "
                    f"from {url}: fetched as a first use, and its entry replaced"
                )
            how = "the digest its source publishes (first use)"
            files.append(ChartFile(name, version, kind, url, None, "first-use", how, dest))
    return files, notes


def plan_charts(plan: Plan, files: list[ChartFile], notes: list[str], *, force: bool) -> None:
    """Pure apart from reading the digest each cached chart was verified against. A chart on
    first use is always fetched (its digest is not recorded yet), then recorded in the lock."""
    have = 0
    first: dict[str, ResultOf] = {}
    for cf in files:
        marker = cf.dest / PIN_FILE
        if not force and cf.sha256 and marker.is_file() and marker.read_text().strip() == cf.sha256:
            have += 1
            continue
        if cf.verified_by == "first-use":
            first[cf.key()] = ResultOf(len(plan.steps))
        plan.add(
            Local(
                "tools.chart",
                cf.to_args(),
                desc=f"chart {cf.name} {cf.version} from {cf.url}, verified by {cf.how}",
            )
        )
    if first:
        path = lock_path()
        plan.add(
            Local(
                LOCK_STEP,
                {"path": str(path), **first},
                desc=f"record the digests of {len(first)} chart(s) fetched on first use in "
                f"{shown(path)} (commit it: later fetches must match)",
            )
        )
        plan.note(
            f"{len(first)} chart(s) have no pin or lock entry: trusted on first use (the digest "
            f"their source publishes, over TLS), then pinned by {shown(path)}"
        )
    if have:
        plan.note(f"{have} chart(s) already in {chart_cache_dir()} with their expected sha256")
    for note in notes:
        plan.note(note)


def install_chart(args: Mapping[str, Any]) -> dict[str, str]:
    """Fetch one chart, verify it, keep its values files in the cache."""
    from datetime import UTC, datetime

    from .chartfetch import fetch_helm, fetch_oci, unpack

    expected, how = args["sha256"], str(args["how"])
    if args["kind"] == "oci":
        tarball, got = fetch_oci(args["url"], args["version"], expected, how)
    else:
        tarball, got = fetch_helm(args["url"], args["name"], args["version"], expected, how)
    unpack(tarball, Path(args["dest"]), got)
    return {
        "chart": f"{args['name']} {args['version']}",
        "path": args["dest"],
        "sha256": got,
        "source": args["url"],
        "verified_by": args["verified_by"],
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
