"""The stand-ins' opt-in lifecycle (tests/fakes/talos_lifecycle.py, flux_lifecycle.py): a node
goes absent -> maintenance -> configured, etcd is bootstrapped once, health waits for all of it,
and Flux's objects appear at bootstrap and become Ready after some polls. Each transition is
driven through the CLI the way Domum calls it (talos/argv.py: subcommand, then --talosconfig,
--nodes, --endpoints) and asserts the upstream messages the modules cite."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CP, WK = "127.0.0.90", "127.0.0.91"
REFUSED = (
    'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while '
    'dialing: dial tcp {ip}:50000: connect: connection refused"'
)
UNKNOWN_AUTHORITY = (
    'rpc error: code = Unavailable desc = connection error: desc = "transport: authentication '
    'handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"'
)
CERT_REQUIRED = (
    'rpc error: code = Unavailable desc = connection error: desc = "error reading server '
    'preface: remote error: tls: certificate required"'
)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def _ok(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = _run(args, cwd)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc


def _err(args: list[str], cwd: Path) -> str:
    proc = _run(args, cwd)
    assert proc.returncode == 1, f"{args} should fail: {proc.stdout}"
    return proc.stderr.strip()


@pytest.fixture
def cluster(fake_cli: Any, tmp_path: Path) -> dict[str, str]:
    """Machine configs and a talosconfig from the stand-in's `gen config`."""
    endpoint = f"https://{CP}:6443"
    _ok(["talosctl", "gen", "config", "domum", endpoint, "-o", "out"], tmp_path)
    out = tmp_path / "out"
    return {k: str(out / f) for k, f in (("cp", "controlplane.yaml"), ("wk", "worker.yaml"))} | {
        "tc": str(out / "talosconfig")
    }


def tctl(c: dict[str, str], sub: str, *args: str, node: str = CP) -> list[str]:
    return ["talosctl", *sub.split(), "--talosconfig", c["tc"], "--nodes", node,
            "--endpoints", CP, *args]  # fmt: skip


def insecure(sub: str, node: str, *args: str) -> list[str]:
    return ["talosctl", *sub.split(), "--insecure", "--nodes", node, *args]


def test_absent_node_refuses_every_call(fake_cli: Any, cluster: dict[str, str], tmp_path: Path):
    fake_cli.set_state(nodes={CP: "absent"})
    assert _err(insecure("version", CP), tmp_path) == (
        "Error: error getting version: " + REFUSED.format(ip=CP)
    )
    assert _err(insecure("get disks", CP), tmp_path) == "Error: " + REFUSED.format(ip=CP)
    assert _err(tctl(cluster, "bootstrap"), tmp_path) == (
        "Error: error executing bootstrap: " + REFUSED.format(ip=CP)
    )
    assert "bootstrap_count" not in fake_cli.state


def test_legacy_nodes_are_untouched(fake_cli: Any, cluster: dict[str, str], tmp_path: Path):
    """No `nodes` key: the stand-in answers as before (bootstrap works without any apply)."""
    _ok(tctl(cluster, "bootstrap"), tmp_path)
    _ok(tctl(cluster, "version"), tmp_path)
    assert fake_cli.state["bootstrap_count"] == 1


def test_maintenance_then_configured_after_reboot(
    fake_cli: Any, cluster: dict[str, str], tmp_path: Path
):
    disk = {"id": "sda", "size": 64_000_000_000}
    fake_cli.set_state(nodes={CP: "maintenance"}, maintenance={CP: {"disks": [disk]}},
                       reboot_calls=2)  # fmt: skip
    # maintenance: --insecure answers, the talosconfig's CA does not match its certificate
    assert "sda" in _ok(insecure("get disks", CP), tmp_path).stdout
    assert f"NODE:        {CP}" in _ok(insecure("version", CP), tmp_path).stdout
    assert _err(tctl(cluster, "version"), tmp_path) == (
        "Error: error getting version: " + UNKNOWN_AUTHORITY
    )
    assert _err(tctl(cluster, "bootstrap"), tmp_path) == (
        "Error: error executing bootstrap: " + UNKNOWN_AUTHORITY
    )
    _ok(insecure("apply-config", CP, "--file", cluster["cp"]), tmp_path)
    assert fake_cli.state["nodes"] == {CP: "configured"}
    # rebooting: the next two calls find nothing listening
    for _ in range(2):
        assert _err(tctl(cluster, "version"), tmp_path) == (
            "Error: error getting version: " + REFUSED.format(ip=CP)
        )
    _ok(tctl(cluster, "version"), tmp_path)
    # configured: --insecure is refused (no client certificate)
    assert _err(insecure("version", CP), tmp_path) == (
        "Error: error getting version: " + CERT_REQUIRED
    )
    assert _err(insecure("apply-config", CP, "--file", cluster["cp"]), tmp_path) == (
        "Error: error applying new configuration: " + CERT_REQUIRED
    )


def test_node_behind_a_configured_endpoint(fake_cli: Any, cluster: dict[str, str], tmp_path: Path):
    """apid on the endpoint proxies: an absent or maintenance node is a per-node error."""
    fake_cli.set_state(nodes={CP: "configured", WK: "absent"})
    assert _err(tctl(cluster, "version", node=WK), tmp_path) == (
        "Error: error getting version: 1 error occurred:\n\t* " + f"{WK}: " + REFUSED.format(ip=WK)
    )
    fake_cli.set_state(nodes={CP: "configured", WK: "maintenance"})
    assert _err(tctl(cluster, "version", node=WK), tmp_path).endswith(
        f"\t* {WK}: {UNKNOWN_AUTHORITY}"
    )


def test_bootstrap_once_on_a_configured_control_plane(
    fake_cli: Any, cluster: dict[str, str], tmp_path: Path
):
    fake_cli.set_state(nodes={CP: "maintenance", WK: "maintenance"})
    _ok(insecure("apply-config", CP, "--file", cluster["cp"]), tmp_path)
    _ok(insecure("apply-config", WK, "--file", cluster["wk"]), tmp_path)
    # before bootstrap: etcd is not there; the kubeconfig is generated from the config (works)
    assert "etcd is not running" in _err(tctl(cluster, "etcd members"), tmp_path)
    _ok(tctl(cluster, "kubeconfig", str(tmp_path / "kc")), tmp_path)
    assert _err(tctl(cluster, "bootstrap", node=WK), tmp_path) == (
        "Error: error executing bootstrap: rpc error: code = Unimplemented desc = bootstrap is "
        "only available on control plane nodes"
    )
    _ok(tctl(cluster, "bootstrap"), tmp_path)
    assert _err(tctl(cluster, "bootstrap"), tmp_path) == (
        "Error: error executing bootstrap: rpc error: code = AlreadyExists desc = etcd data "
        "directory is not empty"
    )
    assert fake_cli.state["bootstrap_count"] == 1
    assert "talos-90" in _ok(tctl(cluster, "etcd members"), tmp_path).stdout


def test_health_waits_for_every_node_and_bootstrap(
    fake_cli: Any, cluster: dict[str, str], tmp_path: Path
):
    fake_cli.set_state(nodes={CP: "maintenance", WK: "maintenance"}, healthy_after_calls=3)
    health = tctl(cluster, "health", "--control-plane-nodes", CP, "--worker-nodes", WK)
    deadline = "Error: rpc error: code = DeadlineExceeded desc = context deadline exceeded"
    _ok(insecure("apply-config", CP, "--file", cluster["cp"]), tmp_path)
    err = _err(health, tmp_path)
    assert err.endswith(deadline) and "etcd" in err  # 1: not bootstrapped
    _ok(tctl(cluster, "bootstrap"), tmp_path)
    err = _err(health, tmp_path)
    assert err.endswith(deadline) and WK in err.splitlines()[-2]  # 2: worker in maintenance
    _ok(insecure("apply-config", WK, "--file", cluster["wk"]), tmp_path)
    assert _err(health, tmp_path).endswith(deadline)  # 3: healthy_after_calls
    _ok(health, tmp_path)


FLUX_GET = ["flux", "get", "kustomizations", "--all-namespaces"]


def _rows(stdout: str) -> dict[str, list[str]]:
    rows = [[c.strip() for c in line.split("\t")[:-1]] for line in stdout.splitlines()]
    return {r[1]: r for r in rows[1:]}  # NAMESPACE NAME REVISION SUSPENDED READY MESSAGE


def test_flux_objects_appear_at_bootstrap_and_become_ready(fake_cli: Any, tmp_path: Path):
    fake_cli.set_state(
        flux_installed=False,
        ready_after_polls=2,
        failing={"apps": "kustomize build failed: map[string]interface {}(nil): yaml: line 3"},
    )
    assert _err(FLUX_GET, tmp_path) == (
        '✗ no matches for kind "Kustomization" in version "kustomize.toolkit.fluxcd.io/v1"'
    )
    assert _err(["flux", "get", "helmreleases", "-A"], tmp_path) == (
        '✗ no matches for kind "HelmRelease" in version "helm.toolkit.fluxcd.io/v2"'
    )
    _ok(["flux", "bootstrap", "git", "--url", "ssh://git@127.0.0.1/x", "--path", "cluster"],
        tmp_path)  # fmt: skip
    for _ in range(2):
        rows = _rows(_ok(FLUX_GET, tmp_path).stdout)
        assert set(rows) == {"flux-system", "infrastructure", "apps"}
        assert {r[4] for r in rows.values()} == {"False"}
        assert {r[5] for r in rows.values()} == {"waiting to be reconciled"}
    rows = _rows(_ok(FLUX_GET, tmp_path).stdout)
    assert rows["infrastructure"][4] == "True"
    assert rows["infrastructure"][5].startswith("Applied revision: main@sha1:")
    assert rows["apps"][4:] == ["False", "kustomize build failed: map[string]interface {}(nil): "
                                "yaml: line 3"]  # fmt: skip
    # HelmReleases count their own polls
    hr = ["flux", "get", "helmreleases", "-A"]
    assert {r[4] for r in _rows(_ok(hr, tmp_path).stdout).values()} == {"False"}
    _ok(hr, tmp_path)
    assert {r[4] for r in _rows(_ok(hr, tmp_path).stdout).values()} == {"True"}


def test_flux_tree_from_the_state(fake_cli: Any, tmp_path: Path):
    fake_cli.set_state(
        flux_installed=False,
        kustomizations=[{"name": "cluster-apps", "namespace": "flux-system"}],
        helmreleases=[{"name": "pihole", "namespace": "dns"}],
    )
    _ok(["flux", "bootstrap", "git", "--url", "ssh://git@127.0.0.1/x"], tmp_path)
    assert set(_rows(_ok(FLUX_GET, tmp_path).stdout)) == {"cluster-apps"}
    rows = _rows(_ok(["flux", "get", "helmreleases", "-A"], tmp_path).stdout)
    assert rows["pihole"][4] == "True"
