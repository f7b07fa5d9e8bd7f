"""References Traefik resolves: the Middlewares named by IngressRoutes and by Ingress/Service
annotations (also where a HelmRelease's values write those annotations), and the Services that
Ingresses and IngressRoutes route to.

How Traefik resolves them (traefik/traefik v3, read at fd5a576):
- a `kubernetescrd` Middleware's id is Normalize(namespace + "-" + name)
  (pkg/provider/kubernetes/crd/kubernetes.go makeID, loadConfigurationFromCRD), where Normalize
  turns each run of characters that are not letters or digits into one '-'
  (pkg/provider/configuration.go Normalize);
- an IngressRoute's `middlewares[]` entry without '@' is in `namespace`, default the route's, and
  another namespace needs allowCrossNamespace; a name with '@' is taken as is, and
  `@kubernetescrd` there needs allowCrossNamespace too (crd/kubernetes.go resolveReference);
- the annotations `traefik.ingress.kubernetes.io/{router,service}.middlewares` are lists split on
  commas (ingress/annotations.go, annotations_test.go "foobar,foobar"); a name without '@' is
  qualified with the Ingress provider, `<name>@kubernetes` (pkg/server/provider GetQualifiedName),
  which defines no Middlewares, so a CRD Middleware is written `<namespace>-<name>@kubernetescrd`.

A name a chart renders cannot be known offline. So a Middleware counts as missing only when no
HelmRelease writes one in its values (as extraObjects/rawResources do), and a Service only when no
HelmRelease installs into its namespace: a chart there could render it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .charts import chart_name
from .core import World
from .crossref import sources
from .model import Finding, Obj

ANNOTATIONS = (
    "traefik.ingress.kubernetes.io/router.middlewares",
    "traefik.ingress.kubernetes.io/service.middlewares",
)
CRD = "kubernetescrd"
TRAEFIK_GROUP = "traefik.io"
ROUTE_KINDS = ("IngressRoute",)


def normalize(name: str) -> str:
    """Traefik's Normalize: runs of non-alphanumeric characters become one '-', ends trimmed."""
    return "-".join(p for p in re.split(r"[\W_]+", name) if p)


def release_namespace(hr: Obj) -> str:
    return str(hr.spec.get("targetNamespace") or hr.namespace or "")


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every (path, value) below node, dicts and lists alike."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


class Middlewares:
    """The Middlewares of one world, by Traefik id, and the namespaces where a chart makes some."""

    def __init__(self, world: World) -> None:
        self.by_id: dict[str, Obj] = {}
        self.charted: set[str] = set()  # namespaces where a release writes Middleware objects
        self.any_charted = False  # a release writes one whose namespace or name is templated
        for o in world.objects:
            if o.kind == "Middleware" and o.group == TRAEFIK_GROUP:
                self.by_id[normalize(f"{o.namespace}-{o.name}")] = o
            if o.kind == "HelmRelease":
                for _, v in _walk(o.spec.get("values"), ""):
                    if isinstance(v, dict) and v.get("kind") == "Middleware":
                        meta = v.get("metadata")
                        meta = meta if isinstance(meta, dict) else {}
                        ns = str(meta.get("namespace") or release_namespace(o))
                        self.charted.add(ns)
                        self.any_charted |= "{{" in f"{ns}{meta.get('name', '')}"

    def resolves(self, ident: str) -> bool:
        if ident in self.by_id or self.any_charted:
            return True
        return any(ident.startswith(normalize(ns) + "-") for ns in self.charted)

    def hint(self, name: str) -> str:
        same = sorted(f"{o.namespace}/{o.name}" for o in self.by_id.values() if o.name == name)
        if not same:
            same = sorted(f"{o.namespace}/{o.name}" for o in self.by_id.values())[:4]
        return f"; Middlewares in the tree: {', '.join(same)}" if same else ""


def allow_cross_namespace(world: World) -> bool:
    """providers.kubernetesCRD.allowCrossNamespace of the tree's Traefik release (the chart's
    default and Traefik's is false), or the same flag in its additionalArguments."""
    src = sources(world)
    for hr in world.objects:
        if hr.kind != "HelmRelease" or chart_name(hr, src) != "traefik":
            continue
        values = hr.spec.get("values") or {}
        crd = (values.get("providers") or {}).get("kubernetesCRD") or {}
        if crd.get("allowCrossNamespace") is True:
            return True
        for arg in values.get("additionalArguments") or []:
            flag = str(arg).lower()
            if flag.startswith("--providers.kubernetescrd.allowcrossnamespace"):
                return not flag.endswith("=false")
    return False


def _annotation_refs(value: str) -> list[str]:
    return [n.strip() for n in str(value).split(",") if n.strip()]


def _check_annotation(owner: Obj, where: str, value: object, mws: Middlewares) -> Iterator[Finding]:
    if "${" in str(value):
        return  # an unresolved post-build variable: the substitution check reports it
    for ref in _annotation_refs(str(value)):
        name, _, provider = ref.partition("@")
        if not provider:
            yield owner.finding(
                "middleware",
                f"{where} names {ref!r} without a provider: Traefik looks for {ref}@kubernetes "
                f"(the Ingress provider, which has no Middlewares); a Middleware CRD is "
                f"'<namespace>-<name>@{CRD}'{mws.hint(ref)}",
            )
        elif provider == CRD and not mws.resolves(name):
            yield owner.finding(
                "middleware",
                f"{where} names {ref!r}, but no Middleware in the tree has the id {name!r} "
                f"(Traefik's id is '<namespace>-<name>'){mws.hint(name)}",
            )


def _check_route(route_obj: Obj, mws: Middlewares, cross: bool) -> Iterator[Finding]:
    own = route_obj.namespace or ""
    for i, route in enumerate(route_obj.spec.get("routes") or []):
        if not isinstance(route, dict):
            continue
        for j, mw in enumerate(route.get("middlewares") or []):
            if not isinstance(mw, dict) or not mw.get("name"):
                continue
            where = f"spec.routes[{i}].middlewares[{j}]"
            name, ns = str(mw["name"]), str(mw.get("namespace") or own)
            if "@" in name:
                ident, _, provider = name.partition("@")
                if provider != CRD:
                    continue  # another provider's (file, internal): not in the tree
                if not cross:
                    yield route_obj.finding(
                        "middleware",
                        f"{where} {name!r}: Traefik rejects @{CRD} references in an IngressRoute "
                        f"unless providers.kubernetesCRD.allowCrossNamespace is true; write "
                        f"name: <name> and namespace: <namespace>",
                    )
                elif not mws.resolves(ident):
                    yield route_obj.finding(
                        "middleware",
                        f"{where} {name!r}: no Middleware in the tree has the id {ident!r}"
                        f"{mws.hint(ident)}",
                    )
                continue
            if ns != own and not cross:
                yield route_obj.finding(
                    "middleware",
                    f"{where} Middleware {ns}/{name} is in another namespace than the route "
                    f"({own}): Traefik rejects it unless providers.kubernetesCRD."
                    "allowCrossNamespace is true in the Traefik release",
                )
            elif not mws.resolves(normalize(f"{ns}-{name}")):
                yield route_obj.finding(
                    "middleware",
                    f"{where} Middleware {ns}/{name} does not exist in the tree (the namespace "
                    f"defaults to the route's){mws.hint(name)}",
                )


def check_middlewares(world: World) -> Iterator[Finding]:
    mws = Middlewares(world)
    cross = allow_cross_namespace(world)
    for o in world.objects:
        if o.kind in ROUTE_KINDS and o.group == TRAEFIK_GROUP:
            yield from _check_route(o, mws, cross)
        annotations = o.meta.get("annotations")
        if isinstance(annotations, dict) and o.kind in ("Ingress", "Service"):
            for key in ANNOTATIONS:
                if key in annotations:
                    yield from _check_annotation(o, f"annotation {key}", annotations[key], mws)
        if o.kind == "HelmRelease":
            for path, v in _walk(o.spec.get("values"), "spec.values"):
                if isinstance(v, dict):
                    for key in ANNOTATIONS:
                        if key in v:
                            yield from _check_annotation(o, f"{path}[{key}]", v[key], mws)


def _ingress_services(o: Obj) -> Iterator[tuple[str, str, str]]:
    """(where, namespace, name) of each Service an Ingress or IngressRoute sends traffic to."""
    own = o.namespace or ""
    if o.kind == "Ingress":
        default = ((o.spec.get("defaultBackend") or {}).get("service") or {}).get("name")
        if default:
            yield "spec.defaultBackend.service", own, str(default)
        for i, rule in enumerate(o.spec.get("rules") or []):
            paths = ((rule or {}).get("http") or {}).get("paths") or []
            for j, p in enumerate(paths):
                name = (((p or {}).get("backend") or {}).get("service") or {}).get("name")
                if name:
                    yield f"spec.rules[{i}].http.paths[{j}].backend.service", own, str(name)
    elif o.kind in ROUTE_KINDS and o.group == TRAEFIK_GROUP:
        for i, route in enumerate(o.spec.get("routes") or []):
            for j, svc in enumerate((route or {}).get("services") or []):
                if isinstance(svc, dict) and svc.get("kind", "Service") == "Service":
                    ns = str(svc.get("namespace") or own)
                    yield f"spec.routes[{i}].services[{j}]", ns, str(svc.get("name", ""))


def check_services(world: World) -> Iterator[Finding]:
    charted = {release_namespace(o) for o in world.objects if o.kind == "HelmRelease"}
    services = {(o.namespace or "", o.name) for o in world.objects if o.kind == "Service"}
    for o in world.objects:
        if o.kind not in ("Ingress", *ROUTE_KINDS):
            continue
        for where, ns, name in _ingress_services(o):
            if (ns, name) in services or ns in charted or "${" in name:
                continue
            elsewhere = sorted(n for n, m in services if m == name)
            hint = f"; a Service {name} exists in {', '.join(elsewhere)}" if elsewhere else ""
            yield o.finding(
                "service",
                f"{where} names Service {ns}/{name}, which is not in the tree, and no HelmRelease "
                f"installs into {ns} that could render it{hint}",
            )
