"""Pure planners of the proxmox namespace: inventory + facts in, steps out (no server)."""

from __future__ import annotations

import pytest

from domum_tasks import inventory
from domum_tasks.errors import ConfigError, Refused
from domum_tasks.plan import PveCall
from domum_tasks.proxmox import plan
from domum_tasks.proxmox.facts import VmFacts, VmInfo, parse_resources, parse_snapshots
from tests.conftest import LOOPBACK_INVENTORY

QGA_ID = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"


@pytest.fixture
def inv():  # type: ignore[no-untyped-def]
    return inventory.load(LOOPBACK_INVENTORY)


def test_talos_vm_config(inv) -> None:  # type: ignore[no-untyped-def]
    cfg = plan.vm_config(inv, plan.vm_target(inv, 96))
    assert cfg == {
        "vmid": 196,
        "name": "domum-cp3",
        "memory": 4096,
        "cores": 2,
        "sockets": 1,
        "cpu": "host",
        "scsihw": "virtio-scsi-single",
        "scsi0": "local-lvm:40,iothread=1,discard=on,ssd=1",
        "net0": "virtio=BC:24:11:10:00:96,bridge=vmbr0",
        "agent": "enabled=1",
        "ostype": "l26",
        "ide2": "local:iso/talos-v1.13.9-ce4c9805.iso,media=cdrom",
        "boot": "order=scsi0;ide2;net0",
        "onboot": 1,
        "serial0": "socket",
        "tags": "domum;talos;controlplane",
        "description": "Domum node 96 (controlplane); managed by inv proxmox.create-vm",
    }


def test_iso_comes_from_the_pinned_version_and_schematic(inv) -> None:  # type: ignore[no-untyped-def]
    iso = plan.talos_iso(inv, plan.vm_target(inv, 96))
    assert iso.url == f"https://factory.talos.dev/image/{QGA_ID}/v1.13.9/metal-amd64.iso"
    assert (iso.storage, iso.filename) == ("local", "talos-v1.13.9-ce4c9805.iso")
    node = inv.nodes[96]
    pinned = node.model_copy(
        update={"schematic": node.schematic.model_copy(update={"id": "ab" * 32})}
    )
    other = inv.model_copy(update={"nodes": {**inv.nodes, 96: pinned}})
    assert plan.talos_iso(other, plan.vm_target(other, 96)).filename == "talos-v1.13.9-abababab.iso"


def test_create_plan_when_the_iso_is_there(inv) -> None:  # type: ignore[no-untyped-def]
    p = plan.plan_create_vm(inv, 96, VmFacts("pve1", iso_present=True), start=True)
    assert [(s.method, s.path) for s in p.steps if isinstance(s, PveCall)] == [
        ("POST", "/nodes/pve1/qemu"),
        ("POST", "/nodes/pve1/qemu/196/status/start"),
    ]
    assert all(isinstance(s, PveCall) and s.wait_task for s in p.steps)
    assert not p.destructive


def test_create_plan_starts_an_existing_stopped_vm_only_with_start(inv) -> None:  # type: ignore[no-untyped-def]
    facts = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve2", "stopped"))
    assert plan.plan_create_vm(inv, 96, facts).steps == []
    [step] = plan.plan_create_vm(inv, 96, facts, start=True).steps
    # The VM is where PVE says it is (it may have migrated), not where the inventory put it.
    assert isinstance(step, PveCall) and step.path == "/nodes/pve2/qemu/196/status/start"


@pytest.mark.parametrize(
    ("name", "ok"),
    [("pre-upgrade", True), ("a1", True), ("x", False), ("1abc", False), ("has space", False),
     ("a" * 40, True), ("a" * 41, False), ("current", False), ("with.dot", False)],
)  # fmt: skip
def test_snapshot_names(name: str, ok: bool) -> None:
    if ok:
        assert plan.check_snapname(name) == name
    else:
        with pytest.raises(ConfigError, match="--name"):
            plan.check_snapname(name)


def test_destroy_plans(inv) -> None:  # type: ignore[no-untyped-def]
    stopped = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "stopped"))
    [delete] = plan.plan_destroy_vm(inv, 96, stopped).steps
    assert isinstance(delete, PveCall) and delete.destructive and delete.method == "DELETE"
    running = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "running"))
    with pytest.raises(Refused, match="is running"):
        plan.plan_destroy_vm(inv, 96, running)
    lxc = VmFacts("pve1", vm=VmInfo(196, "domum-cp3", "pve1", "stopped", kind="lxc"))
    with pytest.raises(Refused, match="holds lxc"):
        plan.plan_destroy_vm(inv, 96, lxc)
    down = plan.plan_destroy_vm(inv, 96, VmFacts("pve1", reachable=False, reason="timeout"))
    assert "could not ask Proxmox host pve1 (timeout)" in down.notes[0]
    assert [s.method for s in down.steps if isinstance(s, PveCall)] == ["DELETE"]


def test_parsers() -> None:
    resources = [
        {"id": "qemu/196", "type": "qemu", "vmid": 196, "name": "domum-cp3", "node": "pve1",
         "status": "running"},
        {"id": "lxc/110", "type": "lxc", "vmid": "110", "name": "pihole", "node": "pve1",
         "status": "stopped", "template": 0},
        {"id": "storage/pve1/local", "type": "storage", "node": "pve1"},
    ]  # fmt: skip
    assert [(v.vmid, v.kind) for v in parse_resources(resources)] == [(110, "lxc"), (196, "qemu")]
    snaps = [{"name": "pre-upgrade"}, {"name": "current", "running": 1}]
    assert parse_snapshots(snaps) == ["pre-upgrade"]


def test_status_rows(inv) -> None:  # type: ignore[no-untyped-def]
    rows = plan.status_rows(inv, "pve1", [VmInfo(196, "renamed", "pve1", "running")])
    assert rows == [("pve1", "pve1", "196", "renamed", "running", "node 96 (expects domum-cp3)")]
    assert plan.status_rows(inv, "pve1", None, "cannot reach")[0][4] == "down"
