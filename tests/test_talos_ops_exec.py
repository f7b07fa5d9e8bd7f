"""The talos ops tasks run end to end against the strict talosctl/flux stand-ins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from domum_tasks.talos import ops_tasks as T


@pytest.fixture
def cluster_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A repo-like cwd with clusterconfig/talosconfig (no default nodes), lock file in tmp."""
    root = tmp_path / "repo"
    (root / "clusterconfig").mkdir(parents=True)
    cfg = {"context": "domum", "contexts": {"domum": {
        "endpoints": ["127.0.0.90", "127.0.0.91", "127.0.0.96"],
        "ca": "Y2E=", "crt": "Y3J0", "key": "a2V5"}}}
    (root / "clusterconfig" / "talosconfig").write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(root)
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(root))
    monkeypatch.setenv("DOMUM_SCHEMATICS_LOCK", str(tmp_path / "schematics.lock"))
    yield root


def talos_calls(fake_cli: Any, sub: str) -> list[list[str]]:
    return [c for c in fake_cli.calls if c[0] == "talosctl" and c[1] == sub]


def nodes_of(argv: list[str]) -> str:
    return argv[argv.index("--nodes") + 1]


def test_upgrade_stops_at_unhealthy_node_and_resumes_flux(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cli.set_state(unhealthy_after={"upgrade": ["127.0.0.91"]})
    with pytest.raises(Exit) as exc:
        T.upgrade(Context(), wait_timeout="1m", offline=True)
    message = str(exc.value.message)
    assert exc.value.code == 1
    assert "stopped at domum-cp2 (node 91, 2/6)" in message
    assert "upgraded: domum-cp1" in message and "not touched: domum-cp3, domum-xr2" in message
    assert "DeadlineExceeded" in message  # the health gate's stderr tail
    # only cp1 and cp2 were upgraded; nothing after the unhealthy node
    assert [nodes_of(c) for c in talos_calls(fake_cli, "upgrade")] == ["127.0.0.90", "127.0.0.91"]
    flux = [c[1:3] for c in fake_cli.calls_of("flux")]
    assert flux == [["suspend", "kustomization"], ["resume", "kustomization"]]
    assert not any(k["suspended"] for k in fake_cli.state["kustomizations"])
    # the installer comes from the inventory's schematic + version, not from the node
    image = talos_calls(fake_cli, "upgrade")[0]
    assert image[image.index("--image") + 1] == (
        "factory.talos.dev/metal-installer/"
        "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9:v1.13.9")


def test_upgrade_happy_path_single_node(fake_cli: Any, cluster_dir: Path) -> None:
    T.upgrade(Context(), node="97", offline=True)
    assert [nodes_of(c) for c in talos_calls(fake_cli, "upgrade")] == ["127.0.0.97"]
    assert len(talos_calls(fake_cli, "health")) == 2  # pre-check + gate
    assert fake_cli.state["upgraded"]["127.0.0.97"].startswith("factory.talos.dev/metal-installer/249d")
    assert not any(k["suspended"] for k in fake_cli.state["kustomizations"])


def test_upgrade_skips_nodes_already_at_target_and_rerun_resumes(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from domum_tasks.inventory import load
    from domum_tasks.talos.ops_run import resolve_schematics

    inv = load()
    want = {str(inv.nodes[i].ip): r.id for i, r in
            resolve_schematics(inv, inv.talos_nodes, offline=True, write_lock=False).items()}
    # cp1 runs the target already; cp2 runs an old version; x (97) booted another schematic
    fake_cli.set_state(
        schematics={**want, "127.0.0.97": "0" * 64},
        versions={"127.0.0.91": "v1.13.8"},
        extensions=[{"name": "iscsi-tools", "version": "v0.2.0"}],
    )
    T.upgrade(Context(), offline=True, wait_timeout="1m")
    assert [nodes_of(c) for c in talos_calls(fake_cli, "upgrade")] == ["127.0.0.91", "127.0.0.97"]
    assert [c[1] for c in fake_cli.calls_of("flux")] == ["suspend", "resume"]
    assert fake_cli.state["versions"]["127.0.0.91"] == "v1.13.9"
    assert fake_cli.state["schematics"]["127.0.0.97"] == want["127.0.0.97"]
    # a second run finds every node at the target: no Flux suspension, no upgrade
    fake_cli.clear()
    capsys.readouterr()
    T.upgrade(Context(), offline=True, wait_timeout="1m")
    assert "every selected node is up to date" in capsys.readouterr().out
    assert talos_calls(fake_cli, "upgrade") == [] and fake_cli.calls_of("flux") == []


def test_upgrade_rerun_after_a_failure_continues_where_it_stopped(
    fake_cli: Any, cluster_dir: Path
) -> None:
    fake_cli.set_state(unhealthy_after={"upgrade": ["127.0.0.91"]})
    with pytest.raises(Exit):
        T.upgrade(Context(), wait_timeout="1m", offline=True)
    fake_cli.set_state(unhealthy=[], unhealthy_after={})  # the operator fixed domum-cp2
    fake_cli.clear()
    T.upgrade(Context(), wait_timeout="1m", offline=True)
    assert [nodes_of(c) for c in talos_calls(fake_cli, "upgrade")] == [
        "127.0.0.96", "127.0.0.92", "127.0.0.97", "127.0.0.98"]


def test_upgrade_unhealthy_before_start_touches_no_node(fake_cli: Any, cluster_dir: Path) -> None:
    fake_cli.set_state(unhealthy=["127.0.0.98"])
    with pytest.raises(Exit) as exc:
        T.upgrade(Context(), offline=True, wait_timeout="1m")
    assert "before any node was touched" in str(exc.value.message)
    assert talos_calls(fake_cli, "upgrade") == []
    assert [c[1] for c in fake_cli.calls_of("flux")] == ["suspend", "resume"]


def test_upgrade_dry_run_json_changes_nothing(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    T.upgrade(Context(), node="91", offline=True, dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    assert steps[0]["argv"][:3] == ["flux", "suspend", "kustomization"]
    assert steps[-1]["finally"] is True and steps[-1]["argv"][1] == "resume"
    assert {c[1] for c in fake_cli.calls} <= {"version", "get"}  # read-only probes only
    assert "upgraded" not in fake_cli.state


def test_bootstrap_on_bootstrapped_cluster_is_a_noop(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = [{"hostname": h, "ip": ip, "type": "controlplane"} for h, ip in (
        ("domum-cp1", "127.0.0.90"), ("domum-cp2", "127.0.0.91"), ("domum-cp3", "127.0.0.96"))]
    fake_cli.set_state(bootstrapped=True, members=members)
    T.bootstrap(Context(), deadline="30s")
    out = capsys.readouterr().out
    assert "already bootstrapped: etcd members domum-cp1, domum-cp2, domum-cp3" in out
    assert talos_calls(fake_cli, "bootstrap") == []  # etcd answered: nothing is sent
    assert [nodes_of(c) for c in talos_calls(fake_cli, "etcd")] == ["127.0.0.90"]


def test_bootstrap_never_runs_while_another_control_plane_has_etcd(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the first control plane was reset (etcd not running there): bootstrapping it would split etcd
    fake_cli.set_state(bootstrapped=True, etcd_down=["127.0.0.90"])
    T.bootstrap(Context(), deadline="30s")
    assert "already bootstrapped: etcd members talos-91" in capsys.readouterr().out
    assert talos_calls(fake_cli, "bootstrap") == []
    assert [nodes_of(c) for c in talos_calls(fake_cli, "etcd")] == ["127.0.0.90", "127.0.0.91"]


def test_bootstrap_answered_already_exists_is_a_noop(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # etcd members unreadable on every control plane (e.g. timeouts), yet bootstrapped
    fake_cli.set_state(bootstrapped=True, fail={"etcd members": {"message": "i/o timeout", "times": 3}})
    T.bootstrap(Context(), deadline="30s")
    out = capsys.readouterr().out
    assert "assuming not bootstrapped" in out and "talosctl answered AlreadyExists" in out
    (boot,) = talos_calls(fake_cli, "bootstrap")  # one attempt, no retry loop
    assert nodes_of(boot) == "127.0.0.90" and boot[boot.index("--endpoints") + 1] == "127.0.0.90"


def test_bootstrap_fresh_then_retry_after_transient_failure(fake_cli: Any, cluster_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    slept: list[float] = []
    real = T._executor
    monkeypatch.setattr(T, "_executor", lambda *a, **k: dataclasses.replace(
        real(*a, **k), sleep=slept.append))
    fake_cli.set_state(fail={"bootstrap": {"message": "connection refused", "times": 2}})
    T.bootstrap(Context(), deadline="5m")
    assert fake_cli.state["bootstrapped"] is True
    assert len(talos_calls(fake_cli, "bootstrap")) == 3
    assert slept == [10, 10]  # retried at the plan's interval, not in a busy loop


def test_apply_all_insecure(fake_cli: Any, cluster_dir: Path) -> None:
    for host in ("domum-cp1", "domum-cp2", "domum-cp3", "domum-xr2", "domum-x", "domum-m720q"):
        (cluster_dir / "clusterconfig" / f"domum-{host}.yaml").write_text("version: v1alpha1\n")
    T.apply(Context(), all=True, insecure=True)
    calls = talos_calls(fake_cli, "apply-config")
    assert [nodes_of(c) for c in calls] == [
        "127.0.0.90", "127.0.0.91", "127.0.0.96", "127.0.0.92", "127.0.0.97", "127.0.0.98"]


def test_apply_without_generated_config_is_a_config_error(fake_cli: Any, cluster_dir: Path) -> None:
    with pytest.raises(Exit) as exc:
        T.apply(Context(), node="92")
    assert exc.value.code == 2 and "inv talos.genconfig" in str(exc.value.message)
    with pytest.raises(Exit) as exc:
        T.apply(Context())
    assert "exactly one of --node N or --all" in str(exc.value.message)
    assert fake_cli.calls == []


def test_kubeconfig_health_upgrade_k8s(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    T.kubeconfig(Context(), out="out/kubeconfig")
    assert yaml.safe_load((cluster_dir / "out" / "kubeconfig").read_text())["clusters"]
    T.upgrade_k8s(Context())
    assert fake_cli.state["kubernetes_version"] == "1.35.4"
    capsys.readouterr()
    T.health(Context(), json=True)
    rows = json.loads(capsys.readouterr().out)
    assert [(r["node"], r["version"], r["ready"]) for r in rows] == [
        (i, "v1.13.9", "ok") for i in (90, 91, 92, 96, 97, 98)]


def test_health_failure_still_shows_table(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cli.set_state(unhealthy=["127.0.0.92"])
    with pytest.raises(Exit) as exc:
        T.health(Context(), wait_timeout="1m", json=True)
    assert exc.value.code == 1
    rows = {r["node"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[92]["ready"] == "not ready" and rows[90]["ready"] == "ok"


def test_reset_needs_yes_then_runs(fake_cli: Any, cluster_dir: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal
    with pytest.raises(Exit) as exc:
        T.reset(Context(), node="92")
    assert exc.value.code == 4 and fake_cli.calls == []
    T.reset(Context(), node="92", yes=True)
    assert fake_cli.state["reset"] == ["127.0.0.92"]
    assert "--graceful=true" in talos_calls(fake_cli, "reset")[-1]
    T.reset(Context(), node="97", yes=True, graceful=False)  # --no-graceful reaches talosctl
    assert "--graceful=false" in talos_calls(fake_cli, "reset")[-1]
