"""cluster.network_policies: Talos' Flannel with kube-network-policies, rendered into the committed
common patch, so the tree's NetworkPolicies are enforced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from domum_tasks.errors import ConfigError
from domum_tasks.inventory.loader import load
from domum_tasks.talos.genconfig import patches
from tests.conftest import CONTRACTS, REPO

INVENTORY = REPO / "config" / "domum.yaml"
SCHEMA = CONTRACTS / "talos-config.v1.13.schema.json"


def _network(text: str) -> dict[str, Any]:
    (v1,) = [d for d in patches.load_docs(text) if "kind" not in d]
    return dict(v1["cluster"]["network"])


def _inventory(tmp_path: Path, old: str, new: str) -> Path:
    text = INVENTORY.read_text()
    assert old in text
    path = tmp_path / "domum.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_committed_common_patch_enables_kube_network_policies() -> None:
    net = _network((REPO / patches.COMMON).read_text())
    assert net["cni"] == {"name": "flannel", "flannel": {"kubeNetworkPoliciesEnabled": True}}


@pytest.mark.skipif(not SCHEMA.exists(), reason="../shared/contracts is absent")
def test_the_flag_is_where_the_talos_1_13_schema_has_it() -> None:
    defs = json.loads(SCHEMA.read_text())["$defs"]
    net = defs["v1alpha1.ClusterNetworkConfig"]["properties"]["cni"]["$ref"]
    cni = defs[net.rsplit("/", 1)[-1]]["properties"]
    assert "flannel" in cni["name"]["enum"]
    flannel = defs[cni["flannel"]["$ref"].rsplit("/", 1)[-1]]["properties"]
    assert flannel["kubeNetworkPoliciesEnabled"]["type"] == "boolean"


def test_turned_off_renders_no_cni_section(tmp_path: Path) -> None:
    path = _inventory(
        tmp_path, "  extensions: []\n", "  extensions: []\n  network_policies: false\n"
    )
    net = _network(patches.render(load(path))[patches.COMMON])
    assert "cni" not in net  # Talos' default: Flannel without policy enforcement


def test_talos_before_1_13_cannot_enforce_them(tmp_path: Path) -> None:
    path = _inventory(tmp_path, "talos_version: v1.13.9", "talos_version: v1.12.4")
    with pytest.raises(ConfigError) as err:
        load(path)
    text = str(err.value)
    assert "network_policies: true needs Talos v1.13" in text and "v1.12.4" in text
    ok = _inventory(
        tmp_path,
        "talos_version: v1.13.9",
        "talos_version: v1.12.4\n  network_policies: false",
    )
    assert load(ok).cluster.network_policies is False
