"""References between objects, resolved as the controllers resolve them.

sourceRef/chartRef and dependsOn default their namespace to the referring object's (Flux
kustomize/helm-controller); the bootstrap's GitRepository flux-system/flux-system always exists.
"""

from __future__ import annotations

from collections.abc import Iterator

from .charts import BOOTSTRAP_GROUPS, CHART_CRDS, chart_name
from .core import GIT_SOURCE, World
from .model import BUILTIN_NAMESPACES, Finding, FluxKs, Obj

KS_SOURCE_KINDS = ("GitRepository", "OCIRepository", "Bucket", "ExternalArtifact")
CHART_SOURCE_KINDS = ("HelmRepository", "GitRepository", "Bucket")
CHART_REF_KINDS = ("OCIRepository", "HelmChart", "ExternalArtifact")
SOURCE_KINDS = frozenset({*KS_SOURCE_KINDS, *CHART_SOURCE_KINDS, *CHART_REF_KINDS})


def sources(world: World) -> dict[tuple[str, str, str], Obj]:
    return {
        (o.kind, o.namespace or "", o.name): o
        for o in world.objects
        if o.kind in SOURCE_KINDS and o.group == "source.toolkit.fluxcd.io"
    }


def _ref(
    obj: Obj,
    ref: dict[str, object],
    allowed: tuple[str, ...],
    field: str,
    known: set[tuple[str, str, str]],
) -> Iterator[Finding]:
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    ns = str(ref.get("namespace") or obj.namespace or "")
    if kind not in allowed:
        yield obj.finding(
            "sourceRef", f"{field}.kind {kind!r} is not valid here; valid: {', '.join(allowed)}"
        )
        return
    if (kind, ns, name) not in known:
        there = sorted(n for k, n, m in known if k == kind and m == name)
        same = sorted(f"{k}/{n}/{m}" for k, n, m in known if m == name or k == kind)[:4]
        if there:  # the usual slip: the source lives in another namespace (often flux-system)
            hint = f"; {kind} {name} exists in {', '.join(there)}: set {field}.namespace"
        else:
            hint = f"; defined in the tree: {', '.join(same)}" if same else ""
        yield obj.finding(
            "sourceRef",
            f"{field} {kind}/{ns}/{name} does not exist in the tree (the namespace defaults to "
            f"the {obj.kind}'s own){hint}",
        )


def check_sources(world: World) -> Iterator[Finding]:
    known = set(sources(world)) | {GIT_SOURCE}
    for ks in world.kustomizations.values():
        if ks.declared_in is None:
            continue
        ref = ks.spec.get("sourceRef")
        if not isinstance(ref, dict):
            yield ks.declared_in.finding(
                "sourceRef",
                "spec.sourceRef is missing: name the GitRepository flux-system (or another source)",
            )
            continue
        yield from _ref(ks.declared_in, ref, KS_SOURCE_KINDS, "spec.sourceRef", known)
    for hr in world.objects:
        if hr.kind != "HelmRelease":
            continue
        chart = (hr.spec.get("chart") or {}).get("spec")
        if isinstance(chart, dict) and isinstance(chart.get("sourceRef"), dict):
            yield from _ref(
                hr, chart["sourceRef"], CHART_SOURCE_KINDS, "spec.chart.spec.sourceRef", known
            )
        if isinstance(hr.spec.get("chartRef"), dict):
            yield from _ref(hr, hr.spec["chartRef"], CHART_REF_KINDS, "spec.chartRef", known)
        for ref in hr.spec.get("valuesFrom") or []:
            if not isinstance(ref, dict) or ref.get("optional"):
                continue
            kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
            if world.find(kind, hr.namespace, name):
                continue
            elsewhere = sorted({o.namespace or "" for o in world.find(kind, None, name)})
            hint = (
                f" (it is in {', '.join(elsewhere)}; helm-controller reads it from the "
                "HelmRelease's namespace)"
                if elsewhere
                else ": create it there (a generated ConfigMap needs its hash suffix mapped), or "
                "mark the reference optional: true"
            )
            yield hr.finding(
                "valuesFrom",
                f"spec.valuesFrom {kind}/{name} is not in namespace {hr.namespace}{hint}",
            )


def _cycles(graph: dict[tuple[str, str], list[tuple[str, str]]]) -> list[list[tuple[str, str]]]:
    """Every elementary cycle found by one DFS (enough to report each loop once)."""
    found: list[list[tuple[str, str]]] = []
    state: dict[tuple[str, str], int] = {}
    stack: list[tuple[str, str]] = []

    def visit(node: tuple[str, str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt in graph and state.get(nxt) is None:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node)
    return found


def check_depends_on(world: World) -> Iterator[Finding]:
    ks_graph = {k: ks.depends_on() for k, ks in world.kustomizations.items()}
    hrs = {(o.namespace or "", o.name): o for o in world.objects if o.kind == "HelmRelease"}
    for key, ks in world.kustomizations.items():
        for dep in ks_graph[key]:
            if dep not in world.kustomizations:
                other = [
                    o.label()
                    for o in world.objects
                    if o.name == dep[1] and o.kind != "Kustomization"
                ]
                names = sorted(f"{n}/{m}" for n, m in world.kustomizations if m == dep[1])
                hint = (
                    f"; a Kustomization of that name exists in {', '.join(names)}: set dependsOn[].namespace"
                    if names
                    else (
                        f"; {', '.join(other[:2])} has that name but is not a Kustomization"
                        if other
                        else ""
                    )
                )
                yield Finding(
                    ks.file,
                    ks.label(),
                    "dependsOn",
                    f"dependsOn Kustomization {dep[0]}/{dep[1]} does not exist (Flux: dependency "
                    f"not found; the namespace defaults to {ks.namespace}){hint}",
                )
    needed = {dep for deps in ks_graph.values() for dep in deps}
    for key in sorted(needed & set(world.kustomizations)):
        ks = world.kustomizations[key]
        if not ks.waits():
            users = sorted(f"{n}/{m}" for n, m in ks_graph if key in ks_graph[(n, m)])
            yield Finding(
                ks.file,
                ks.label(),
                "wait",
                f"{', '.join(users)} dependsOn it, but it has neither wait: true nor healthChecks: "
                "Flux starts the dependents as soon as its apply succeeds, before anything is ready",
                "warning",
            )
    for cycle in _cycles(ks_graph):
        first = world.kustomizations[cycle[0]]
        loop = " -> ".join(f"{n}/{m}" for n, m in cycle)
        yield Finding(
            first.file,
            first.label(),
            "dependsOn",
            f"dependency cycle {loop}: Flux never applies any of them; remove one dependsOn",
        )
    hr_graph: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for key, hr in hrs.items():
        deps = []
        for dep in hr.spec.get("dependsOn") or []:
            if isinstance(dep, dict) and dep.get("name"):
                target = (str(dep.get("namespace") or key[0]), str(dep["name"]))
                deps.append(target)
                if target not in hrs:
                    yield hr.finding(
                        "dependsOn",
                        f"dependsOn HelmRelease {target[0]}/{target[1]} does not exist (a HelmRelease can depend only on HelmReleases; the namespace defaults to {key[0]})",
                    )
        hr_graph[key] = deps
    for cycle in _cycles(hr_graph):
        loop = " -> ".join(f"{n}/{m}" for n, m in cycle)
        yield hrs[cycle[0]].finding(
            "dependsOn", f"HelmRelease dependency cycle {loop}; remove one dependsOn"
        )


def created_namespaces(world: World) -> set[str]:
    made = set(BUILTIN_NAMESPACES)
    for o in world.objects:
        if o.kind == "Namespace" and o.group == "":
            made.add(o.name)
        if o.kind == "HelmRelease" and (o.spec.get("install") or {}).get("createNamespace"):
            made.add(str(o.spec.get("targetNamespace") or o.namespace))
    return made


def check_namespaces(world: World) -> Iterator[Finding]:
    made = created_namespaces(world)
    for o in world.objects:
        if world.scopes.cluster_scoped(o.group, o.kind):
            continue
        ks = o.ks.label() if o.ks else "its Kustomization"
        if not o.namespace:
            yield o.finding(
                "namespace",
                f"namespaced {o.kind} has no namespace (the apply fails with 'namespace not specified'): set metadata.namespace, `namespace:` in its kustomization.yaml, or targetNamespace on {ks}",
            )
        elif o.namespace not in made:
            yield o.finding(
                "namespace",
                f"namespace {o.namespace!r} is not created by any object in the tree: add a Namespace {o.namespace} (e.g. under base/namespaces/)",
            )
        if o.kind == "HelmRelease" and o.spec.get("targetNamespace"):
            t = str(o.spec["targetNamespace"])
            if t not in made:
                yield o.finding(
                    "namespace",
                    f"spec.targetNamespace {t!r} is not created by any object in the tree: add a Namespace, or install.createNamespace: true",
                )


def _closure(world: World, start: FluxKs) -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    todo = start.depends_on()
    while todo:
        k = todo.pop()
        if k in seen or k not in world.kustomizations:
            continue
        seen.add(k)
        todo += world.kustomizations[k].depends_on()
    return seen


def check_crd_order(world: World) -> Iterator[Finding]:
    """A CR must be applied after its CRD exists: Flux dry-runs a whole Kustomization first."""
    src = sources(world)
    providers: dict[str, list[tuple[FluxKs, str]]] = {}  # group -> (ks, what provides it)
    crd_in: dict[tuple[str, str], list[FluxKs]] = {}
    for o in world.objects:
        if o.ks is None:
            continue
        if o.kind == "CustomResourceDefinition":
            key = (str(o.spec.get("group", "")), str((o.spec.get("names") or {}).get("kind", "")))
            crd_in.setdefault(key, []).append(o.ks)
        if o.kind == "HelmRelease":
            for group in CHART_CRDS.get(chart_name(o, src), ()):
                providers.setdefault(group, []).append(
                    (o.ks, f"HelmRelease {o.namespace}/{o.name}")
                )
    for o in world.objects:
        if o.ks is None or not o.group or o.group in BOOTSTRAP_GROUPS or "." not in o.group:
            continue
        if o.group.endswith(".k8s.io") and not o.group.startswith(("gateway.", "snapshot.")):
            continue
        own = crd_in.get((o.group, o.kind), [])
        if o.ks in own:
            continue  # Flux applies CRDs of a Kustomization before its other objects
        if own:
            provs = [(ks, f"the CustomResourceDefinition of {o.kind}") for ks in own]
        else:
            provs = providers.get(o.group, [])
        if not provs:
            yield o.finding(
                "crd-order",
                f"nothing in the tree installs the CRD of {o.kind} ({o.group}): add the HelmRelease of its chart or a CRD layer, and make {o.ks.label()} depend on it",
                "warning",
            )
            continue
        deps = _closure(world, o.ks)
        same = [what for ks, what in provs if ks is o.ks]
        if same:
            yield o.finding(
                "crd-order",
                f"{o.kind} is in the same Flux Kustomization ({o.ks.label()}) as {same[0]}, which "
                f"installs its CRD: Flux dry-runs every object before applying any, so this fails "
                f"with 'no matches for kind {o.kind}'. Move it to a Kustomization that dependsOn {o.ks.name}",
            )
            continue
        ordered = [ks for ks, _ in provs if ks.key in deps]
        if not ordered:
            names = ", ".join(sorted({f"{ks.label()} ({what})" for ks, what in provs}))
            yield o.finding(
                "crd-order",
                f"{o.ks.label()} applies a {o.kind} but does not dependsOn (directly or not) what installs its CRD: {names}",
            )
