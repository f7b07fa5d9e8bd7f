"""The charts a HelmRelease can install, read offline from a chart directory.

A chart directory is laid out `<chart>/<version>/{Chart.yaml,values.yaml,values.schema.json}`,
with dependencies under `<chart>/<version>/charts/<dep>/` (the same files, and any JSON file a
schema $refs by relative path). $DOMUM_CHARTS names such directories (os.pathsep-separated);
after them comes the cache `inv tools.install` fills (`<cache>/charts`). Each chart is read once
per run: values.yaml files are large (kube-prometheus-stack's is 200 kB).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .valuekeys import Documented, scan_values


@dataclass(frozen=True)
class Dependency:
    key: str  # where its values live in the parent's: the alias, else the name
    chart: Chart
    condition: str = ""
    tags: tuple[str, ...] = ()


@dataclass(eq=False)
class Chart:
    name: str
    version: str
    path: Path
    values: dict[str, Any]
    schema: Any  # the parsed values.schema.json, or None
    documented: Documented
    deps: list[Dependency] = field(default_factory=list)

    def label(self) -> str:
        return f"{self.name} {self.version}"


def jsonable(value: Any) -> Any:
    """Values as Helm sees them after sigs.k8s.io/yaml: string keys, and YAML timestamps as the
    strings they were written as (PyYAML makes dates of them; Go keeps strings)."""
    if isinstance(value, dict):
        return {_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _key(k: Any) -> str:
    if isinstance(k, bool):
        return "true" if k else "false"
    return str(k)


def _load_yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_chart(path: Path, version: str) -> Chart:
    meta = _load_yaml(path / "Chart.yaml") or {}
    text = (
        (path / "values.yaml").read_text(encoding="utf-8")
        if (path / "values.yaml").is_file()
        else ""
    )
    values = jsonable(yaml.safe_load(text) or {}) if text else {}
    schema_file = path / "values.schema.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8")) if schema_file.is_file() else None
    chart = Chart(
        str(meta.get("name") or path.parent.name),
        version,
        path,
        values if isinstance(values, dict) else {},
        schema,
        scan_values(text),
    )
    listed: set[str] = set()
    for dep in meta.get("dependencies") or []:
        if not isinstance(dep, dict) or not dep.get("name"):
            continue
        sub = path / "charts" / str(dep["name"])
        listed.add(str(dep["name"]))
        if not sub.is_dir():  # a CRD-only subchart that ships no values: nothing to check
            continue
        chart.deps.append(
            Dependency(
                str(dep.get("alias") or dep["name"]),
                load_chart(sub, str(dep.get("version", ""))),
                str(dep.get("condition") or ""),
                tuple(str(t) for t in dep.get("tags") or ()),
            )
        )
    # Helm also installs a charts/<dir> that Chart.yaml does not list (pkg/chart/v2/util
    # dependencies.go, processDependencyEnabled: "If any dependency is not a part of Chart.yaml").
    for sub in sorted((path / "charts").glob("*/Chart.yaml")) if (path / "charts").is_dir() else ():
        if sub.parent.name not in listed:
            dep_chart = load_chart(sub.parent, "")
            chart.deps.append(Dependency(dep_chart.name, dep_chart))
    return chart


def version_candidates(version: str) -> list[str]:
    """A tag `v1.21.1` and a semver `1.21.1` name the same release; try both spellings."""
    bare = version[1:] if version.startswith("v") else version
    return list(dict.fromkeys([version, bare, f"v{bare}"]))


class ChartStore:
    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs
        self._loaded: dict[tuple[str, str], Chart | None] = {}

    def find(self, name: str, version: str) -> Path | None:
        for d in self.dirs:
            for v in version_candidates(version):
                p = d / name / v
                if (p / "Chart.yaml").is_file() or (p / "values.yaml").is_file():
                    return p
        return None

    def get(self, name: str, version: str) -> Chart | None:
        key = (name, version)
        if key not in self._loaded:
            path = self.find(name, version)
            self._loaded[key] = load_chart(path, path.name) if path else None
        return self._loaded[key]

    def versions(self, name: str) -> list[str]:
        found: set[str] = set()
        for d in self.dirs:
            if (d / name).is_dir():
                found |= {p.name for p in (d / name).iterdir() if p.is_dir()}
        return sorted(found)

    def has_any(self) -> bool:
        return any(d.is_dir() and any(d.glob("*/*/Chart.yaml")) for d in self.dirs)
