"""What Domum knows about charts: which ship CRDs (and of which API groups), which need a
privileged namespace on Talos. Matching is by chart name, the last segment of an OCI URL."""

from __future__ import annotations

from .model import Obj

# chart -> API groups of the CRDs it installs (install.crds defaults to Create in Flux)
CHART_CRDS: dict[str, frozenset[str]] = {
    "cert-manager": frozenset({"cert-manager.io", "acme.cert-manager.io"}),
    "metallb": frozenset({"metallb.io"}),
    "longhorn": frozenset({"longhorn.io"}),
    "traefik": frozenset({"traefik.io", "hub.traefik.io"}),
    "traefik-crds": frozenset({"traefik.io", "hub.traefik.io"}),
    "kube-prometheus-stack": frozenset({"monitoring.coreos.com"}),
    "prometheus-operator-crds": frozenset({"monitoring.coreos.com"}),
    "cloudnative-pg": frozenset({"postgresql.cnpg.io"}),
    "vault-secrets-operator": frozenset({"secrets.hashicorp.com"}),
    "dragonfly-operator": frozenset({"dragonflydb.io"}),
}
# Charts whose pods Talos' default `baseline` Pod Security profile rejects (hostNetwork,
# hostPath, privileged containers, NET_ADMIN): their namespace needs enforce=privileged.
PRIVILEGED_CHARTS = frozenset(
    {
        "longhorn",
        "metallb",
        "kube-prometheus-stack",
        "prometheus-node-exporter",
        "csi-driver-nfs",
        "pihole",
    }
)
# API groups the cluster has before any Kustomization: Flux's own, from gotk-components.
BOOTSTRAP_GROUPS = frozenset(
    {
        "source.toolkit.fluxcd.io",
        "kustomize.toolkit.fluxcd.io",
        "helm.toolkit.fluxcd.io",
        "notification.toolkit.fluxcd.io",
        "image.toolkit.fluxcd.io",
        "source.extensions.fluxcd.io",
    }
)


def chart_name(hr: Obj, sources: dict[tuple[str, str, str], Obj]) -> str:
    """The chart a HelmRelease installs: spec.chart.spec.chart, or the chartRef source's URL."""
    chart = (hr.spec.get("chart") or {}).get("spec") or {}
    if chart.get("chart"):
        return str(chart["chart"]).rstrip("/").rsplit("/", 1)[-1]
    ref = hr.spec.get("chartRef") or {}
    src = sources.get(
        (str(ref.get("kind")), str(ref.get("namespace") or hr.namespace), str(ref.get("name")))
    )
    if src is not None:
        if src.kind == "HelmChart":
            return str(src.spec.get("chart", "")).rsplit("/", 1)[-1]
        return str(src.spec.get("url", "")).rstrip("/").rsplit("/", 1)[-1]
    return str(ref.get("name", ""))
