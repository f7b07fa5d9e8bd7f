"""Drift on a running VM as qemu-server 9.2 applies it (vm/hotplug.py), end to end against
fakepve with tests/fixtures/pve_hotplug.py: NIC MAC, model and bridge, a missing ide2, memory
with and without memory hotplug, and the Talos guide's firmware fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domum_tasks.proxmox.vm import tasks as vm_tasks
from tests.fixtures import pve_hotplug
from tests.fixtures.pve_sim import PveSim
from tests.fixtures.task_calls import fails, run

pytestmark = pytest.mark.integration

ISO_NAME = "talos-v1.13.9-ce4c9805.iso"
NET = "virtio=BC:24:11:10:00:96,bridge=vmbr0"


def drift_of(capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[str, bool]]:
    report = json.loads(run(vm_tasks.create_vm, capsys, node=96, json=True))
    return {d["key"]: (d["cls"], d["disruptive"]) for d in report["drift"].get("96", [])}


def running_vm(sim: PveSim, **changes: Any) -> Any:
    sim.pve.store_file("local", ISO_NAME, 1024)
    return sim.add_inventory_vm(96, status="running", **changes)


@pytest.mark.parametrize(
    "net0",
    ["virtio=BC:24:11:10:00:99,bridge=vmbr0", "e1000=BC:24:11:10:00:96,bridge=vmbr0"],
    ids=["mac", "model"],
)
def test_nic_mac_or_model_is_replugged_at_once_and_needs_yes(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str], net0: str
) -> None:
    vm = running_vm(pve_sim, net0=net0, cores=1)
    assert drift_of(capsys) == {"net0": ("live", True), "cores": ("pending", False)}
    dry = json.loads(run(vm_tasks.create_vm, capsys, node=96, apply_drift=True,
                         dry_run=True, json=True))  # fmt: skip
    assert [(s["params"], s.get("destructive", False)) for s in dry] == [
        ({"cores": "2"}, False),
        ({"net0": NET}, True),  # its own step, marked destructive
    ]
    assert "the guest loses its network now" in dry[1]["desc"]
    assert "control plane" in dry[1]["desc"]
    code, msg = fails(vm_tasks.create_vm, capsys, node=96, apply_drift=True)
    assert code == 4 and "pass --yes" in msg
    assert vm.config["net0"] == net0 and pve_sim.writes() == []  # nothing sent
    run(vm_tasks.create_vm, capsys, node=96, apply_drift=True, yes=True)
    assert vm.config["net0"] == NET and "net0" not in vm.pending  # live, as PVE does it
    assert (196, "net0", "replug") in pve_sim.pve.hotplug_log
    assert vm.pending == {"cores": "2"}


def test_nic_change_without_network_hotplug_waits(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = running_vm(pve_sim, net0="e1000=BC:24:11:10:00:96,bridge=vmbr0", hotplug="disk,usb")
    assert drift_of(capsys) == {"net0": ("pending", False)}
    run(vm_tasks.create_vm, capsys, node=96, apply_drift=True)  # no --yes needed
    assert vm.pending == {"net0": NET} and pve_sim.pve.hotplug_log == []


@pytest.mark.parametrize("hotplug", [None, "0"])
def test_bridge_change_moves_the_nic_now(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str], hotplug: str | None
) -> None:
    """vmconfig_update_net moves the tap to the new bridge without any hotplug feature."""
    vm = running_vm(pve_sim, net0="virtio=BC:24:11:10:00:96,bridge=vmbr9", hotplug=hotplug)
    assert drift_of(capsys) == {"net0": ("live", True)}
    run(vm_tasks.create_vm, capsys, node=96, apply_drift=True, yes=True)
    assert vm.config["net0"] == NET and vm.pending == {}
    assert pve_sim.pve.hotplug_log == [(196, "net0", "tap")]


def test_missing_ide2_is_pending_another_iso_is_live(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = running_vm(pve_sim, ide2=None)
    assert drift_of(capsys) == {"ide2": ("pending", False)}
    run(vm_tasks.create_vm, capsys, node=96, apply_drift=True)
    assert "ide2" not in vm.config and vm.pending["ide2"].startswith(f"local:iso/{ISO_NAME}")
    # Once it is there, another ISO is a medium change PVE makes at once.
    vm.pending.clear()
    vm.config["ide2"] = "local:iso/old.iso,media=cdrom"
    assert drift_of(capsys) == {"ide2": ("live", False)}
    run(vm_tasks.create_vm, capsys, node=96, apply_drift=True)
    assert vm.config["ide2"].startswith(f"local:iso/{ISO_NAME}") and vm.pending == {}
    assert pve_sim.pve.hotplug_log == [(196, "ide2", "medium")]


def test_memory_waits_without_memory_hotplug(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = running_vm(pve_sim, memory=2048)
    assert drift_of(capsys) == {"memory": ("pending", False)}
    out = run(vm_tasks.create_vm, capsys, node=96, apply_drift=True)
    assert "memory apply at the next restart" in out
    assert str(vm.config["memory"]) == "2048" and vm.pending == {"memory": "4096"}


def test_memory_is_live_with_memory_hotplug_and_numa(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = running_vm(pve_sim, memory=2048, hotplug="network,disk,memory", numa=1)
    assert drift_of(capsys) == {"memory": ("live", False)}
    out = run(vm_tasks.create_vm, capsys, node=96, apply_drift=True)
    assert "Talos's Proxmox guide says not to" in out  # memory hotplug is flagged
    assert str(vm.config["memory"]) == "4096" and vm.pending == {}
    assert pve_sim.pve.hotplug_log == [(196, "memory", "dimm")]


def test_firmware_fields_wait_for_a_stop_start(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = running_vm(pve_sim, machine="pc-i440fx-9.2+pve1", efidisk0=None)
    assert drift_of(capsys) == {"machine": ("pending", False), "efidisk0": ("pending", False)}
    run(vm_tasks.create_vm, capsys, node=96, apply_drift=True)
    assert set(vm.pending) == {"machine", "efidisk0"}
    assert "efitype=4m" in vm.pending["efidisk0"] and "size=528K" in vm.pending["efidisk0"]
    assert drift_of(capsys) == {}  # queued: shown as waiting for the restart, not as drift


# --- the fixture itself, against qemu-server's rules ------------------------------------------


@pytest.mark.parametrize(
    ("conf", "key", "value", "action"),
    [
        ({"net0": "virtio=AA:00:00:00:00:01,bridge=vmbr0"}, "net0",
         "virtio=AA:00:00:00:00:01,bridge=vmbr0,tag=30", "tap"),
        ({"net0": "virtio=AA:00:00:00:00:01,bridge=vmbr0"}, "net0",
         "virtio=AA:00:00:00:00:01,bridge=vmbr0,rate=10", "set"),
        ({}, "net1", "virtio=AA:00:00:00:00:02,bridge=vmbr0", "plug"),
        ({"hotplug": "0"}, "net1", "virtio=AA:00:00:00:00:02,bridge=vmbr0", None),
        ({}, "efidisk0", "local-lvm:vm-1-disk-1,efitype=4m", None),
        ({}, "scsi1", "local-lvm:vm-1-disk-2,size=8G", "plug"),
        ({}, "sata1", "local-lvm:vm-1-disk-2,size=8G", None),
        ({"scsi0": "l:vm-1-disk-0,size=8G"}, "scsi0", "l:vm-1-disk-0,cache=writethrough", None),
        ({"scsi0": "l:vm-1-disk-0,size=8G"}, "scsi0", "l:vm-1-disk-0,backup=0,size=8G", "set"),
        ({"balloon": "0"}, "balloon", "1024", None),
        ({"balloon": "512"}, "balloon", "1024", "set"),
        ({"agent": "1"}, "agent", "enabled=1,fstrim_cloned_disks=1", "set"),
        ({"agent": "1"}, "agent", "enabled=0", None),
        ({}, "agent", "enabled=1", None),
        ({}, "cores", "4", None),
        ({}, "bios", "ovmf", None),
        ({}, "hotplug", "network,disk,memory", None),
    ],
)  # fmt: skip
def test_hotplug_layer_follows_qemu_server(
    conf: dict[str, str], key: str, value: str, action: str | None
) -> None:
    if action is None:
        with pytest.raises(pve_hotplug.Skip):
            pve_hotplug.change(conf, key, value)
    else:
        assert pve_hotplug.change(conf, key, value) == action


def test_hotplug_layer_media_change_is_an_error() -> None:
    with pytest.raises(pve_hotplug.Problem, match="unable to change media type"):
        pve_hotplug.change({"ide2": "l:vm-1-disk-3,size=1G"}, "ide2", "local:iso/x.iso,media=cdrom")
