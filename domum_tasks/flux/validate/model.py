"""The data the validator passes around: findings, rendered objects, Flux Kustomizations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

# Built in to every cluster, or created by `flux bootstrap` before any Kustomization runs.
BUILTIN_NAMESPACES = frozenset(
    {"default", "kube-system", "kube-public", "kube-node-lease", "flux-system"}
)
FLUX_SYSTEM = "flux-system"
KS_API_GROUP = "kustomize.toolkit.fluxcd.io"


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: where (file, object), which check, and what would be valid."""

    file: str
    obj: str
    check: str
    message: str
    severity: Severity = "error"

    def to_dict(self) -> dict[str, str]:
        return {
            "file": self.file,
            "object": self.obj,
            "check": self.check,
            "severity": self.severity,
            "message": self.message,
        }


def group_of(api_version: str) -> str:
    """'helm.toolkit.fluxcd.io/v2' -> 'helm.toolkit.fluxcd.io'; 'v1' -> '' (the core group)."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def version_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[-1]


def is_flux_ks(doc: dict[str, Any]) -> bool:
    api = str(doc.get("apiVersion", ""))
    return doc.get("kind") == "Kustomization" and api.startswith(KS_API_GROUP + "/")


@dataclass(eq=False)  # identity: the same object rendered twice is two objects
class Obj:
    """One rendered object, the file it most likely came from, and the Kustomization that applies it."""

    doc: dict[str, Any]
    file: str
    ks: FluxKs | None = None

    @property
    def api_version(self) -> str:
        return str(self.doc.get("apiVersion", ""))

    @property
    def group(self) -> str:
        return group_of(self.api_version)

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def meta(self) -> dict[str, Any]:
        m = self.doc.get("metadata")
        return m if isinstance(m, dict) else {}

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = self.meta.get("namespace")
        return str(ns) if ns else None

    @property
    def spec(self) -> dict[str, Any]:
        s = self.doc.get("spec")
        return s if isinstance(s, dict) else {}

    def label(self) -> str:
        """'HelmRelease/cert-manager/cert-manager' (kind/namespace/name) or 'Namespace/longhorn'."""
        ns, name = self.namespace, self.name or "(no name)"
        return f"{self.kind}/{ns}/{name}" if ns else f"{self.kind}/{name}"

    def finding(
        self, check: str, message: str, severity: Severity = "error", file: str = ""
    ) -> Finding:
        return Finding(file or self.file, self.label(), check, message, severity)


@dataclass(eq=False)
class FluxKs:
    """A Flux Kustomization: the object that declares it, and what its path renders to."""

    name: str
    namespace: str
    path: str  # as written in spec.path
    spec: dict[str, Any]
    declared_in: Obj | None  # None for an entry point (the bootstrap's flux-system Kustomization)
    objects: list[Obj] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def label(self) -> str:
        return f"Kustomization/{self.namespace}/{self.name}"

    @property
    def file(self) -> str:
        return self.declared_in.file if self.declared_in else self.path

    def waits(self) -> bool:
        """Flux waits for a dependency's health only with wait: true or healthChecks."""
        return (
            bool(self.spec.get("wait"))
            or bool(self.spec.get("healthChecks"))
            or bool(self.spec.get("healthCheckExprs"))
        )

    def depends_on(self) -> list[tuple[str, str]]:
        """(namespace, name) of each dependsOn; the namespace defaults to this one's, as in Flux."""
        out = []
        for dep in self.spec.get("dependsOn") or []:
            if isinstance(dep, dict) and dep.get("name"):
                out.append((str(dep.get("namespace") or self.namespace), str(dep["name"])))
        return out


@dataclass(frozen=True)
class SiteFacts:
    """What the inventory says; `source` names the file for messages."""

    source: str
    vip: str | None = None
    domain: str | None = None
    pool: tuple[str, ...] = ()  # MetalLB addresses: "a.b.c.d-a.b.c.e" or CIDRs
