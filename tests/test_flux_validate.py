"""flux.validate on a small tree written in tests/ (any clone): the clean tree passes, and each
injected fault fails with one message that names the file, the object and what would be valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from domum_tasks.flux.validate.model import Finding
from tests import flux_tree as t


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return t.write(tmp_path / "repo")


def only(found: list[Finding], check: str) -> Finding:
    hits = [f for f in t.errors(found) if f.check == check]
    assert len(hits) == 1, f"expected one {check} error, got {t.errors(found)}"
    return hits[0]


def test_clean_tree_has_no_findings(repo: Path) -> None:
    assert t.run(repo) == []


# --- the nine injected faults of issue 10 ----------------------------------------------------


def test_plaintext_secret(repo: Path) -> None:
    t.write(
        repo,
        {
            "cluster/apps/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n"
            "stringData:\n  password: hunter2\n"
        },
    )
    t.edit(repo, "cluster/apps/kustomization.yaml", "[demo.yaml]", "[demo.yaml, secret.yaml]")
    f = only(t.run(repo), "secret")
    assert (f.file, f.obj) == ("cluster/apps/secret.yaml", "Secret/demo/db")
    assert "plaintext Secret" in f.message and "*.sops.yaml" in f.message


def test_helmrelease_whose_source_does_not_exist(repo: Path) -> None:
    t.edit(
        repo, "cluster/core/cert-manager.yaml", "        name: jetstack", "        name: jetstak"
    )
    f = only(t.run(repo), "sourceRef")
    assert (f.file, f.obj) == (
        "cluster/core/cert-manager.yaml",
        "HelmRelease/cert-manager/cert-manager",
    )
    assert "HelmRepository/cert-manager/jetstak does not exist" in f.message
    assert "HelmRepository/cert-manager/jetstack" in f.message  # says what would be valid


def test_deployment_with_an_unknown_field(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/apps/demo.yaml",
        "          image:",
        "          imagePullPolicyy: Always\n          image:",
    )
    f = only(t.run(repo), "schema")
    assert (f.file, f.obj) == ("cluster/apps/demo.yaml", "Deployment/demo/demo")
    assert f.message.startswith("spec.template.spec.containers.0: Additional properties")
    assert "'imagePullPolicyy' was unexpected" in f.message and "v1.35" in f.message


def test_helmrelease_with_a_misspelt_spec_field(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/core/metallb.yaml",
        "  interval: 1h\n  chartRef",
        "  intervall: 1h\n  chartRef",
    )
    found = t.errors(t.run(repo))
    msgs = [f.message for f in found if f.obj == "HelmRelease/metallb-system/metallb"]
    assert any("'intervall' was unexpected" in m for m in msgs), found
    assert all(f.file == "cluster/core/metallb.yaml" for f in found)


def test_depends_on_nothing(repo: Path) -> None:
    t.edit(repo, "cluster/flux/apps.yaml", "name: config", "name: configs")
    f = only(t.run(repo), "dependsOn")
    assert (f.file, f.obj) == ("cluster/flux/apps.yaml", "Kustomization/flux-system/apps")
    assert "flux-system/configs does not exist" in f.message


def test_depends_on_in_the_wrong_namespace_names_the_right_one(repo: Path) -> None:
    t.edit(repo, "cluster/flux/apps.yaml", "name: config", "name: config\n      namespace: apps")
    f = only(t.run(repo), "dependsOn")
    assert "apps/config does not exist" in f.message and "flux-system/config" in f.message


def test_dependency_cycle(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/flux/namespaces.yaml",
        "  wait: true\n",
        "  wait: true\n  dependsOn:\n    - name: apps\n",
    )
    f = only(t.run(repo), "dependsOn")
    assert "dependency cycle" in f.message
    for name in ("apps", "config", "core", "namespaces"):
        assert f"flux-system/{name}" in f.message


def test_cluster_issuer_next_to_the_cert_manager_helmrelease(repo: Path) -> None:
    issuer = (repo / "cluster/config/cluster-issuer.yaml").read_text()
    (repo / "cluster/core/cluster-issuer.yaml").write_text(
        issuer.replace("${DOMAIN}", "lab.example.org")
    )
    t.edit(
        repo,
        "cluster/core/kustomization.yaml",
        "metallb.yaml]",
        "metallb.yaml, cluster-issuer.yaml]",
    )
    t.edit(repo, "cluster/config/kustomization.yaml", "cluster-issuer.yaml, ", "")
    f = only(t.run(repo), "crd-order")
    assert (f.file, f.obj) == (
        "cluster/core/cluster-issuer.yaml",
        "ClusterIssuer/letsencrypt-staging",
    )
    assert "same Flux Kustomization (Kustomization/flux-system/core)" in f.message
    assert "HelmRelease cert-manager/cert-manager" in f.message and "dependsOn core" in f.message


def test_undefined_variable(repo: Path) -> None:
    t.edit(repo, "cluster/config/pool.yaml", "${LB_RANGE}", "${LB_RANG}")
    found = t.errors(t.run(repo))
    f = next(f for f in found if f.check == "substitute")
    assert (f.file, f.obj) == ("cluster/config/pool.yaml", "IPAddressPool/metallb-system/default")
    assert "${LB_RANG} is not defined for Kustomization/flux-system/config" in f.message


def test_namespaced_object_without_namespace(repo: Path) -> None:
    t.edit(repo, "cluster/apps/kustomization.yaml", "namespace: demo\n", "")
    f = only(t.run(repo), "namespace")
    assert (f.file, f.obj) == ("cluster/apps/demo.yaml", "Deployment/demo")
    assert (
        "has no namespace" in f.message
        and "targetNamespace on Kustomization/flux-system/apps" in f.message
    )


def test_address_pool_that_disagrees_with_the_inventory(repo: Path) -> None:
    t.edit(repo, "cluster/overlays/homelab/settings.yaml", "10.0.10.220", "10.0.10.230")
    f = only(t.run(repo), "inventory")
    assert (f.file, f.obj) == ("cluster/config/pool.yaml", "IPAddressPool/metallb-system/default")
    assert (
        "10.0.10.200-10.0.10.230" in f.message
        and "domum.yaml (10.0.10.200-10.0.10.220)" in f.message
    )


# --- the other classes ---------------------------------------------------------------------


def test_target_namespace_places_objects(repo: Path) -> None:
    t.edit(repo, "cluster/apps/kustomization.yaml", "namespace: demo\n", "")
    t.edit(
        repo, "cluster/flux/apps.yaml", "  prune: true", "  prune: true\n  targetNamespace: demo"
    )
    assert t.run(repo) == []


def test_namespace_that_nothing_creates(repo: Path) -> None:
    t.edit(repo, "cluster/apps/kustomization.yaml", "namespace: demo", "namespace: dmeo")
    f = only(t.run(repo), "namespace")
    assert "namespace 'dmeo' is not created" in f.message


def test_object_without_schema_is_an_error(repo: Path) -> None:
    t.write(
        repo,
        {
            "cluster/apps/mon.yaml": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: demo\nspec: {}\n"
        },
    )
    t.edit(repo, "cluster/apps/kustomization.yaml", "[demo.yaml]", "[demo.yaml, mon.yaml]")
    f = only(t.run(repo), "schema")
    assert f.obj == "ServiceMonitor/demo/demo"
    assert "no schema for ServiceMonitor monitoring.coreos.com/v1" in f.message
    assert "monitoring.coreos.com/servicemonitor_v1.json" in f.message


def test_removed_flux_api_version(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/core/cert-manager.yaml",
        "helm.toolkit.fluxcd.io/v2",
        "helm.toolkit.fluxcd.io/v2beta2",
    )
    found = t.errors(t.run(repo))
    f = next(f for f in found if f.check == "api-version")
    assert (
        "use helm.toolkit.fluxcd.io/v2" in f.message
        and f.obj == "HelmRelease/cert-manager/cert-manager"
    )


def test_missing_path(repo: Path) -> None:
    t.edit(repo, "cluster/flux/apps.yaml", "./cluster/apps", "./cluster/app")
    f = only(t.run(repo), "path")
    assert (
        "spec.path './cluster/app' does not exist" in f.message
        and f.file == "cluster/flux/apps.yaml"
    )


def test_chart_and_chart_ref_both(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/core/metallb.yaml",
        "  chartRef:",
        "  chart:\n    spec:\n      chart: metallb\n      sourceRef: {kind: HelmRepository, name: jetstack, namespace: cert-manager}\n  chartRef:",
    )
    f = only(t.run(repo), "chart")
    assert "exactly one of spec.chart or spec.chartRef" in f.message


def test_sops_recipient_mismatch_and_missing_decryption(repo: Path) -> None:
    t.edit(repo, ".sops.yaml", t.RECIPIENT, "age1otherrecipient")
    t.edit(
        repo,
        "cluster/flux/config.yaml",
        "  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n",
        "",
    )
    found = t.errors(t.run(repo))
    sops = [f for f in found if f.check == "sops"]
    assert (
        len(sops) == 1 and "sops updatekeys cluster/config/cloudflare.sops.yaml" in sops[0].message
    )
    dec = only(found, "secret")
    assert "has no decryption" in dec.message and "Kustomization/flux-system/config" in dec.message


def test_cloudflare_token_in_the_wrong_namespace(repo: Path) -> None:
    t.edit(
        repo, "cluster/config/cloudflare.sops.yaml", "namespace: cert-manager", "namespace: demo"
    )
    f = only(t.run(repo), "cert-manager")
    assert "must be in namespace cert-manager" in f.message and "(it is in demo)" in f.message


def test_privileged_workload_needs_the_pod_security_label(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/apps/demo.yaml",
        "    spec:\n      containers:",
        "    spec:\n      hostNetwork: true\n      containers:",
    )
    f = only(t.run(repo), "pod-security")
    assert (
        "hostNetwork" in f.message
        and "label Namespace demo pod-security.kubernetes.io/enforce: privileged" in f.message
    )


def test_bitnami_image(repo: Path) -> None:
    t.edit(
        repo, "cluster/apps/demo.yaml", "ghcr.io/example/demo:1.0.0", "docker.io/bitnami/redis:7.2"
    )
    f = only(t.run(repo), "bitnami")
    assert "docker.io/bitnami/redis:7.2" in f.message


def test_gotk_version_against_the_pin(repo: Path) -> None:
    t.edit(repo, "cluster/core/02-flux/gotk-components.yaml", "v2.9.4", "v2.8.0")
    f = only(t.run(repo), "bootstrap")
    assert "generated by flux v2.8.0, but Domum pins v2.9.4" in f.message


def test_not_yet_bootstrapped_is_a_warning(repo: Path) -> None:
    (repo / "cluster/core/02-flux/gotk-components.yaml").unlink()
    (found,) = t.run(repo)
    assert found.severity == "warning" and "not yet bootstrapped" in found.message


def test_a_committed_placeholder_is_not_yet_bootstrapped(repo: Path) -> None:
    """The overlays commit object-less gotk-*.yaml that `flux bootstrap` overwrites: that is
    "not yet bootstrapped", not a generated file that lost its header."""
    path = repo / "cluster/core/02-flux/gotk-components.yaml"
    path.write_text("# PLACEHOLDER, replaced by `flux bootstrap`.\n")
    (found,) = t.run(repo)
    assert found.severity == "warning" and "not yet bootstrapped" in found.message
    # Objects without the generated header: an edited file, still an error.
    path.write_text("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n")
    found = only(t.run(repo), "bootstrap")
    assert found.severity == "error" and "no '# Flux Version: vX.Y.Z' header" in found.message


def test_vip_inside_the_pool(repo: Path) -> None:
    site = t.SiteFacts("domum.yaml", vip="10.0.10.210", pool=("10.0.10.200-10.0.10.220",))
    f = only(t.run(repo, site), "inventory")
    assert "contain the cluster VIP 10.0.10.210" in f.message


def test_domain_mismatch(repo: Path) -> None:
    t.edit(repo, "cluster/overlays/homelab/settings.yaml", "lab.example.org", "example.net")
    f = only(t.run(repo), "inventory")
    assert "'example.net' is not in the domain lab.example.org" in f.message


def test_kustomize_failure_is_one_finding(repo: Path) -> None:
    t.edit(repo, "cluster/apps/kustomization.yaml", "[demo.yaml]", "[demo.yaml, nope.yaml]")
    f = only(t.run(repo), "render")
    assert f.obj == "Kustomization/flux-system/apps" and "kubectl kustomize failed" in f.message


def test_directory_without_kustomization_yaml_renders_like_flux(repo: Path) -> None:
    (repo / "cluster/apps/kustomization.yaml").unlink()
    t.edit(repo, "cluster/apps/demo.yaml", "  name: demo\n", "  name: demo\n  namespace: demo\n")
    assert t.run(repo) == []


# --- the task and `inv check` ----------------------------------------------------------------


@pytest.fixture
def as_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(repo))
    monkeypatch.setenv("DOMUM_CRD_SCHEMAS", str(t.SCHEMAS))
    monkeypatch.setenv("DOMUM_CHARTS", str(t.CHARTS))
    monkeypatch.chdir(repo)
    return repo


def test_task_json_and_exit_2(as_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from invoke import Context, Exit

    from domum_tasks.flux.tasks import validate

    validate(Context(), json=True)
    assert json.loads(capsys.readouterr().out) == []
    t.edit(as_repo, "cluster/flux/apps.yaml", "name: config", "name: configs")
    with pytest.raises(Exit) as err:
        validate(Context(), json=True)
    assert err.value.code == 2 and "1 error(s)" in str(err.value.message)
    (row,) = json.loads(capsys.readouterr().out)
    assert row["file"] == "cluster/flux/apps.yaml" and row["check"] == "dependsOn"
    assert row["object"] == "Kustomization/flux-system/apps" and row["severity"] == "error"


def test_inv_check_includes_flux(as_repo: Path) -> None:
    from domum_tasks.check import run_checks

    t.edit(as_repo, "cluster/apps/demo.yaml", "replicas: 1", "replicas: 1\n  replica: 2")
    rows = [f for f in run_checks() if f.check == "flux"]
    assert [(f.severity, f.subject) for f in rows] == [
        ("error", "cluster/apps/demo.yaml Deployment/demo/demo")
    ]
    assert "'replica' was unexpected" in rows[0].message


def test_inv_check_without_kubectl_says_so(as_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from domum_tasks import tools
    from domum_tasks.check import run_checks

    monkeypatch.setattr(tools, "find_tool", lambda name: None)
    (row,) = [f for f in run_checks() if f.check == "flux"]
    assert row.severity == "error" and "kubectl not found" in row.message


GOTK_SYNC = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  url: ssh://git@github.com/domum-lab/domum
  ref:
    branch: main
  secretRef:
    name: flux-system
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m
  path: {path}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


@pytest.mark.parametrize(
    ("path", "error"),
    [("./cluster/overlays/homelab", None), ("./cluster", "syncs ./cluster, but it is rendered")],
)
def test_bootstrapped_root_kustomization_syncs_its_overlay(
    repo: Path, path: str, error: str | None
) -> None:
    t.write(repo, {"cluster/overlays/homelab/gotk-sync.yaml": GOTK_SYNC.format(path=path)})
    t.edit(
        repo,
        "cluster/overlays/homelab/kustomization.yaml",
        "- settings.yaml",
        "- settings.yaml\n  - gotk-sync.yaml",
    )
    found = [
        f for f in t.errors(t.run(repo)) if f.check != "schema"
    ]  # no GitRepository schema here
    if error is None:
        assert found == []
    else:
        (f,) = found
        assert error in f.message and f.obj == "Kustomization/flux-system/flux-system"
        assert f.file == "cluster/overlays/homelab/gotk-sync.yaml"


def test_flux_side_images_and_patches_are_applied_like_flux(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/flux/apps.yaml",
        "  prune: true",
        "  prune: true\n  images:\n    - name: ghcr.io/example/demo\n      newName: docker.io/bitnami/demo\n"
        "  patches:\n    - target: {kind: Deployment}\n      patch: |\n"
        "        - op: add\n          path: /spec/replicaz\n          value: 2\n",
    )
    found = t.errors(t.run(repo))
    assert {f.check for f in found} == {"bitnami", "schema"}  # both come from the Flux-side fields
    assert any("'replicaz' was unexpected" in f.message for f in found)


def test_flux_side_fields_on_a_plain_directory_are_a_warning(repo: Path) -> None:
    (repo / "cluster/apps/kustomization.yaml").unlink()
    t.edit(repo, "cluster/apps/demo.yaml", "  name: demo\n", "  name: demo\n  namespace: demo\n")
    t.edit(repo, "cluster/flux/apps.yaml", "  prune: true", "  prune: true\n  namePrefix: x-")
    (f,) = t.run(repo)
    assert f.severity == "warning" and "spec.namePrefix not applied" in f.message


def test_values_from_must_exist(repo: Path) -> None:
    t.edit(
        repo,
        "cluster/core/metallb.yaml",
        "  install:\n    crds: CreateReplace\n  upgrade:",
        "  valuesFrom:\n    - kind: ConfigMap\n      name: metallb-values\n  install:\n    crds: CreateReplace\n  upgrade:",
    )
    f = only(t.run(repo), "valuesFrom")
    assert (
        "ConfigMap/metallb-values is not in namespace metallb-system: create it there" in f.message
    )


@pytest.mark.parametrize("ci", ["", "true"])
def test_no_crd_schemas_at_all_is_one_line(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    settings = t.settings(repo)
    settings.schema_dirs = [tmp_path / "empty-cache"]
    from domum_tasks.flux.validate.api import validate as run

    found = run(settings)
    (f,) = [f for f in found if f.check == "schema"]
    assert t.errors(found) == ([f] if ci else [])  # under CI an unchecked tree fails
    assert f.severity == ("error" if ci else "warning") and f.file == "cluster"
    assert f.message.startswith("custom resources not schema-checked (6 kinds: ClusterIssuer,")
    assert "run `inv tools.install`" in f.message


def test_dependency_without_wait_is_a_warning(repo: Path) -> None:
    t.edit(repo, "cluster/flux/core.yaml", "  wait: true\n", "")
    (f,) = t.run(repo)
    assert (f.severity, f.check, f.obj) == ("warning", "wait", "Kustomization/flux-system/core")
    assert "flux-system/config dependsOn it" in f.message


def test_kustomize_timeout_is_a_finding_not_an_internal_error(
    as_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A kubectl that hangs (a stub in the tools directory that sleeps): `kubectl kustomize` is
    run through run.run_cmd with its timeout, and the render error is a finding (exit 2)."""
    import json

    from invoke import Context, Exit

    from domum_tasks.flux.tasks import validate
    from domum_tasks.flux.validate import render

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "kubectl"
    stub.write_text("#!/bin/sh\nexec sleep 30\n")
    stub.chmod(0o755)
    monkeypatch.setenv("DOMUM_BIN_DIR", str(bin_dir))
    monkeypatch.setattr(render, "TIMEOUT_S", 0.3)
    with pytest.raises(Exit) as err:
        validate(Context(), json=True)
    assert err.value.code == 2 and "internal error" not in str(err.value.message)
    rows = json.loads(capsys.readouterr().out)
    assert rows and {r["check"] for r in rows} == {"render"}
    assert all(
        "kubectl kustomize did not finish: timed out after 0.3s" in r["message"] for r in rows
    )
