"""A small but complete GitOps tree for the validator's tests, written into a temp repo.

Layers as the real tree: overlays/homelab -> flux/ (the Flux Kustomizations) -> core (cert-manager,
metallb) -> config (ClusterIssuer, IPAddressPool, after their CRDs) -> apps (one Deployment).
It validates clean; each test applies one fault with `write`/`edit` and expects one message.
"""

from __future__ import annotations

from pathlib import Path

from domum_tasks.flux.validate.api import validate
from domum_tasks.flux.validate.core import Settings
from domum_tasks.flux.validate.model import Finding, SiteFacts

SCHEMAS = Path(__file__).parent / "data" / "flux_schemas"
CHARTS = Path(__file__).parent / "data" / "charts"  # small charts written for the tests
RECIPIENT = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"
ENC = "ENC[AES256_GCM,data:3q2+7w==,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]"

KS = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
  interval: 1h
  path: {path}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""

FILES: dict[str, str] = {
    ".sops.yaml": f"""\
creation_rules:
  - path_regex: cluster/.*\\.sops\\.ya?ml$
    encrypted_regex: ^(data|stringData)$
    age: {RECIPIENT}
""",
    "cluster/overlays/homelab/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../flux
  - settings.yaml
""",
    "cluster/overlays/homelab/settings.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cluster-settings
  namespace: flux-system
data:
  DOMAIN: lab.example.org
  LB_RANGE: 10.0.10.200-10.0.10.220
""",
    "cluster/flux/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [namespaces.yaml, core.yaml, config.yaml, apps.yaml]
""",
    "cluster/flux/namespaces.yaml": KS.format(name="namespaces", path="./cluster/base/namespaces")
    + "  wait: true\n",
    "cluster/flux/core.yaml": KS.format(name="core", path="./cluster/core")
    + "  wait: true\n  dependsOn:\n    - name: namespaces\n",
    "cluster/flux/config.yaml": KS.format(name="config", path="./cluster/config")
    + """\
  wait: true
  dependsOn:
    - name: core
  decryption:
    provider: sops
    secretRef:
      name: sops-age
  postBuild:
    substituteFrom:
      - kind: ConfigMap
        name: cluster-settings
""",
    "cluster/flux/apps.yaml": KS.format(name="apps", path="./cluster/apps")
    + "  dependsOn:\n    - name: config\n",
    "cluster/base/namespaces/namespaces.yaml": """\
apiVersion: v1
kind: Namespace
metadata:
  name: cert-manager
---
apiVersion: v1
kind: Namespace
metadata:
  name: metallb-system
  labels:
    pod-security.kubernetes.io/enforce: privileged
---
apiVersion: v1
kind: Namespace
metadata:
  name: demo
""",
    "cluster/core/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [cert-manager.yaml, metallb.yaml]
""",
    "cluster/core/cert-manager.yaml": """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: jetstack
  namespace: cert-manager
spec:
  interval: 12h
  url: https://charts.jetstack.io
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: cert-manager
  namespace: cert-manager
spec:
  interval: 1h
  chart:
    spec:
      chart: cert-manager
      version: v1.21.1
      sourceRef:
        kind: HelmRepository
        name: jetstack
  install:
    crds: CreateReplace
  upgrade:
    crds: CreateReplace
  values:
    crds:
      enabled: true
""",
    "cluster/core/metallb.yaml": """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: metallb
  namespace: metallb-system
spec:
  interval: 12h
  url: oci://quay.io/metallb/chart/metallb
  ref:
    tag: 0.16.1
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: metallb
  namespace: metallb-system
spec:
  interval: 1h
  chartRef:
    kind: OCIRepository
    name: metallb
  install:
    crds: CreateReplace
  upgrade:
    crds: CreateReplace
""",
    "cluster/config/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [cluster-issuer.yaml, pool.yaml, cloudflare.sops.yaml]
""",
    "cluster/config/cluster-issuer.yaml": """\
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: letsencrypt-staging
spec:
  acme:
    server: https://acme-staging-v02.api.letsencrypt.org/directory
    privateKeySecretRef:
      name: letsencrypt-staging
    solvers:
      - dns01:
          cloudflare:
            apiTokenSecretRef:
              name: cloudflare-token
              key: api-token
        selector:
          dnsZones: ["${DOMAIN}"]
""",
    "cluster/config/pool.yaml": """\
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: default
  namespace: metallb-system
spec:
  addresses: ["${LB_RANGE}"]
""",
    "cluster/config/cloudflare.sops.yaml": f"""\
apiVersion: v1
kind: Secret
metadata:
  name: cloudflare-token
  namespace: cert-manager
type: Opaque
stringData:
  api-token: {ENC}
sops:
  age:
    - recipient: {RECIPIENT}
      enc: |
        -----BEGIN AGE ENCRYPTED FILE-----
        YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==
        -----END AGE ENCRYPTED FILE-----
  lastmodified: "2026-11-30T10:00:00Z"
  mac: {ENC}
  encrypted_regex: ^(data|stringData)$
  version: 3.11.0
""",
    "cluster/apps/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: demo
resources: [demo.yaml]
""",
    "cluster/apps/demo.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
spec:
  replicas: 1
  selector:
    matchLabels: {app: demo}
  template:
    metadata:
      labels: {app: demo}
    spec:
      containers:
        - name: demo
          image: ghcr.io/example/demo:1.0.0
""",
    "cluster/core/02-flux/gotk-components.yaml": """\
---
# This manifest was generated by flux. DO NOT EDIT.
# Flux Version: v2.9.4
# Components: source-controller,kustomize-controller,helm-controller,notification-controller
""",
}

SITE = SiteFacts(
    "domum.yaml", vip="10.0.10.80", domain="lab.example.org", pool=("10.0.10.200-10.0.10.220",)
)


def write(repo: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files if files is not None else FILES).items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return repo


def edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))


def settings(repo: Path, site: SiteFacts | None = SITE) -> Settings:
    return Settings(
        repo_root=repo,
        tree=repo / "cluster",
        k8s_version="v1.35.4",
        schema_dirs=[SCHEMAS],
        site=site,
        flux_version="v2.9.4",
        chart_dirs=[CHARTS],
    )


def run(repo: Path, site: SiteFacts | None = SITE) -> list[Finding]:
    return validate(settings(repo, site))


def errors(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.severity == "error"]
