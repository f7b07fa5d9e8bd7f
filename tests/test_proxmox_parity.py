"""Dry-run parity for the proxmox namespace against fakepve: the plan `--dry-run --json` prints
is the plan the real run executes, step for step (tests/fixtures/parity.py). The dry-run only
reads, so both runs see the same simulator state and plan the same steps."""

from __future__ import annotations

from typing import Any

import pytest

from domum_tasks.proxmox.power import tasks as power_tasks
from domum_tasks.proxmox.snapshots import tasks as snapshot_tasks
from domum_tasks.proxmox.status import tasks as status_tasks
from domum_tasks.proxmox.vm import tasks as vm_tasks
from tests.fixtures.pve_sim import PveSim

pytestmark = pytest.mark.integration

Parity = Any  # the plan_parity fixture's checker


def kinds(plans: list[list[dict[str, Any]]]) -> list[tuple[str, ...]]:
    return [(s["kind"], s.get("method", ""), s.get("path", "")) for p in plans for s in p]


def snapshot_of(sim: PveSim, name: str) -> None:
    from domum_tasks import pve

    client = pve.client(sim.inventory(), "pve1")
    client.wait_task(client.call("POST", "/nodes/pve1/qemu/196/snapshot", {"snapname": name}))


@pytest.mark.parity("proxmox.create-vm")
def test_create_vm_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    plans = plan_parity(vm_tasks.create_vm, node=96, start=True)
    assert [k[1:] for k in kinds(plans)] == [
        ("", ""),  # register the ISO's schematic with the Image Factory
        ("", ""),  # and record it in schematics.lock
        ("POST", "/nodes/pve1/storage/local/download-url"),
        ("POST", "/nodes/pve1/qemu"),
        ("POST", "/nodes/pve1/qemu/196/status/start"),
    ]
    assert pve_sim.pve.vm(196).status == "running"


@pytest.mark.parity("proxmox.create-vm")
def test_create_vm_apply_drift_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    """A running VM with a new MAC (PVE re-plugs the NIC at once: destructive, --yes), a queued
    CPU change and no EFI disk: the dry-run shows each call the real run makes."""
    pve_sim.pve.store_file("local", "talos-v1.13.9-ce4c9805.iso", 1024)
    vm = pve_sim.add_inventory_vm(96, status="running", cores=1, efidisk0=None,
                                  net0="virtio=BC:24:11:10:00:01,bridge=vmbr0")  # fmt: skip
    plans = plan_parity(vm_tasks.create_vm, node=96, apply_drift=True, yes=True)
    steps = [s for p in plans for s in p]
    assert [(s["params"], s.get("destructive", False)) for s in steps] == [
        ({"cores": "2", "efidisk0": "local-lvm:1,efitype=4m,pre-enrolled-keys=0"}, False),
        ({"net0": "virtio=BC:24:11:10:00:96,bridge=vmbr0"}, True),
    ]
    assert vm.config["net0"].startswith("virtio=BC:24:11:10:00:96") and set(vm.pending) == {
        "cores", "efidisk0",
    }  # fmt: skip


@pytest.mark.parity("proxmox.destroy-vm")
def test_destroy_vm_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    plans = plan_parity(vm_tasks.destroy_vm, node=96, stop=True, yes=True)
    assert [k[1] for k in kinds(plans)] == ["POST", "DELETE"]
    assert pve_sim.pve.vm(196) is None


@pytest.mark.parity("proxmox.start")
def test_start_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    vm = pve_sim.add_inventory_vm(96, status="stopped")
    plans = plan_parity(power_tasks.start, node=96)
    assert kinds(plans) == [("pve", "POST", "/nodes/pve1/qemu/196/status/start"), ("wait", "", "")]
    assert plans[0][1]["probe"]["action"] == "pve.vm-state"
    assert vm.status == "running"


@pytest.mark.parity("proxmox.stop")
def test_stop_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    vm = pve_sim.add_inventory_vm(96, status="running")
    plan_parity(power_tasks.stop, node=96, yes=True)
    assert vm.status == "stopped"


@pytest.mark.parity("proxmox.shutdown")
def test_shutdown_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    vm = pve_sim.add_inventory_vm(96, status="running")
    plans = plan_parity(power_tasks.shutdown, node=96, force_after=5)
    assert plans[0][0]["params"] == {"timeout": 5, "forceStop": 1}
    assert vm.status == "stopped"


@pytest.mark.parity("proxmox.reboot")
def test_reboot_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    plans = plan_parity(power_tasks.reboot, node=96)
    assert kinds(plans)[0] == ("pve", "POST", "/nodes/pve1/qemu/196/status/reboot")


@pytest.mark.parity("proxmox.snapshot")
def test_snapshot_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    vm = pve_sim.add_inventory_vm(96, status="running")
    plan_parity(snapshot_tasks.snapshot, node=96, name="pre-upgrade")
    assert list(vm.snapshots) == ["pre-upgrade"]


@pytest.mark.parity("proxmox.snapshot-rollback")
def test_snapshot_rollback_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    vm = pve_sim.add_inventory_vm(96, status="running")
    snapshot_of(pve_sim, "before")
    plans = plan_parity(snapshot_tasks.snapshot_rollback, node=96, name="before", yes=True)
    assert kinds(plans)[0][2] == "/nodes/pve1/qemu/196/snapshot/before/rollback"
    assert vm.config["parent"] == "before"


@pytest.mark.parity("proxmox.snapshot-delete")
def test_snapshot_delete_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    vm = pve_sim.add_inventory_vm(96, status="running")
    snapshot_of(pve_sim, "old")
    plans = plan_parity(snapshot_tasks.snapshot_delete, node=96, name="old", yes=True)
    assert kinds(plans) == [("pve", "DELETE", "/nodes/pve1/qemu/196/snapshot/old")]
    assert list(vm.snapshots) == []


@pytest.mark.parity("proxmox.vzdump")
def test_vzdump_parity(plan_parity: Parity, pve_sim: PveSim) -> None:
    from tests.test_proxmox_vzdump import archiving

    pve_sim.add_inventory_vm(96, status="running")
    archiving(pve_sim)
    plans = plan_parity(status_tasks.vzdump, node=96)
    assert kinds(plans) == [
        ("pve", "POST", "/nodes/pve1/vzdump"),
        ("pve", "GET", "/nodes/pve1/storage/nas-backup/content"),
    ]
    assert [c[1] for c in pve_sim.writes()] == ["/nodes/pve1/vzdump"]  # the dry-run only read


def test_dry_run_refuses_a_missing_privilege_as_the_real_run(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    """The privilege pre-check is part of planning: same exit code and message both ways."""
    from invoke import Context, Exit

    pve_sim.add_inventory_vm(96, status="stopped")
    pve_sim.pve.grant(pve_sim.token_id, "/", "VM.Audit")
    outcomes = []
    for dry in (True, False):
        with pytest.raises(Exit) as err:
            power_tasks.start(Context(), node=96, dry_run=dry)
        outcomes.append((err.value.code, str(err.value.message)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 4 and "VM.PowerMgmt on /vms/196" in outcomes[0][1]
    assert pve_sim.writes() == []
