"""flux.validate: references the controllers resolve (Traefik Middlewares and Services, Flux
sources in another namespace) and duplicate env names, on the small tree of tests/flux_tree.py
plus Traefik: a release, two Middlewares, an Ingress and an IngressRoute in front of a Service.

Expected ids follow Traefik's own test data: a Middleware `stripprefix` in namespace `default`
is `default-stripprefix@kubernetescrd` (traefik/traefik pkg/provider/kubernetes/crd fixtures and
docs "Kubernetes Middleware": "append the namespace of the resource in the resource-name").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domum_tasks.flux.validate.api import validate
from domum_tasks.flux.validate.envdup import duplicates
from domum_tasks.flux.validate.model import Finding
from domum_tasks.flux.validate.traefik import normalize
from tests import flux_tree as t

TRAEFIK = {
    "cluster/core/traefik.yaml": """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: traefik
  namespace: traefik
spec:
  interval: 12h
  url: oci://ghcr.io/traefik/helm/traefik
  ref:
    tag: 41.3.0
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: traefik
  namespace: traefik
spec:
  interval: 1h
  chartRef:
    kind: OCIRepository
    name: traefik
  install:
    crds: CreateReplace
  upgrade:
    crds: CreateReplace
  values:
    providers:
      kubernetesCRD:
        allowCrossNamespace: true
""",
    "cluster/config/middlewares.yaml": """\
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: authelia
  namespace: traefik
spec:
  forwardAuth:
    address: http://authelia.authelia.svc/api/authz/forward-auth
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: headers
  namespace: demo
spec:
  headers:
    frameDeny: true
""",
    "cluster/apps/web.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: demo
spec:
  selector: {app: demo}
  ports:
    - port: 80
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: demo
  annotations:
    traefik.ingress.kubernetes.io/router.middlewares: traefik-authelia@kubernetescrd, demo-headers@kubernetescrd
spec:
  ingressClassName: traefik
  rules:
    - host: demo.lab.example.org
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: demo
                port:
                  number: 80
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: demo
spec:
  entryPoints: [websecure]
  routes:
    - match: Host(`demo2.lab.example.org`)
      kind: Rule
      middlewares:
        - name: headers
        - name: authelia
          namespace: traefik
      services:
        - name: demo
          port: 80
""",
}
OPEN_SCHEMA = {"type": "object"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = t.write(tmp_path / "repo")
    t.write(repo, TRAEFIK)
    t.edit(repo, "cluster/core/kustomization.yaml", "metallb.yaml]", "metallb.yaml, traefik.yaml]")
    t.edit(
        repo,
        "cluster/config/kustomization.yaml",
        "[cluster-issuer.yaml",
        "[middlewares.yaml, cluster-issuer.yaml",
    )
    t.edit(repo, "cluster/apps/kustomization.yaml", "[demo.yaml]", "[demo.yaml, web.yaml]")
    t.edit(
        repo,
        "cluster/base/namespaces/namespaces.yaml",
        "  name: demo\n",
        "  name: demo\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: traefik\n",
    )
    # The traefik.io CRs need a schema (one without is an error); an open one is enough here.
    schemas = tmp_path / "schemas" / "traefik.io"
    schemas.mkdir(parents=True)
    for kind in ("middleware", "ingressroute"):
        (schemas / f"{kind}_v1alpha1.json").write_text(json.dumps(OPEN_SCHEMA))
    return repo


def run(repo: Path) -> list[Finding]:
    settings = t.settings(repo)
    settings.schema_dirs.append(repo.parent / "schemas")
    return t.errors(validate(settings))


def only(found: list[Finding], check: str) -> Finding:
    hits = [f for f in found if f.check == check]
    assert len(hits) == 1 and len(found) == 1, f"expected one {check} error, got {found}"
    return hits[0]


def test_tree_with_traefik_references_is_clean(repo: Path) -> None:
    assert run(repo) == []


def test_traefik_normalize_matches_its_ids() -> None:
    assert normalize("default-stripprefix") == "default-stripprefix"
    # Traefik's Normalize: each run of non-alphanumerics is one '-', ends trimmed.
    assert normalize("my.ns-mw..x") == "my-ns-mw-x"
    assert normalize("-a__b-") == "a-b"


# --- Middlewares ------------------------------------------------------------------------------


def test_annotation_naming_a_middleware_that_does_not_exist(repo: Path) -> None:
    t.edit(repo, "cluster/apps/web.yaml", "traefik-authelia@", "traefik-authelai@")
    f = only(run(repo), "middleware")
    assert (f.file, f.obj) == ("cluster/apps/web.yaml", "Ingress/demo/demo")
    assert "'traefik-authelai@kubernetescrd'" in f.message
    assert "traefik/authelia" in f.message  # names what does exist


def test_annotation_with_the_name_only_misses_the_namespace_prefix(repo: Path) -> None:
    t.edit(
        repo, "cluster/apps/web.yaml", "traefik-authelia@kubernetescrd", "authelia@kubernetescrd"
    )
    f = only(run(repo), "middleware")
    assert "no Middleware in the tree has the id 'authelia'" in f.message
    assert "traefik/authelia" in f.message


def test_annotation_without_a_provider(repo: Path) -> None:
    t.edit(repo, "cluster/apps/web.yaml", "traefik-authelia@kubernetescrd", "traefik-authelia")
    f = only(run(repo), "middleware")
    assert "traefik-authelia@kubernetes " in f.message and "@kubernetescrd" in f.message


def test_annotation_written_in_helmrelease_values(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/core/cert-manager.yaml",
        "    crds:\n      enabled: true\n",
        "    crds:\n      enabled: true\n    ingress:\n      annotations:\n"
        "        traefik.ingress.kubernetes.io/router.middlewares: traefik-nope@kubernetescrd\n",
    )
    found = run(repo)
    # the small test chart has no `ingress:`, so the chart-values check flags the key too
    assert sorted(f.check for f in found) == ["middleware", "values"]
    [f] = [f for f in found if f.check == "middleware"]
    assert (f.file, f.obj) == (
        "cluster/core/cert-manager.yaml",
        "HelmRelease/cert-manager/cert-manager",
    )
    assert "spec.values.ingress.annotations[" in f.message and "'traefik-nope" in f.message


def test_other_providers_are_not_checked(repo: Path) -> None:
    t.edit(repo, "cluster/apps/web.yaml", "traefik-authelia@kubernetescrd", "auth@file")
    assert run(repo) == []


def test_ingressroute_middleware_that_does_not_exist(repo: Path) -> None:
    t.edit(repo, "cluster/apps/web.yaml", "        - name: headers\n", "        - name: header\n")
    f = only(run(repo), "middleware")
    assert (f.file, f.obj) == ("cluster/apps/web.yaml", "IngressRoute/demo/demo")
    assert "spec.routes[0].middlewares[0] Middleware demo/header does not exist" in f.message


def test_ingressroute_middleware_namespace_defaults_to_the_routes(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/apps/web.yaml",
        "        - name: authelia\n          namespace: traefik\n",
        "        - name: authelia\n",
    )
    f = only(run(repo), "middleware")
    assert (
        "Middleware demo/authelia does not exist" in f.message and "traefik/authelia" in f.message
    )


def test_cross_namespace_middleware_needs_allow_cross_namespace(repo: Path) -> None:
    t.edit(
        repo, "cluster/core/traefik.yaml", "allowCrossNamespace: true", "allowCrossNamespace: false"
    )
    f = only(run(repo), "middleware")
    assert "Middleware traefik/authelia is in another namespace" in f.message
    assert "allowCrossNamespace" in f.message


def test_middleware_a_chart_writes_is_not_reported(repo: Path) -> None:
    t.edit(repo, "cluster/apps/web.yaml", "traefik-authelia@", "traefik-forward@")
    t.edit(
        repo,
        "cluster/core/traefik.yaml",
        "  values:\n",
        "  values:\n    extraObjects:\n      - apiVersion: traefik.io/v1alpha1\n"
        "        kind: Middleware\n        metadata:\n          name: forward\n",
    )
    assert run(repo) == []


# --- Services ---------------------------------------------------------------------------------


def test_ingress_backend_service_not_in_the_tree(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/apps/web.yaml",
        "                name: demo\n",
        "                name: demo-web\n",
    )
    f = only(run(repo), "service")
    assert (f.file, f.obj) == ("cluster/apps/web.yaml", "Ingress/demo/demo")
    assert "Service demo/demo-web" in f.message and "no HelmRelease installs into demo" in f.message


def test_ingressroute_service_in_another_namespace_names_where_it_is(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/apps/web.yaml",
        "        - name: demo\n          port: 80",
        "        - name: demo\n          namespace: default\n          port: 80",
    )
    f = only(run(repo), "service")
    assert f.obj == "IngressRoute/demo/demo"
    assert "Service default/demo" in f.message and "exists in demo" in f.message


def test_service_a_chart_may_render_is_not_reported(repo: Path) -> None:
    # A HelmRelease installs into traefik: its chart could render the Service, so no finding.
    t.edit(
        repo,
        "cluster/apps/web.yaml",
        "        - name: demo\n          port: 80",
        "        - name: traefik-dashboard\n          namespace: traefik\n          port: 80",
    )
    assert run(repo) == []


# --- Flux sources in another namespace -------------------------------------------------------


def test_helmrelease_source_ref_in_the_wrong_namespace_names_where_it_is(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/core/cert-manager.yaml",
        "        name: jetstack\n",
        "        name: jetstack\n        namespace: flux-system\n",
    )
    f = only(run(repo), "sourceRef")
    assert (f.file, f.obj) == (
        "cluster/core/cert-manager.yaml",
        "HelmRelease/cert-manager/cert-manager",
    )
    assert "HelmRepository/flux-system/jetstack does not exist" in f.message
    assert (
        "HelmRepository jetstack exists in cert-manager: set spec.chart.spec.sourceRef.namespace"
        in f.message
    )


def test_chart_ref_defaults_to_the_helmreleases_namespace(repo: Path) -> None:
    # The OCIRepository moves to flux-system; the chartRef without namespace looks in traefik.
    t.edit(
        repo,
        "cluster/core/traefik.yaml",
        "  name: traefik\n  namespace: traefik\nspec:\n  interval: 12h",
        "  name: traefik\n  namespace: flux-system\nspec:\n  interval: 12h",
    )
    found = [f for f in run(repo) if f.check == "sourceRef"]
    assert len(found) == 1, found
    assert found[0].obj == "HelmRelease/traefik/traefik"
    assert (
        "OCIRepository traefik exists in flux-system: set spec.chartRef.namespace"
        in found[0].message
    )


# --- duplicate env names ----------------------------------------------------------------------


def test_duplicates_helper() -> None:
    assert duplicates([{"name": "A"}, {"name": "B"}, {"name": "A"}, {"name": "A"}]) == ["A"]
    assert duplicates({"A": "1"}) == []


def test_duplicate_env_in_a_deployment(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/apps/demo.yaml",
        "          image: ghcr.io/example/demo:1.0.0\n",
        "          image: ghcr.io/example/demo:1.0.0\n          env:\n"
        "            - {name: TZ, value: UTC}\n            - {name: LANG, value: C}\n"
        "            - {name: TZ, value: Europe/Berlin}\n",
    )
    f = only(run(repo), "env")
    assert (f.file, f.obj) == ("cluster/apps/demo.yaml", "Deployment/demo/demo")
    assert "spec.template.spec.containers[demo].env sets env TZ more than once" in f.message


def test_duplicate_env_in_an_init_container_of_a_cronjob(repo: Path) -> None:
    t.write(
        repo,
        {
            "cluster/apps/job.yaml": """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          initContainers:
            - name: prep
              image: ghcr.io/example/demo:1.0.0
              env: [{name: A, value: "1"}, {name: A, value: "2"}]
          containers:
            - name: tick
              image: ghcr.io/example/demo:1.0.0
"""
        },
    )
    t.edit(repo, "cluster/apps/kustomization.yaml", "[demo.yaml,", "[demo.yaml, job.yaml,")
    f = only(run(repo), "env")
    assert f.obj == "CronJob/demo/tick"
    assert "spec.jobTemplate.spec.template.spec.initContainers[prep].env sets env A" in f.message


APP_TEMPLATE_ENV = """\
    controllers:
      main:
        containers:
          app:
            env:
{env}
"""


@pytest.mark.parametrize(
    ("env", "bad"),
    [
        ("              - {name: TZ, value: UTC}\n              - {name: TZ, value: UTC}", True),
        ("              - {name: TZ, value: UTC}\n              - {name: LANG, value: C}", False),
        ("              TZ: UTC\n              LANG: C", False),  # the map form
    ],
)
def test_duplicate_env_in_app_template_values(repo: Path, env: str, bad: bool) -> None:
    t.edit(
        repo,
        "cluster/core/traefik.yaml",
        "  values:\n",
        "  values:\n" + APP_TEMPLATE_ENV.format(env=env),
    )
    found = run(repo)
    if not bad:
        assert found == []
        return
    f = only(found, "env")
    assert (f.file, f.obj) == ("cluster/core/traefik.yaml", "HelmRelease/traefik/traefik")
    assert "spec.values.controllers.main.containers.app.env sets env TZ more than once" in f.message
