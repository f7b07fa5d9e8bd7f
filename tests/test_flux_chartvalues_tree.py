"""Faults injected into a copy of the committed tree, checked against the pinned charts' own
values and schemas in ../shared/contracts/charts (copied from upstream at their tags): each is
one precise line naming the file, the HelmRelease and the key path."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from domum_tasks.flux.validate.api import settings_for, validate
from domum_tasks.flux.validate.model import Finding
from domum_tasks.inventory.loader import DEFAULT_PATH, load
from tests.conftest import CONTRACTS, REPO

# Renders the tree with kubectl: not the fast tier.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (CONTRACTS / "charts").is_dir() or not (CONTRACTS / "crd-schemas").is_dir(),
        reason="../shared/contracts/charts or crd-schemas is absent",
    ),
]

TRAEFIK = "cluster/apps/infra/traefik/app/helmrelease.yaml"
LONGHORN = "cluster/core/05-longhorn/app/helmrelease.yaml"
VAULT = "cluster/apps/infra/vault/app/helmrelease.yaml"
LINKDING = "cluster/apps/services/linkding/app/helmrelease.yaml"


def _edit(repo: Path, rel: str, change: Any) -> None:
    path = repo / rel
    doc = yaml.safe_load(path.read_text())
    change(doc["spec"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _traefik_old_keys(spec: dict[str, Any]) -> None:
    ports = spec["values"].setdefault("ports", {})
    web = ports.setdefault("web", {})
    web["redirections"] = {"entryPoint": {"to": "websecure", "scheme": "https"}}
    spec["values"]["logs"] = {"access": {"enabled": True}}


def _longhorn_typo(spec: dict[str, Any]) -> None:
    spec["values"]["persistence"]["defaultClas"] = True


def _vault_version(spec: dict[str, Any]) -> None:
    spec["chart"]["spec"]["version"] = "0.34.0"


def _linkding_typo(spec: dict[str, Any]) -> None:
    image = spec["values"]["controllers"]["linkding"]["containers"]["app"]["image"]
    image["repositry"] = image.pop("repository")


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    repo = tmp_path_factory.mktemp("tree")
    for part in ("cluster", "config"):
        shutil.copytree(REPO / part, repo / part)
    shutil.copy(REPO / ".sops.yaml", repo / ".sops.yaml")
    _edit(repo, TRAEFIK, _traefik_old_keys)
    _edit(repo, LONGHORN, _longhorn_typo)
    _edit(repo, VAULT, _vault_version)
    _edit(repo, LINKDING, _linkding_typo)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOMUM_CRD_SCHEMAS", str(CONTRACTS / "crd-schemas"))
        mp.setenv("DOMUM_CHARTS", str(CONTRACTS / "charts"))
        mp.setenv("CI", "true")
        return validate(settings_for(load(DEFAULT_PATH), repo, DEFAULT_PATH.name, repo / "cluster"))


def _one(found: list[Finding], file: str, start: str) -> Finding:
    hits = [f for f in found if f.file == file and f.message.startswith(start)]
    assert len(hits) == 1, "\n".join(f"{f.file} {f.obj} {f.message}" for f in found)
    return hits[0]


def test_traefik_old_keys_fail_its_schema(found: list[Finding]) -> None:
    f = _one(
        found, TRAEFIK, "ports.web.redirections: 'redirections' is not allowed under ports.web"
    )
    assert (f.obj, f.check, f.severity) == ("HelmRelease/traefik/traefik", "values", "error")
    assert f.message.endswith("[schema of chart traefik 41.3.0]")
    f = _one(found, TRAEFIK, "logs: 'logs' is not allowed under the top level")
    assert "did you mean log?" in f.message


def test_misspelt_key_in_a_chart_without_schema(found: list[Finding]) -> None:
    f = _one(found, LONGHORN, "persistence.defaultClas: values key persistence.defaultClas")
    assert f.obj == "HelmRelease/longhorn-system/longhorn" and f.severity == "error"
    assert f.message.endswith("did you mean persistence.defaultClass?")


def test_chart_version_not_available(found: list[Finding]) -> None:
    f = _one(found, VAULT, "chart vault 0.34.0 is not in ")
    assert f.severity == "error"  # CI=true
    assert "(it has 0.34.1); values not checked: run `inv tools.install`" in f.message


def test_app_template_values_meet_its_common_schema(found: list[Finding]) -> None:
    """app-template's schema is a $ref to its common library's (a remote URL Helm fetches):
    read from charts/common/ of the chart directory."""
    f = _one(found, LINKDING, "controllers.linkding.containers.app.image")
    assert f.obj == "HelmRelease/linkding/linkding" and f.severity == "error"
    assert "[schema of chart app-template 4.1.1]" in f.message
