"""The proxmox namespace against a real fakepve over verified HTTPS: idempotency, refusals, dry-runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from domum_tasks.proxmox import vm_tasks
from tests.conftest import CONTRACTS, LOOPBACK_INVENTORY, REPO
from tests.fixtures.pve_sim import PveSim

pytestmark = pytest.mark.integration

ISO = "local:iso/talos-v1.13.9-ce4c9805.iso"  # sha256 schematic id of siderolabs/qemu-guest-agent


def run(task: Any, capsys: pytest.CaptureFixture[str], **kwargs: Any) -> str:
    task(Context(), **kwargs)
    return capsys.readouterr().out


def dry_json(task: Any, capsys: pytest.CaptureFixture[str], **kwargs: Any) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(run(task, capsys, dry_run=True, json=True, **kwargs))
    return steps


def test_create_vm_then_again_plans_nothing(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = dry_json(vm_tasks.create_vm, capsys, node=96)
    assert [(s["method"], s["path"]) for s in steps] == [
        ("POST", "/nodes/pve1/storage/local/download-url"),
        ("POST", "/nodes/pve1/qemu"),
    ]
    assert pve_sim.pve.vm(196) is None  # the dry-run only probed

    out = run(vm_tasks.create_vm, capsys, node=96)
    assert "done: create VM 196 (domum-cp3, node 96)" in out
    vm = pve_sim.pve.vm(196)
    assert vm.name == "domum-cp3" and vm.status == "stopped"
    assert vm.config["ide2"].startswith(f"{ISO},media=cdrom")
    assert vm.config["net0"].startswith("virtio=BC:24:11:10:00:96,bridge=vmbr0")
    assert vm.config["boot"] == "order=scsi0;ide2;net0"
    assert vm.config["tags"] == "controlplane;domum;talos"
    assert str(vm.config["onboot"]) == "1"

    assert dry_json(vm_tasks.create_vm, capsys, node=96) == []
    out = run(vm_tasks.create_vm, capsys, node=96)
    assert "already exists on pve1 (stopped): not creating it" in out
    assert "done:" not in out


def test_create_vm_start_and_iso_reuse(pve_sim: PveSim, capsys: pytest.CaptureFixture[str]) -> None:
    pve_sim.pve.store_file("local", ISO.split("/", 1)[1], 100 * 1024**2)
    out = run(vm_tasks.create_vm, capsys, node=96, start=True, json=True)
    result = json.loads(out)
    assert [s["path"] for s in result["steps"]] == [
        "/nodes/pve1/qemu",
        "/nodes/pve1/qemu/196/status/start",
    ]
    assert f"{ISO} is already on pve1" in result["notes"]
    assert pve_sim.pve.vm(196).status == "running"


def test_create_vm_refuses_a_vmid_taken_by_another_guest(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_inventory_vm(96, name="someone-else")
    with pytest.raises(Exit) as err:
        run(vm_tasks.create_vm, capsys, node=96)
    assert err.value.code == 4
    assert "vmid 196 on pve1 holds qemu 'someone-else', not the VM 'domum-cp3'" in str(err.value.message)


def test_create_vm_rejects_a_node_that_is_no_vm(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exit) as err:
        run(vm_tasks.create_vm, capsys, node=92, dry_run=True)
    assert err.value.code == 2
    assert "--node 92: domum-xr2 is a rpi5, not a proxmox-vm" in str(err.value.message)


def _unreachable_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    data["proxmox"]["pve1"]["api_url"] = "https://127.0.0.10:9"  # nothing listens there
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("DOMUM_INVENTORY", str(tmp_path / "inv.yaml"))
    monkeypatch.setenv("DOMUM_PROXMOX_PVE1_TOKEN_SECRET", "not-used")


def test_dry_run_without_api_plans_for_a_fresh_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _unreachable_inventory(tmp_path, monkeypatch)
    out = run(vm_tasks.create_vm, capsys, node=96, dry_run=True)
    assert "cannot reach https://127.0.0.10:9" in out
    assert "planned as for a fresh host: no VM, no Talos ISO yet" in out
    assert "pve POST /nodes/pve1/qemu vmid=196" in out
    # Outside a dry-run an unreachable API is an error, not an assumption.
    with pytest.raises(Exit) as err:
        run(vm_tasks.create_vm, capsys, node=96)
    assert err.value.code == 1 and "cannot reach" in str(err.value.message)


def test_destroy_needs_yes_and_refuses_running(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    with pytest.raises(Exit) as err:
        run(vm_tasks.destroy_vm, capsys, node=96)
    assert err.value.code == 4 and "is running" in str(err.value.message)
    assert "--stop" in str(err.value.message)

    # --stop without --yes: shows what it touches, then refuses (no terminal to confirm on).
    with pytest.raises(Exit) as err:
        run(vm_tasks.destroy_vm, capsys, node=96, stop=True)
    assert err.value.code == 4 and "pass --yes" in str(err.value.message)
    shown = capsys.readouterr().err
    assert "!! pve DELETE /nodes/pve1/qemu/196" in shown
    assert pve_sim.pve.vm(196) is not None and pve_sim.pve.vm(196).status == "running"

    steps = dry_json(vm_tasks.destroy_vm, capsys, node=96, stop=True)
    assert [(s["method"], s.get("destructive")) for s in steps] == [
        ("POST", True),
        ("DELETE", True),
    ]
    assert steps[1]["params"] == {"purge": 1, "destroy-unreferenced-disks": 1}

    out = run(vm_tasks.destroy_vm, capsys, node=96, stop=True, yes=True)
    assert "done: destroy VM 196 (domum-cp3, node 96) and its disks" in out
    assert pve_sim.pve.vm(196) is None
    out = run(vm_tasks.destroy_vm, capsys, node=96, yes=True)
    assert "does not exist on pve1: nothing to destroy" in out


def test_destroy_never_touches_a_foreign_guest(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_inventory_vm(96, name="important-db")
    with pytest.raises(Exit) as err:
        run(vm_tasks.destroy_vm, capsys, node=96, yes=True)
    assert err.value.code == 4
    assert pve_sim.pve.vm(196) is not None


def test_snapshot_once_per_name(pve_sim: PveSim, capsys: pytest.CaptureFixture[str]) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    run(vm_tasks.snapshot, capsys, node=96, name="pre-upgrade")
    assert list(pve_sim.pve.vm(196).snapshots) == ["pre-upgrade"]
    out = run(vm_tasks.snapshot, capsys, node=96, name="pre-upgrade")
    assert "already has a snapshot named 'pre-upgrade': nothing to do" in out
    with pytest.raises(Exit) as err:
        run(vm_tasks.snapshot, capsys, node=96, name="x")
    assert err.value.code == 2 and "--name 'x'" in str(err.value.message)


def test_snapshot_of_a_missing_vm_fails(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Exit) as err:
        run(vm_tasks.snapshot, capsys, node=96, name="pre-upgrade")
    assert err.value.code == 1
    assert "does not exist on pve1: nothing to snapshot" in str(err.value.message)


def test_status_marks_inventory_vms(pve_sim: PveSim, capsys: pytest.CaptureFixture[str]) -> None:
    pve_sim.pve.add_vm(150, "plex", node="pve1", status="running")
    rows = json.loads(run(vm_tasks.status, capsys, json=True))
    assert rows == [
        {"host": "pve1", "pve node": "pve1", "vmid": "150", "name": "plex",
         "status": "running", "inventory": "-"},
        {"host": "pve1", "pve node": "pve1", "vmid": "196", "name": "domum-cp3",
         "status": "missing", "inventory": "node 96"},
    ]  # fmt: skip
    pve_sim.add_inventory_vm(96)
    rows = json.loads(run(vm_tasks.status, capsys, json=True))
    assert rows[1]["status"] == "stopped" and rows[1]["inventory"] == "node 96"


def test_cli_error_is_one_line_without_traceback(pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "proxmox.destroy-vm", "--node", "96", "--yes"],
        cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 4
    assert proc.stderr.strip().splitlines() == [
        "domum: VM 196 (domum-cp3, node 96) is running",
        "  hint: pass --stop to stop it first",
    ]


# --- contract ---------------------------------------------------------------------------------


def _planned_calls() -> list[dict[str, Any]]:
    """Every PveCall the planners produce for the loopback inventory, in each state they handle."""
    from domum_tasks import inventory
    from domum_tasks.proxmox import plan
    from domum_tasks.proxmox.facts import VmFacts, VmInfo

    inv = inventory.load(LOOPBACK_INVENTORY)
    fresh = VmFacts("pve1")
    down = VmFacts("pve1", reachable=False, reason="test")
    stopped = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "stopped"))
    running = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "running"))
    plans = [
        plan.plan_create_vm(inv, 96, fresh, start=True),
        plan.plan_create_vm(inv, 96, down),
        plan.plan_create_vm(inv, 96, stopped, start=True),
        plan.plan_snapshot(inv, 96, running, "pre-upgrade", vmstate=True),
        plan.plan_snapshot(inv, 96, down, "pre-upgrade"),
        plan.plan_destroy_vm(inv, 96, running, stop=True),
        plan.plan_destroy_vm(inv, 96, down),
    ]
    return [s for p in plans for s in json.loads(p.to_json())]


@pytest.mark.skipif(not CONTRACTS.is_dir(), reason="../shared/contracts is absent")
def test_planned_and_probed_calls_pass_the_pve_contract(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    planned = _planned_calls()
    assert {s["kind"] for s in planned} == {"pve"} and len(planned) == 11
    # The probes and executed calls of a real run, as domum_tasks.pve sent them.
    run(vm_tasks.create_vm, capsys, node=96, start=True)
    run(vm_tasks.snapshot, capsys, node=96, name="pre-upgrade")
    run(vm_tasks.destroy_vm, capsys, node=96, stop=True, yes=True)
    run(vm_tasks.status, capsys, json=True)
    calls = [{k: s[k] for k in ("method", "path", "params")} for s in planned] + pve_sim.calls()
    assert not any(isinstance(v, bool) for c in calls for v in c["params"].values())
    (tmp_path / "calls.json").write_text(json.dumps(calls))
    proc = subprocess.run(
        [sys.executable, str(CONTRACTS / "check_pve_calls.py"), str(tmp_path / "calls.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(calls)} calls, 0 with errors" in proc.stdout
