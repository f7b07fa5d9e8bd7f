"""Which kinds are cluster-scoped: core kinds from the Kubernetes API, CRs from their CRDs.

kubeconform-layout schemas do not record a CRD's scope, so CRDs found in the tree decide first,
then the short list of well-known cluster-scoped custom kinds below; any other kind is namespaced.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import Obj

CORE_CLUSTER_SCOPED = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("resource.k8s.io", "DeviceClass"),
    }
)
KNOWN_CLUSTER_CRS = frozenset(
    {
        ("cert-manager.io", "ClusterIssuer"),
        ("gateway.networking.k8s.io", "GatewayClass"),
        ("postgresql.cnpg.io", "ClusterImageCatalog"),
        ("snapshot.storage.k8s.io", "VolumeSnapshotClass"),
        ("snapshot.storage.k8s.io", "VolumeSnapshotContent"),
    }
)


class Scopes:
    def __init__(self, crds: Iterable[Obj] = ()) -> None:
        self.crd_scope: dict[tuple[str, str], bool] = {}
        for crd in crds:
            self.add_crd(crd)

    def add_crd(self, crd: Obj) -> None:
        spec = crd.spec
        names = spec.get("names") or {}
        if spec.get("group") and names.get("kind"):
            key = (str(spec["group"]), str(names["kind"]))
            self.crd_scope[key] = spec.get("scope") == "Cluster"

    def cluster_scoped(self, group: str, kind: str) -> bool:
        key = (group, kind)
        if key in self.crd_scope:
            return self.crd_scope[key]
        return key in CORE_CLUSTER_SCOPED or key in KNOWN_CLUSTER_CRS
