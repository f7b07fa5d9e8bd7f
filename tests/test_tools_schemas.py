"""Schemas for users: `inv tools.install` fetches the pinned Talos schema and the CRD schemas of
the tree's kinds from a loopback mirror, checks each sha256, and `inv check` then uses them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from invoke import Context, Exit

from domum_tasks import settings
from domum_tasks.tools import schema_pins, schemas
from domum_tasks.tools import tasks as tools_tasks
from tests import flux_tree
from tests.conftest import CONTRACTS
from tests.test_tools import Mirror, mirror  # noqa: F401  (fixture)

# Runs real processes (the talosctl/flux stand-ins, kubectl, the domum CLI): not the fast tier.
pytestmark = pytest.mark.integration

needs_contracts = pytest.mark.skipif(not CONTRACTS.is_dir(), reason="../shared/contracts is absent")


def test_pins_are_the_reference_copies() -> None:
    """The pins were taken from ../shared/contracts, which holds exactly the upstream files."""
    if not CONTRACTS.is_dir():
        pytest.skip("../shared/contracts is absent")
    talos = CONTRACTS / "talos-config.v1.13.schema.json"
    assert schema_pins.TALOS_SCHEMAS["v1.13.9"] == hashlib.sha256(talos.read_bytes()).hexdigest()
    for key, digest in schema_pins.CRD_SCHEMAS.items():
        path = CONTRACTS / "crd-schemas" / key
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, key
    assert len(schema_pins.CRD_SCHEMAS) == len(list((CONTRACTS / "crd-schemas").glob("*/*.json")))


def test_urls_follow_the_upstream_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOMUM_SCHEMAS_BASE_URL", raising=False)
    t = schemas.talos_schema("v1.13.9")
    assert t is not None and t.url == (
        "https://raw.githubusercontent.com/siderolabs/talos/v1.13.9/"
        "pkg/machinery/config/schemas/config.schema.json"
    )
    c = schemas.crd_schema("helm.toolkit.fluxcd.io/helmrelease_v2.json")
    assert c is not None and c.url == (
        "https://raw.githubusercontent.com/datreeio/CRDs-catalog/"
        f"{schema_pins.CRD_CATALOG_COMMIT}/helm.toolkit.fluxcd.io/helmrelease_v2.json"
    )
    assert c.dest == schemas.crd_cache_dir() / "helm.toolkit.fluxcd.io" / "helmrelease_v2.json"
    assert schemas.talos_schema("v0.1.0") is None and schemas.crd_schema("x/y_v1.json") is None


def test_kinds_in_tree_are_the_custom_resources(tmp_path: Path) -> None:
    repo = flux_tree.write(tmp_path / "repo")
    keys = schemas.kinds_in_tree(repo / "cluster")
    assert {
        "helm.toolkit.fluxcd.io/helmrelease_v2.json",
        "source.toolkit.fluxcd.io/helmrepository_v1.json",
        "source.toolkit.fluxcd.io/ocirepository_v1.json",
        "cert-manager.io/clusterissuer_v1.json",
        "metallb.io/ipaddresspool_v1beta1.json",
        "kustomize.toolkit.fluxcd.io/kustomization_v1.json",
    } <= keys
    assert not any(k.startswith(("v1", "apps/", "kustomize.config.k8s.io")) for k in keys)


@needs_contracts
def test_install_then_check_uses_the_cache(
    mirror: Mirror,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The mirror serves the reference copies at the upstream paths (the fixture had pinned
    stand-in bytes; here the real files and their real digests replace them)."""
    talos_rel = f"siderolabs/talos/v1.13.9/{schemas.TALOS_SCHEMA_PATH}"
    mirror.put(talos_rel, (CONTRACTS / "talos-config.v1.13.schema.json").read_bytes())
    for key in schemas.kinds_in_tree(settings.PACKAGE_CHECKOUT / "cluster"):
        rel = f"datreeio/CRDs-catalog/{schema_pins.CRD_CATALOG_COMMIT}/{key}"
        mirror.put(rel, (CONTRACTS / "crd-schemas" / key).read_bytes())
        monkeypatch.setitem(schema_pins.CRD_SCHEMAS, key, _sha(CONTRACTS / "crd-schemas" / key))
    monkeypatch.setitem(
        schema_pins.TALOS_SCHEMAS, "v1.13.9", _sha(CONTRACTS / "talos-config.v1.13.schema.json")
    )
    monkeypatch.delenv("DOMUM_TALOS_SCHEMA_DIR")  # from here on only the cache counts

    from domum_tasks.check import run_checks

    before = {(f.check, f.subject): f for f in run_checks()}
    assert before["talos", "schema"].severity == "warning"
    assert before["talos", "schema"].message.startswith(
        "not schema-checked: run `inv tools.install`"
    )

    tools_tasks.install(Context(), tool="schemas", json=True)
    done = json.loads(capsys.readouterr().out)
    cached = schemas.talos_cache_dir() / "talos-config.v1.13.schema.json"
    assert {d["path"] for d in done} >= {str(cached)}
    assert cached.read_bytes() == (CONTRACTS / "talos-config.v1.13.schema.json").read_bytes()

    after = {(f.check, f.subject): f for f in run_checks()}
    assert after["talos", "schema"].severity == "ok"
    assert "valid against Talos v1.13.9 schema" in after["talos", "schema"].message

    n = len(mirror.requests)  # second run: every file is in the cache with its pin
    tools_tasks.install(Context(), tool="schemas", json=True)
    assert json.loads(capsys.readouterr().out) == [] and len(mirror.requests) == n


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tampered_schema_is_rejected_and_not_cached(
    mirror: Mirror,
) -> None:
    talos_rel = f"siderolabs/talos/v1.13.9/{schemas.TALOS_SCHEMA_PATH}"
    mirror.put(talos_rel, b'{"tampered": true}\n')
    with pytest.raises(Exit) as err:
        tools_tasks.install(Context(), tool="schemas")
    assert err.value.code == 1 and "sha256 mismatch" in str(err.value.message)
    assert "schema_pins.py" in str(err.value.message)
    assert not (schemas.talos_cache_dir() / "talos-config.v1.13.schema.json").exists()
    assert list(schemas.talos_cache_dir().glob(".*.part")) == []


def test_dry_run_lists_schema_steps(mirror: Mirror, capsys: pytest.CaptureFixture[str]) -> None:
    tools_tasks.install(Context(), tool="schemas", dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    assert steps and all(s["action"] == "tools.schema" for s in steps)
    assert steps[0]["args"]["url"].startswith(mirror.url + "/siderolabs/talos/v1.13.9/")
    assert mirror.requests == []
