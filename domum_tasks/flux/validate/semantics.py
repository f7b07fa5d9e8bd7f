"""Rules the real controllers apply, checked offline (gitops-tree note, failure classes 6-11)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .charts import CHART_CRDS, PRIVILEGED_CHARTS, chart_name
from .core import World
from .crossref import sources
from .model import Finding, Obj

# The only API versions Flux 2.9 serves for its kinds (v1beta2/v2beta2 removed in 2.8/2.9).
FLUX_APIS: dict[str, dict[str, str]] = {
    "source.toolkit.fluxcd.io": {"*": "v1"},
    "kustomize.toolkit.fluxcd.io": {"*": "v1"},
    "helm.toolkit.fluxcd.io": {"*": "v2"},
    "notification.toolkit.fluxcd.io": {"Alert": "v1beta3", "Provider": "v1beta3", "Receiver": "v1"},
    "image.toolkit.fluxcd.io": {"*": "v1"},
    "source.extensions.fluxcd.io": {"*": "v1beta1"},
}
# Core APIs removed from Kubernetes, with what replaced them.
REMOVED_CORE = {
    "extensions/v1beta1": "apps/v1 or networking.k8s.io/v1",
    "apps/v1beta1": "apps/v1",
    "apps/v1beta2": "apps/v1",
    "batch/v1beta1": "batch/v1",
    "networking.k8s.io/v1beta1": "networking.k8s.io/v1",
    "policy/v1beta1": "policy/v1 (PodSecurityPolicy is gone: use Pod Security labels)",
    "autoscaling/v2beta1": "autoscaling/v2",
    "autoscaling/v2beta2": "autoscaling/v2",
    "rbac.authorization.k8s.io/v1beta1": "rbac.authorization.k8s.io/v1",
    "apiextensions.k8s.io/v1beta1": "apiextensions.k8s.io/v1",
    "admissionregistration.k8s.io/v1beta1": "admissionregistration.k8s.io/v1",
    "storage.k8s.io/v1beta1": "storage.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta3": "flowcontrol.apiserver.k8s.io/v1",
}
BASELINE_CAPS = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
PSA_LABEL = "pod-security.kubernetes.io/enforce"
PSA_EXEMPT = frozenset({"kube-system"})
BITNAMI = re.compile(r"(^|[/.])bitnami(charts)?(/|$)|charts\.bitnami\.com")
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
ENC = re.compile(r"^ENC\[AES256_GCM,")


def check_api_versions(world: World) -> Iterator[Finding]:
    for o in world.objects:
        table = FLUX_APIS.get(o.group)
        version = o.api_version.rsplit("/", 1)[-1]
        if table is not None:
            want = table.get(o.kind) or table.get("*")
            if want and version != want:
                yield o.finding(
                    "api-version",
                    f"{o.api_version} is not served by Flux 2.9 (v1beta2/v2beta2 were removed in 2.8/2.9): use {o.group}/{want} (`flux migrate` rewrites it)",
                )
        elif o.api_version in REMOVED_CORE:
            yield o.finding(
                "api-version",
                f"{o.api_version} was removed from Kubernetes: use {REMOVED_CORE[o.api_version]}",
            )


def check_helmreleases(world: World) -> Iterator[Finding]:
    src = sources(world)
    for hr in world.objects:
        if hr.kind != "HelmRelease":
            continue
        has_chart, has_ref = bool(hr.spec.get("chart")), bool(hr.spec.get("chartRef"))
        if has_chart == has_ref:
            yield hr.finding(
                "chart",
                "exactly one of spec.chart or spec.chartRef must be set (helm-controller rejects "
                + ("both" if has_chart else "neither")
                + ")",
            )
        ref = hr.spec.get("chartRef") or {}
        if ref.get("kind") == "OCIRepository":
            oci = src.get(
                ("OCIRepository", str(ref.get("namespace") or hr.namespace), str(ref.get("name")))
            )
            layer = (oci.spec.get("layerSelector") or {}).get("mediaType") if oci else None
            if oci is not None and layer != HELM_LAYER:
                yield oci.finding(
                    "chart",
                    f"OCIRepository used as chartRef by HelmRelease {hr.name} needs layerSelector.mediaType {HELM_LAYER} (and operation: copy)",
                )
        strategy = ((hr.spec.get("upgrade") or {}).get("strategy") or {}).get("name")
        if strategy and strategy not in ("RemediateOnFailure", "RetryOnFailure"):
            yield hr.finding(
                "chart",
                f"spec.upgrade.strategy.name {strategy!r} is not valid; valid: RemediateOnFailure, RetryOnFailure",
            )
        release = str(
            hr.spec.get("releaseName")
            or (
                f"{hr.spec['targetNamespace']}-{hr.name}"
                if hr.spec.get("targetNamespace")
                else hr.name
            )
        )
        if len(release) > 53:
            yield hr.finding(
                "chart",
                f"release name {release!r} is {len(release)} characters; Helm allows 53: set spec.releaseName",
            )
        chart = chart_name(hr, src)
        if chart in CHART_CRDS:
            upgrade = (hr.spec.get("upgrade") or {}).get("crds")
            install = (hr.spec.get("install") or {}).get("crds")
            if upgrade != "CreateReplace" or install not in (None, "Create", "CreateReplace"):
                yield hr.finding(
                    "crds",
                    f"chart {chart} ships CRDs but upgrade.crds is {upgrade or 'unset (Skip)'}: set install.crds and upgrade.crds to CreateReplace so new CRD versions are applied",
                    "warning",
                )


def pod_specs(o: Obj) -> list[dict[str, Any]]:
    if o.kind == "Pod":
        return [o.spec]
    if o.kind in (
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "ReplicationController",
    ):
        return [((o.spec.get("template") or {}).get("spec")) or {}]
    if o.kind == "CronJob":
        job = (o.spec.get("jobTemplate") or {}).get("spec") or {}
        return [((job.get("template") or {}).get("spec")) or {}]
    return []


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for f in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(f) or []
        if isinstance(c, dict)
    ]


def privileged_reason(spec: dict[str, Any]) -> str:
    """Why Pod Security `baseline` rejects this pod spec, or '' if it allows it."""
    for f in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(f):
            return f
    if any("hostPath" in (v or {}) for v in spec.get("volumes") or []):
        return "a hostPath volume"
    for c in _containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            return f"container {c.get('name')} is privileged"
        extra = set((sc.get("capabilities") or {}).get("add") or []) - BASELINE_CAPS
        if extra:
            return f"container {c.get('name')} adds {', '.join(sorted(extra))}"
        if any((p or {}).get("hostPort") for p in c.get("ports") or []):
            return f"container {c.get('name')} uses a hostPort"
    return ""


def check_pod_security(world: World) -> Iterator[Finding]:
    labels = {
        o.name: ((o.meta.get("labels") or {}).get(PSA_LABEL))
        for o in world.objects
        if o.kind == "Namespace" and o.group == ""
    }
    src = sources(world)
    for o in world.objects:
        reason = ""
        ns = o.namespace or ""
        for spec in pod_specs(o):
            reason = reason or privileged_reason(spec)
        if o.kind == "HelmRelease" and chart_name(o, src) in PRIVILEGED_CHARTS:
            reason = f"chart {chart_name(o, src)} runs privileged pods"
            ns = str(o.spec.get("targetNamespace") or ns)
        if not reason or not ns or ns in PSA_EXEMPT or labels.get(ns) == "privileged":
            continue
        where = f"it is {labels[ns]!r}" if labels.get(ns) else "the label is missing"
        yield o.finding(
            "pod-security",
            f"{reason}, which Talos' default Pod Security baseline rejects: label Namespace {ns} {PSA_LABEL}: privileged ({where})",
        )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def check_bitnami(world: World) -> Iterator[Finding]:
    for o in world.objects:
        found: list[str] = []
        for spec in pod_specs(o):
            found += [
                str(c.get("image", ""))
                for c in _containers(spec)
                if BITNAMI.search(str(c.get("image", "")))
            ]
        if o.kind == "HelmRelease":
            found += [s for s in _strings(o.spec.get("values")) if BITNAMI.search(s)]
        if o.kind in ("HelmRepository", "OCIRepository") and BITNAMI.search(
            str(o.spec.get("url", ""))
        ):
            found.append(str(o.spec.get("url")))
        if found:
            yield o.finding(
                "bitnami",
                f"uses Bitnami {found[0]!r}: Bitnami images and charts no longer get updates; use the upstream project's image or chart",
            )


def check_plaintext_secrets(world: World) -> Iterator[Finding]:
    controller_flag = world.settings.sops_age_flag
    for o in world.objects:
        if o.kind != "Secret" or o.group != "":
            continue
        values = {**(o.doc.get("data") or {}), **(o.doc.get("stringData") or {})}
        if "sops" not in o.doc:
            if values:
                yield o.finding(
                    "secret",
                    "plaintext Secret: secrets live only SOPS-encrypted in *.sops.yaml files (`sops --encrypt --in-place` with the .sops.yaml rules, or `inv secrets.edit`)",
                )
            continue
        clear = sorted(k for k, v in values.items() if not ENC.match(str(v)))
        if clear:
            yield o.finding(
                "secret",
                f"SOPS file has unencrypted values for {', '.join(clear)}: re-encrypt it with encrypted_regex ^(data|stringData)$",
            )
        ks = o.ks
        provider = ((ks.spec.get("decryption") or {}).get("provider")) if ks else None
        if ks is not None and provider != "sops" and not controller_flag:
            yield o.finding(
                "secret",
                f"SOPS-encrypted Secret rendered by {ks.label()}, which has no decryption: set spec.decryption.provider: sops (and secretRef sops-age), or give kustomize-controller --sops-age-secret",
            )


def cluster_resource_namespace(world: World) -> str:
    """Where cert-manager reads ClusterIssuer secrets: the namespace of its HelmRelease."""
    src = sources(world)
    for o in world.objects:
        if o.kind == "HelmRelease" and chart_name(o, src) == "cert-manager":
            return str(o.spec.get("targetNamespace") or o.namespace or "cert-manager")
    return "cert-manager"


def check_cert_manager(world: World) -> Iterator[Finding]:
    crn = cluster_resource_namespace(world)
    for o in world.objects:
        if o.kind not in ("ClusterIssuer", "Issuer") or o.group != "cert-manager.io":
            continue
        ns = crn if o.kind == "ClusterIssuer" else (o.namespace or "")
        for solver in (o.spec.get("acme") or {}).get("solvers") or []:
            cf = ((solver or {}).get("dns01") or {}).get("cloudflare") or {}
            ref = cf.get("apiTokenSecretRef") or cf.get("apiKeySecretRef")
            if not isinstance(ref, dict):
                continue
            name, key = str(ref.get("name", "")), str(ref.get("key", ""))
            hits = world.find("Secret", ns, name)
            if not hits:
                elsewhere = sorted({h.namespace or "" for h in world.find("Secret", None, name)})
                hint = f" (it is in {', '.join(elsewhere)})" if elsewhere else ""
                yield o.finding(
                    "cert-manager",
                    f"Cloudflare token Secret {name} must be in namespace {ns}, where cert-manager reads {o.kind} secrets{hint}",
                )
                continue
            data = {**(hits[0].doc.get("data") or {}), **(hits[0].doc.get("stringData") or {})}
            if key and key not in data:
                yield o.finding(
                    "cert-manager",
                    f"Secret {ns}/{name} has no key {key!r} (keys: {', '.join(sorted(data)) or 'none'})",
                )
