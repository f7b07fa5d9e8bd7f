"""talos.reboot, talos.shutdown, talos.reset, and apply's maintenance-mode and dry-run paths:
planners (pure) and the tasks against the strict talosctl stand-in."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from domum_tasks.errors import ConfigError
from domum_tasks.inventory.loader import load
from domum_tasks.plan import Cmd
from domum_tasks.talos.ops import plan as P
from domum_tasks.talos.ops import power
from domum_tasks.talos.ops import power_tasks as PT
from domum_tasks.talos.ops import tasks as T
from tests.conftest import LOOPBACK_INVENTORY
from tests.fixtures.contract import assert_argv_valid
from tests.test_talos_ops_exec import cluster_dir, nodes_of, talos_calls  # noqa: F401

INV = load(LOOPBACK_INVENTORY)
CORPUS = Path(__file__).parent / "data" / "talos_merged"


def only_cmd(plan: Any) -> Cmd:
    (step,) = plan.steps
    assert isinstance(step, Cmd)
    return step


def test_reset_keeps_the_boot_partition_by_default() -> None:
    plan = power.plan_reset(INV, 92)
    step = only_cmd(plan)
    assert step.destructive and plan.destructive
    argv = list(step.argv)
    labels = [argv[i + 1] for i, a in enumerate(argv) if a == "--system-labels-to-wipe"]
    assert labels == ["STATE", "EPHEMERAL"] and "--reboot" in argv
    assert "maintenance mode" in step.desc and "domum-xr2" in step.desc
    assert any("boot partition stays" in n for n in plan.notes)


@pytest.mark.parametrize(
    ("node", "says"), [(92, "flashed again"), (97, "USB stick or PXE"), (96, "ISO")]
)
def test_full_reset_wipes_everything_and_warns_per_platform(node: int, says: str) -> None:
    plan = power.plan_reset(INV, node, full=True)
    argv = list(only_cmd(plan).argv)
    assert "--system-labels-to-wipe" not in argv and "--reboot" not in argv
    (warning,) = [n for n in plan.notes if n.startswith("warning: --full")]
    assert says in warning


def test_reboot_and_shutdown_confirm_only_for_control_planes() -> None:
    cp, worker = (
        power.plan_reboot(INV, 90),
        power.plan_reboot(INV, 92, wait=True, wait_timeout="5m"),
    )
    assert only_cmd(cp).destructive and not only_cmd(worker).destructive
    assert "--wait=false" in only_cmd(cp).argv
    assert list(only_cmd(worker).argv)[-3:] == ["--wait=true", "--timeout", "5m"]
    (quorum,) = cp.notes
    assert "2 of 3 stay up, etcd keeps quorum" in quorum
    down = power.plan_shutdown(INV, 96)
    assert only_cmd(down).destructive and "stays off" in " ".join(down.notes)
    assert "--force" in only_cmd(power.plan_shutdown(INV, 97, force=True)).argv
    assert not only_cmd(power.plan_shutdown(INV, 97)).destructive
    with pytest.raises(ConfigError, match="runs raspios, not Talos"):
        power.plan_reboot(INV, 93)


def test_apply_at_a_maintenance_address() -> None:
    plan = P.plan_apply(INV, [92], insecure=True, at="127.0.0.153")
    argv = list(only_cmd(plan).argv)
    assert argv[argv.index("--nodes") + 1] == "127.0.0.153"
    assert argv[argv.index("--endpoints") + 1] == "127.0.0.153" and "--insecure" in argv
    assert any("takes its inventory address 127.0.0.92" in n for n in plan.notes)
    with pytest.raises(ConfigError, match="only with --insecure"):
        P.plan_apply(INV, [92], at="127.0.0.153")
    with pytest.raises(ConfigError, match="names one node's address"):
        P.plan_apply(INV, [90, 92], insecure=True, at="127.0.0.153")
    with pytest.raises(ConfigError, match="not an IP address"):
        P.plan_apply(INV, [92], insecure=True, at="node-92.lan")


@pytest.mark.parametrize("mode", P.APPLY_MODES)
def test_every_v113_apply_mode_is_planned(mode: str) -> None:
    argv = list(only_cmd(P.plan_apply(INV, [97], mode=mode)).argv)
    assert argv[argv.index("--mode") + 1] == mode


def test_every_planned_power_argv_passes_the_contract() -> None:
    plans = [
        power.plan_reset(INV, 91, graceful=False),
        power.plan_reset(INV, 92, full=True),
        power.plan_reboot(INV, 90),
        power.plan_reboot(INV, 92, wait=True),
        power.plan_shutdown(INV, 96),
        power.plan_shutdown(INV, 97, force=True),
        P.plan_apply(INV, [92], insecure=True, at="127.0.0.153"),
        *[P.plan_apply(INV, [97], mode=m) for m in P.APPLY_MODES],
    ]
    assert_argv_valid([list(only_cmd(p).argv) for p in plans])


# --- tasks against the stand-in ---------------------------------------------------------------


def test_reset_task_wipes_only_state_and_ephemeral(
    fake_cli: Any,
    cluster_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    PT.reset(Context(), node="92", yes=True)
    PT.reset(Context(), node="97", yes=True, full=True)
    assert fake_cli.state["wiped"] == {
        "127.0.0.92": ["STATE", "EPHEMERAL"],
        "127.0.0.97": ["whole system disk"],
    }


def test_reboot_control_plane_needs_yes_worker_does_not(
    fake_cli: Any,
    cluster_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal to confirm on
    with pytest.raises(Exit) as exc:
        PT.reboot(Context(), node="90")
    assert exc.value.code == 4 and fake_cli.calls == []
    PT.reboot(Context(), node="92", wait=True, wait_timeout="2m")
    PT.reboot(Context(), node="90", yes=True)
    assert fake_cli.state["rebooted"] == ["127.0.0.90", "127.0.0.92"]
    with pytest.raises(Exit) as exc:
        PT.shutdown(Context(), node="91")
    assert exc.value.code == 4
    PT.shutdown(Context(), node="91", yes=True)
    PT.shutdown(Context(), node="98")
    assert fake_cli.state["shut_down"] == ["127.0.0.91", "127.0.0.98"]
    with pytest.raises(Exit) as exc:
        PT.reboot(Context())
    assert exc.value.code == 2 and "--node N is required" in str(exc.value.message)


def _config(cluster_dir: Path, host: str, text: str) -> Path:
    path = cluster_dir / "clusterconfig" / f"domum-{host}.yaml"
    path.write_text(text)
    return path


def test_apply_dry_run_shows_the_nodes_own_diff(
    fake_cli: Any,
    cluster_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = (CORPUS / "valid-worker.yaml").read_text()
    _config(cluster_dir, "domum-x", good)
    T.apply(Context(), node="97")  # the node now runs this config
    assert fake_cli.state["applied"]["127.0.0.97"]["mode"] == "auto"
    _config(cluster_dir, "domum-x", good.replace("10.0.10.90/24", "10.0.10.97/24"))
    capsys.readouterr()
    fake_cli.clear()
    T.apply(Context(), node="97", dry_run=True)
    out = capsys.readouterr().out
    assert "--- talosctl apply-config --dry-run on domum-x (127.0.0.97):" in out
    assert "Config diff:" in out
    removed = [ln for ln in out.splitlines() if ln.startswith("-") and "address:" in ln]
    added = [ln for ln in out.splitlines() if ln.startswith("+") and "address:" in ln]
    assert [ln.split()[-1] for ln in removed] == ["10.0.10.90/24"]
    assert [ln.split()[-1] for ln in added] == ["10.0.10.97/24"]
    dry = [c for c in talos_calls(fake_cli, "apply-config") if "--dry-run" in c]
    assert len(dry) == 1  # the probe; the plan itself ran nothing
    assert "10.0.10.90/24" in fake_cli.state["applied"]["127.0.0.97"]["config"]  # unchanged


def test_apply_dry_run_on_an_unreachable_node_says_what_it_assumed(
    fake_cli: Any,
    cluster_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _config(cluster_dir, "domum-x", (CORPUS / "valid-worker.yaml").read_text())
    fake_cli.set_state(
        fail={"apply-config": {"nodes": ["127.0.0.97"], "message": "connection refused"}}
    )
    T.apply(Context(), node="97", dry_run=True)
    out = capsys.readouterr().out
    assert "no answer" in out and "assumes the node runs" in out


def test_apply_a_config_the_node_rejects_fails_like_the_node(
    fake_cli: Any,
    cluster_dir: Path,
) -> None:
    _config(cluster_dir, "domum-xr2", (CORPUS / "hostname-auto-beside-hostname.yaml").read_text())
    with pytest.raises(Exit) as exc:
        T.apply(Context(), node="92", insecure=True, at="127.0.0.152", mode="reboot")
    assert exc.value.code == 1
    assert "'auto' and 'hostname' cannot be set at the same time" in str(exc.value.message)
    (call,) = talos_calls(fake_cli, "apply-config")
    assert nodes_of(call) == "127.0.0.152"
