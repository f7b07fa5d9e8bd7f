"""The validation pipeline: entry points -> rendered Kustomizations -> one world -> findings.

Each overlay in `<tree>/overlays/<env>/` is a complete entry point, which the bootstrap's
`flux-system` Kustomization (gotk-sync.yaml) points at; without overlays the tree itself is the
entry. From each entry the Flux Kustomizations are followed breadth first, as Flux discovers
them: render a path, find the Kustomizations in its output, render theirs. Every level is
rendered in parallel. Each entry is one cluster's world, checked on its own; findings common to
several entries are reported once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import FLUX_SYSTEM, Finding, FluxKs, Obj, SiteFacts, is_flux_ks
from .postbuild import substitute_world
from .render import (
    Rendered,
    SourceIndex,
    flux_overrides,
    render_dir,
)
from .scope import Scopes

GIT_SOURCE = ("GitRepository", FLUX_SYSTEM, FLUX_SYSTEM)  # what `flux bootstrap` creates


@dataclass
class Settings:
    repo_root: Path
    tree: Path
    k8s_version: str
    schema_dirs: list[Path] = field(default_factory=list)
    site: SiteFacts | None = None
    flux_version: str = ""
    kubectl: str | None = None
    sops_age_flag: bool = False  # kustomize-controller has --sops-age-secret (Flux 2.7+)
    # Chart directories ($DOMUM_CHARTS, then the tools cache); empty: chart values not checked.
    chart_dirs: list[Path] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict, repr=False)  # per-run: loaded charts
    workers: int = max(2, min(8, 2 * (os.cpu_count() or 1)))

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.repo_root.resolve()))
        except ValueError:
            return str(path)


@dataclass
class World:
    """Everything one entry point puts into a cluster."""

    entry: str
    settings: Settings
    kustomizations: dict[tuple[str, str], FluxKs] = field(default_factory=dict)
    objects: list[Obj] = field(default_factory=list)
    scopes: Scopes = field(default_factory=Scopes)
    findings: list[Finding] = field(default_factory=list)

    def find(self, kind: str, namespace: str | None, name: str) -> list[Obj]:
        return [
            o
            for o in self.objects
            if o.kind == kind and o.name == name and (namespace is None or o.namespace == namespace)
        ]


Check = Callable[[World], Iterable[Finding]]


def find_entries(tree: Path) -> list[Path]:
    overlays = tree / "overlays"
    if overlays.is_dir():
        found = [d for d in sorted(overlays.iterdir()) if d.is_dir()]
        if found:
            return found
    return [tree]


def _apply_target_namespace(doc: dict[str, Any], target: str, scopes: Scopes) -> dict[str, Any]:
    """What Flux's generated `namespace:` does: every namespaced object lands in `target`."""
    api = str(doc.get("apiVersion", ""))
    group = api.rsplit("/", 1)[0] if "/" in api else ""
    kind = str(doc.get("kind", ""))
    meta = dict(doc.get("metadata") or {})
    if kind == "Namespace" and group == "":
        meta["name"] = target
    elif not scopes.cluster_scoped(group, kind):
        meta["namespace"] = target
    return {**doc, "metadata": meta}


class _Walker:
    def __init__(self, settings: Settings, index: SourceIndex, cache: dict[str, Rendered]):
        self.s = settings
        self.index = index
        self.cache = cache

    def render_all(self, jobs: list[tuple[Path, dict[str, Any]]]) -> None:
        todo = {_job_key(d, o): (d, o) for d, o in jobs if _job_key(d, o) not in self.cache}
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=self.s.workers) as pool:
            done = pool.map(lambda job: render_dir(job[0], self.s.kubectl, job[1]), todo.values())
            for key, rendered in zip(todo, done, strict=True):
                self.cache[key] = rendered

    def resolve_path(self, ks: FluxKs, world: World) -> Path | None:
        ref = ks.spec.get("sourceRef") or {}
        source = (
            str(ref.get("kind", "")),
            str(ref.get("namespace") or ks.namespace),
            str(ref.get("name", "")),
        )
        if source != GIT_SOURCE:
            world.findings.append(
                Finding(
                    ks.file,
                    ks.label(),
                    "render",
                    f"not rendered: its source {source[0]}/{source[1]}/{source[2]} is not this "
                    "repository (only paths of GitRepository flux-system/flux-system render offline)",
                    "warning",
                )
            )
            return None
        raw = str(ks.spec.get("path") or "./")
        target = (self.s.repo_root / raw).resolve()
        root = self.s.repo_root.resolve()
        if target != root and root not in target.parents:
            world.findings.append(
                Finding(ks.file, ks.label(), "path", f"spec.path {raw!r} leaves the repository")
            )
            return None
        if not target.is_dir():
            world.findings.append(
                Finding(
                    ks.file,
                    ks.label(),
                    "path",
                    f"spec.path {raw!r} does not exist (paths are relative to the repository "
                    f"root {self.s.repo_root.name}/, e.g. ./{self.s.rel(self.s.tree)}/apps/...)",
                )
            )
            return None
        return target

    def _is_root(self, obj: Obj, parent: FluxKs, world: World) -> bool:
        """The bootstrap's own flux-system Kustomization (gotk-sync.yaml) rendered by the entry
        point is the root itself: it must sync that entry point, and is not walked twice."""
        root = world.kustomizations[(FLUX_SYSTEM, FLUX_SYSTEM)]
        if (
            obj.namespace or parent.namespace,
            obj.name,
        ) != root.key or root.declared_in is not None:
            return False
        root.declared_in, root.spec = obj, obj.spec
        want, got = _norm(root.path), _norm(str(obj.spec.get("path", "")))
        if want != got:
            world.findings.append(
                obj.finding(
                    "path",
                    f"the root Kustomization flux-system syncs {got}, but it is rendered by the "
                    f"entry point {want}: patch its spec.path to {want} in that overlay",
                )
            )
        return True

    def walk(self, entry: Path) -> World:
        rel_entry = self.s.rel(entry)
        world = World(rel_entry, self.s)
        root = FluxKs(
            FLUX_SYSTEM,
            FLUX_SYSTEM,
            f"./{rel_entry}",
            {
                "path": f"./{rel_entry}",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": FLUX_SYSTEM},
            },
            None,
        )
        world.kustomizations[root.key] = root
        level = [root]
        while level:
            dirs = {ks.key: self.resolve_path(ks, world) for ks in level}
            over = {ks.key: flux_overrides(ks.spec) for ks in level}
            self.render_all([(d, over[k]) for k, d in dirs.items() if d is not None])
            nxt: list[FluxKs] = []
            for ks in level:
                d = dirs[ks.key]
                if d is None:
                    continue
                rendered = self.cache[_job_key(d, over[ks.key])]
                if rendered.error:
                    world.findings.append(Finding(ks.file, ks.label(), "render", rendered.error))
                    continue
                nxt += self._collect(ks, rendered, self.s.rel(d), world)
            level = nxt
        return world

    def _collect(self, ks: FluxKs, rendered: Rendered, under: str, world: World) -> list[FluxKs]:
        target = ks.spec.get("targetNamespace")
        children = []
        for obj in self.index.objects(rendered, under):
            if obj.kind == "CustomResourceDefinition":
                world.scopes.add_crd(obj)
            if target:
                obj.doc = _apply_target_namespace(obj.doc, str(target), world.scopes)
            obj.ks = ks
            ks.objects.append(obj)
            world.objects.append(obj)
            if is_flux_ks(obj.doc) and self._is_root(obj, ks, world):
                continue
            if is_flux_ks(obj.doc):
                child = FluxKs(
                    obj.name,
                    obj.namespace or ks.namespace,
                    str(obj.spec.get("path", "")),
                    obj.spec,
                    obj,
                )
                if child.key in world.kustomizations:
                    first = world.kustomizations[child.key]
                    world.findings.append(
                        obj.finding(
                            "duplicate",
                            f"{child.label()} is also defined in {first.file}; Flux keeps only "
                            "one of them: give each Kustomization a unique name",
                        )
                    )
                    continue
                world.kustomizations[child.key] = child
                children.append(child)
        return children


def _job_key(path: Path, overrides: dict[str, Any]) -> str:
    """Builds are shared between Kustomizations (and overlays) with the same path and fields."""
    return f"{path}\0{json.dumps(overrides, sort_keys=True, default=str)}"


def _norm(path: str) -> str:
    return "./" + str(Path(path.strip() or ".")).lstrip("./")


def build_worlds(settings: Settings, entries: list[Path] | None = None) -> list[World]:
    index = SourceIndex(settings.repo_root, settings.tree)
    cache: dict[str, Rendered] = {}
    walker = _Walker(settings, index, cache)
    worlds = []
    for entry in entries or find_entries(settings.tree):
        world = walker.walk(entry)
        substitute_world(world)
        worlds.append(world)
    return worlds


def run_checks(worlds: list[World], checks: Iterable[Check]) -> list[Finding]:
    seen: dict[Finding, None] = {}
    checks = list(checks)
    for world in worlds:
        for f in world.findings:
            seen.setdefault(f, None)
        for check in checks:
            for f in check(world):
                seen.setdefault(f, None)
    return sorted(seen, key=lambda f: (f.severity != "error", f.file, f.obj, f.check))


def iter_objects(world: World, kind: str, group: str | None = None) -> Iterator[Obj]:
    for o in world.objects:
        if o.kind == kind and (group is None or o.group == group):
            yield o
