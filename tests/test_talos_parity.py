"""Dry-run parity of the talos tasks: the plan `--dry-run --json` prints is the plan the real run
executes (tests/fixtures/parity.py), and where the real run fails on something it can know
before changing anything, the dry-run fails the same way (exit code and message)."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from domum_tasks.talos.genconfig.tasks import genconfig
from domum_tasks.talos.ops import power_tasks as PT
from domum_tasks.talos.ops import tasks as T
from tests.conftest import REPO
from tests.test_talos_genconfig import Env, env, installer_ids  # noqa: F401  (fixture)
from tests.test_talos_ops_exec import cluster_dir, talos_calls  # noqa: F401  (fixture)

# Runs real processes (the talosctl/flux stand-ins, kubectl, the domum CLI): not the fast tier.
pytestmark = pytest.mark.integration

# the least a node (and the stand-in) accepts: a worker with a machine CA, install disk, endpoint
MINIMAL_CONFIG = (
    "version: v1alpha1\nmachine: {type: worker, ca: {crt: Zm9v}, install: {disk: /dev/sda}}\n"
    "cluster: {controlPlane: {endpoint: https://127.0.0.80:6443}}\n"
)


def both_fail(task: Any, **options: Any) -> tuple[int, str]:
    """Run the dry-run and the real run; both must stop with the same exit code and message."""
    outcomes = []
    for dry_run in (True, False):
        with pytest.raises(Exit) as exc:
            task(Context(), dry_run=dry_run, **options)
        outcomes.append((exc.value.code, str(exc.value.message)))
    assert outcomes[0] == outcomes[1]
    return outcomes[0]


def _configs(cluster_dir: Path, *hosts: str) -> None:
    for host in hosts:
        (cluster_dir / "clusterconfig" / f"domum-{host}.yaml").write_text(MINIMAL_CONFIG)


# --- the plan printed is the plan run ------------------------------------------------------------


@pytest.mark.parity("talos.genconfig")
def test_genconfig_parity(plan_parity: Any, env: Env, image_factory: Any) -> None:
    (plan,) = plan_parity(genconfig)
    kinds = [s["kind"] for s in plan]
    # registered before the installer ids are baked in, then the patches
    assert plan[0]["action"] == "talos.schematic-register" and kinds[2] == "write"
    assert plan[-1]["action"] == "remove-private-dir"
    assert set(image_factory.registered) == set(installer_ids(plan))  # what the configs name
    assert env.secrets.exists() and (env.root / "clusterconfig" / "talosconfig").exists()
    (again,) = plan_parity(genconfig)  # secrets exist now: decrypted, never regenerated
    assert "decrypt-secrets" in [s.get("action") for s in again]
    assert not [s for s in again if s["kind"] == "write"]  # patches unchanged
    assert again[0]["action"] == "talos.schematic-register"  # idempotent: POSTed again


@pytest.mark.parity("talos.apply")
def test_apply_parity(plan_parity: Any, fake_cli: Any, cluster_dir: Path) -> None:
    _configs(
        cluster_dir, "domum-cp1", "domum-cp2", "domum-cp3", "domum-xr2", "domum-x", "domum-m720q"
    )
    (plan,) = plan_parity(T.apply, all=True, insecure=True)
    assert [s["argv"][1] for s in plan] == ["apply-config"] * 6
    assert len(fake_cli.state["applied"]) == 6
    (plan,) = plan_parity(T.apply, node="97", mode="no-reboot")  # running: the node's diff probed
    assert len(plan) == 1


@pytest.mark.parity("talos.bootstrap")
def test_bootstrap_parity(plan_parity: Any, fake_cli: Any, cluster_dir: Path) -> None:
    (plan,) = plan_parity(T.bootstrap, deadline="30s")
    assert [s["kind"] for s in plan] == ["wait", "wait"]
    assert fake_cli.state["bootstrapped"] is True
    (plan,) = plan_parity(T.bootstrap, deadline="30s")  # etcd lists members now: nothing to do
    assert plan == []


@pytest.mark.parity("talos.health")
def test_health_parity(plan_parity: Any, fake_cli: Any, cluster_dir: Path) -> None:
    (plan,) = plan_parity(T.health, wait_timeout="1m")
    assert plan[0]["argv"][1] == "health"


@pytest.mark.parity("talos.upgrade")
def test_upgrade_parity(plan_parity: Any, fake_cli: Any, cluster_dir: Path) -> None:
    (plan,) = plan_parity(T.upgrade, node="97", offline=True, wait_timeout="1m")
    assert [s["argv"][1] for s in plan if s["kind"] == "cmd"] == [
        "suspend", "suspend", "suspend", "health", "upgrade", "health",
        "resume", "resume", "resume"]  # fmt: skip
    assert fake_cli.state["upgraded"]["127.0.0.97"]
    (plan,) = plan_parity(T.upgrade, node="97", offline=True)  # at the target now
    assert plan == []


@pytest.mark.parity("talos.upgrade")
def test_upgrade_online_registers_first_parity(
    plan_parity: Any, fake_cli: Any, cluster_dir: Path, image_factory: Any
) -> None:
    posted = len(image_factory.bodies)  # cluster_dir recorded the ids once already
    (plan,) = plan_parity(T.upgrade, node="97", no_flux=True, wait_timeout="1m")
    assert [s.get("action") for s in plan[:2]] == [
        "talos.schematic-register",
        "talos.schematic-lock",
    ]
    argv = next(s["argv"] for s in plan if s["kind"] == "cmd" and s["argv"][1] == "upgrade")
    image = argv[argv.index("--image") + 1]
    (sid,) = plan[0]["args"]["ids"]
    assert f"-installer/{sid}:" in image and image_factory.registered[posted:] == [sid]


@pytest.mark.parity("talos.upgrade-k8s")
def test_upgrade_k8s_parity(plan_parity: Any, fake_cli: Any, cluster_dir: Path) -> None:
    (plan,) = plan_parity(T.upgrade_k8s)
    argv = plan[0]["argv"]
    assert argv[1] == "upgrade-k8s" and argv[argv.index("--to") + 1] == "1.35.4"
    assert fake_cli.state["kubernetes_version"] == "1.35.4"


@pytest.mark.parity("talos.etcd-snapshot")
def test_etcd_snapshot_parity(plan_parity: Any, fake_cli: Any, cluster_dir: Path) -> None:
    (plan,) = plan_parity(T.etcd_snapshot, out="backups/etcd.snapshot", node="91")
    assert [s.get("action") for s in plan if s["kind"] == "local"] == [
        "talos.mkdir",
        "talos.verify-snapshot",
        "talos.remove",
    ]
    assert (cluster_dir / "backups" / "etcd.snapshot").stat().st_size % 512 == 32


@pytest.mark.parity("talos.reboot")
def test_reboot_parity(plan_parity: Any, fake_cli: Any, cluster_dir: Path) -> None:
    (plan,) = plan_parity(PT.reboot, node="92", wait=True, wait_timeout="2m")
    assert plan[0]["argv"][1] == "reboot" and "destructive" not in plan[0]
    (plan,) = plan_parity(PT.reboot, node="90", yes=True)  # a control plane: confirmed by --yes
    assert plan[0]["destructive"] is True and "keeps quorum" in plan[0]["desc"]
    assert sorted(fake_cli.state["rebooted"]) == ["127.0.0.90", "127.0.0.92"]


@pytest.mark.parity("talos.shutdown")
def test_shutdown_parity(plan_parity: Any, fake_cli: Any, cluster_dir: Path) -> None:
    (plan,) = plan_parity(PT.shutdown, node="98", force=True)
    assert "--force" in plan[0]["argv"] and fake_cli.state["shut_down"] == ["127.0.0.98"]


@pytest.mark.parity("talos.reset")
def test_reset_parity(
    plan_parity: Any,
    fake_cli: Any,
    cluster_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal: --yes is what confirms
    (plan,) = plan_parity(PT.reset, node="92", yes=True)
    assert plan[0]["destructive"] is True
    assert fake_cli.state["wiped"] == {"127.0.0.92": ["STATE", "EPHEMERAL"]}


# --- where the real run fails on what it can know, the dry-run fails alike -------------------------


def test_bad_apply_mode_is_exit_2_before_a_missing_talosctl(
    fake_cli_absent: Any,
    cluster_dir: Path,
) -> None:
    code, message = both_fail(T.apply, node="92", mode="sideways")
    assert code == 2 and "--mode 'sideways': valid modes are auto, no-reboot" in message
    assert fake_cli_absent.calls == []


def test_missing_talosctl_dry_run_shows_the_plan_then_exits_3(
    fake_cli_absent: Any,
    cluster_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, message = both_fail(T.upgrade_k8s)
    assert code == 3 and "talosctl not found" in message
    assert "talosctl upgrade-k8s" in capsys.readouterr().out  # printed by the dry-run only


def test_etcd_snapshot_out_is_a_directory(fake_cli: Any, cluster_dir: Path) -> None:
    (cluster_dir / "backups").mkdir()
    code, message = both_fail(T.etcd_snapshot, out="backups")
    assert code == 2 and message == (
        "domum: --out backups: is a directory; give the snapshot's file name, "
        "e.g. --out backups/etcd.snapshot"
    )
    (cluster_dir / "afile").write_text("")
    code, message = both_fail(T.etcd_snapshot, out="afile/etcd.snapshot")
    assert code == 2 and "is a file, not a directory" in message
    assert talos_calls(fake_cli, "etcd") == [] and list((cluster_dir / "backups").iterdir()) == []


def test_genconfig_placeholder_recipient(env: Env) -> None:
    (env.root / ".sops.yaml").write_text((REPO / ".sops.yaml").read_text())
    code, message = both_fail(genconfig)
    assert code == 2 and "age1REPLACE-WITH-YOUR-AGE-PUBLIC-KEY is not an age public key" in message
    assert env.calls() == [] and env.patch_tree() == {}


def test_genconfig_without_talosctl_renders_patches_then_exit_3_in_both_runs(
    env: Env,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env.fake.remove("talosctl")
    code, message = both_fail(genconfig)
    assert code == 3 and "inv tools.install" in message
    out = capsys.readouterr().out
    assert "talos.genconfig (patches only)" in out and "gen secrets" not in out  # dry-run plan
    assert len(env.patch_tree()) == 8 and not env.secrets.exists()  # the real run wrote them
