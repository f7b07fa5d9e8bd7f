"""The proxmox namespace end to end against fakepve: drift, --all, power, snapshots, faults."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domum_tasks.proxmox.power import tasks as power_tasks
from domum_tasks.proxmox.snapshots import tasks as snapshot_tasks
from domum_tasks.proxmox.status import tasks as status_tasks
from domum_tasks.proxmox.vm import tasks as vm_tasks
from tests.fixtures.pve_sim import PveSim
from tests.fixtures.task_calls import fails, run

pytestmark = pytest.mark.integration

ISO_NAME = "talos-v1.13.9-ce4c9805.iso"


# --- create-vm: --all, zero writes, drift ------------------------------------------------------


def test_create_all_then_again_writes_nothing(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = pve_sim.add_vm_nodes(3)
    run(vm_tasks.create_vm, capsys, all=True)
    for vmid in [196] + [1000 + i for i in extra]:
        vm = pve_sim.pve.vm(vmid)
        assert vm is not None and vm.config["scsihw"] == "virtio-scsi-pci"
    downloads = [c for c in pve_sim.writes() if c[1].endswith("/download-url")]
    # One ISO per schematic, shared by the VMs that boot it: the control plane's (qemu-ga) and
    # the three workers' (qemu-ga plus the Longhorn tools, since workers carry volumes).
    names = sorted(c[2]["filename"] for c in downloads)
    assert len(names) == 2 and len(set(names)) == 2, names
    pve_sim.sent.clear()
    out = run(vm_tasks.create_vm, capsys, all=True)
    assert pve_sim.writes() == []
    assert "create-vm --all: no write calls needed" in out
    assert out.count("matches the inventory: nothing to write") == 4
    reads = [p for _m, p, _ in pve_sim.sent]
    assert len(reads) <= 4 + 2  # one /pending per VM + resources + one ISO listing


def test_drift_is_shown_field_by_field_and_not_applied(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.pve.store_file("local", ISO_NAME, 1024)
    pve_sim.add_inventory_vm(96, status="running", cores=1, tags="old", balloon=None)
    out = run(vm_tasks.create_vm, capsys, node=96)
    assert pve_sim.writes() == []
    assert "Drift from the inventory" in out
    for field, cls in (("cores", "pending"), ("tags", "live"), ("balloon", "pending")):
        assert any(field in line and cls in line for line in out.splitlines()), (field, out)
    report = json.loads(run(vm_tasks.create_vm, capsys, node=96, json=True))
    assert {d["key"]: d["cls"] for d in report["drift"]["96"]} == {
        "cores": "pending", "tags": "live", "balloon": "pending",
    }  # fmt: skip
    assert report["changed"] is False and report["steps"] == []


def test_apply_drift_live_now_pending_at_reboot(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.pve.store_file("local", ISO_NAME, 1024)
    vm = pve_sim.add_inventory_vm(96, status="running", cores=1, tags="old")
    dry = json.loads(run(vm_tasks.create_vm, capsys, node=96, apply_drift=True,
                         dry_run=True, json=True))  # fmt: skip
    assert [(s["method"], s["path"], s["params"]) for s in dry] == [
        ("POST", "/nodes/pve1/qemu/196/config", {"cores": "2", "tags": "domum;talos;controlplane"})
    ]
    out = run(vm_tasks.create_vm, capsys, node=96, apply_drift=True)
    assert "cores apply at the next restart (inv proxmox.reboot --node 96)" in out
    assert vm.config["tags"] == "domum;talos;controlplane" and vm.pending == {"cores": "2"}
    out = run(vm_tasks.create_vm, capsys, node=96)
    assert "cores: 2 is queued by PVE and applies at the next restart" in out
    assert "Drift" not in out
    run(power_tasks.reboot, capsys, node=96)
    assert str(vm.config["cores"]) == "2" and vm.pending == {}


def test_destroys_data_refused_then_forced(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.pve.store_file("local", ISO_NAME, 1024)
    pve_sim.add_inventory_vm(
        96, status="stopped", cores=1, scsi0="local-lvm:vm-196-disk-0,discard=on,size=80G,ssd=1"
    )
    # The dry-run knows the refusal: same exit code and message, and nothing changes.
    dry_code, dry_msg = fails(vm_tasks.create_vm, capsys, node=96, apply_drift=True, dry_run=True)
    assert str(pve_sim.pve.vm(196).config["cores"]) == "1"
    code, msg = fails(vm_tasks.create_vm, capsys, node=96, apply_drift=True)
    assert (dry_code, dry_msg) == (code, msg)
    assert code == 4 and "PVE cannot shrink a disk (80G -> 40G)" in msg
    assert "--force" in msg
    # The safe change went out; the disk was not touched.
    assert str(pve_sim.pve.vm(196).config["cores"]) == "2"
    assert "size=80G" in pve_sim.pve.vm(196).config["scsi0"]
    code, msg = fails(vm_tasks.create_vm, capsys, node=96, apply_drift=True, force=True)
    assert code == 4 and "pass --yes" in msg  # recreating is destructive
    run(vm_tasks.create_vm, capsys, node=96, apply_drift=True, force=True, yes=True)
    assert "size=40G" in pve_sim.pve.vm(196).config["scsi0"]


# --- power ---------------------------------------------------------------------------------


def test_power_cycle_waits_for_state(pve_sim: PveSim, capsys: pytest.CaptureFixture[str]) -> None:
    vm = pve_sim.add_inventory_vm(96, status="stopped")
    run(power_tasks.start, capsys, node=96)
    assert vm.status == "running"
    assert any(p.endswith("/status/current") for _m, p, _ in pve_sim.sent)
    assert "already running: nothing to do" in run(power_tasks.start, capsys, node=96)
    run(power_tasks.shutdown, capsys, node=96)
    assert vm.status == "stopped"
    run(power_tasks.start, capsys, node=96)
    code, msg = fails(power_tasks.stop, capsys, node=96)
    assert code == 4 and "pass --yes" in msg
    run(power_tasks.stop, capsys, node=96, yes=True)
    assert vm.status == "stopped"


def test_shutdown_without_force_after_fails_with_advice(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = pve_sim.add_inventory_vm(96, status="running")
    vm.acpi = False  # the guest ignores the request
    code, msg = fails(power_tasks.shutdown, capsys, node=96, timeout=5)
    assert code == 1 and "VM quit/powerdown failed - got timeout" in msg
    assert vm.status == "running"
    run(power_tasks.shutdown, capsys, node=96, force_after=5)
    assert vm.status == "stopped"
    shutdown = [c for c in pve_sim.writes() if c[1].endswith("/status/shutdown")][-1]
    assert shutdown[2] == {"timeout": 5, "forceStop": 1}


def test_state_wait_has_a_deadline(pve_sim: PveSim, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from domum_tasks.proxmox.power import actions as power

    vm = pve_sim.add_inventory_vm(96, status="stopped")
    vm.start_error = None
    monkeypatch.setattr(power, "STATE_DEADLINE_S", 0.3)
    # The task ends OK but PVE keeps reporting the VM stopped (as an HA-held start can).
    original = pve_sim.pve._do_start

    async def start_without_effect(vm_: Any, user: Any, p: Any) -> Any:
        upid = await original(vm_, user, p)
        vm_.status = vm_.qmpstatus = "stopped"
        return upid

    pve_sim.pve._do_start = start_without_effect
    code, msg = fails(power_tasks.start, capsys, node=96)
    assert (
        code == 1
        and "gave up after 0.3s waiting for VM 196 (domum-cp3, node 96) to be "
        "running: pve1: VM 196 is still stopped, not running"
        in msg
    )


# --- snapshots -----------------------------------------------------------------------------


def test_snapshot_list_rollback_delete(pve_sim: PveSim, capsys: pytest.CaptureFixture[str]) -> None:
    vm = pve_sim.add_inventory_vm(96, status="running")
    run(snapshot_tasks.snapshot, capsys, node=96, name="before")
    run(snapshot_tasks.snapshot, capsys, node=96, name="after")
    rows = json.loads(run(snapshot_tasks.snapshot_list, capsys, json=True))
    assert [r["snapshot"] for r in rows if r["node"] == "96"] == ["before", "after"]
    # the inventory's containers are listed too; the fake holds none of them
    assert {(r["node"], r["taken"]) for r in rows if r["node"] != "96"} == {
        ("mqtt", "no CT"),
        ("unifi", "no CT"),
    }
    code, msg = fails(snapshot_tasks.snapshot_rollback, capsys, node=96, name="before")
    assert code == 4 and "pass --yes" in msg
    out = run(snapshot_tasks.snapshot_rollback, capsys, node=96, name="before", yes=True)
    assert "loses everything VM 196 (domum-cp3, node 96) wrote since" in out
    assert "newer snapshots stay: after" in out
    assert "holds no RAM: PVE stops the VM for the rollback and leaves it stopped" in out
    assert vm.status == "stopped" and vm.config["parent"] == "before"
    run(snapshot_tasks.snapshot_delete, capsys, node=96, name="after", yes=True)
    assert list(vm.snapshots) == ["before"]
    out = run(snapshot_tasks.snapshot_delete, capsys, node=96, name="after", yes=True)
    assert "has no snapshot 'after': nothing to delete" in out


# --- failures ----------------------------------------------------------------------------


def test_bad_token_is_one_actionable_line(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOMUM_PROXMOX_PVE1_TOKEN_SECRET", "wrong")
    code, msg = fails(power_tasks.start, capsys, node=96)
    assert code == 1 and "401 authentication failure" in msg
    assert "check token domum@pve!automation and DOMUM_PROXMOX_PVE1_TOKEN_SECRET" in msg


def test_missing_privilege_is_refused_before_any_write(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    token = pve_sim.token_id
    pve_sim.pve.grant(token, "/", "VM.Audit", "Datastore.Audit", "Sys.Audit")
    pve_sim.pve.grant(token, "/vms", "VM.Allocate", "VM.Config.CPU", "VM.Config.Memory")
    code, msg = fails(vm_tasks.create_vm, capsys, node=96)
    assert code == 4 and "nothing was changed" in msg
    for lacking in ("Datastore.AllocateTemplate on /storage/local",
                    "VM.Config.Options on /vms/196", "VM.Config.Network on /vms/196",
                    "SDN.Use on /sdn/zones/localnetwork/vmbr0",
                    "Datastore.AllocateSpace on /storage/local-lvm"):  # fmt: skip
        assert lacking in msg
    assert "VM.Allocate on" not in msg and "VM.Config.CPU" not in msg
    assert pve_sim.writes() == []
    # PVE is asked once per path the plan needs, for exactly that path.
    asked = [q["path"] for _m, p, q in pve_sim.sent if p == "/access/permissions"]
    assert "/vms/196" in asked and "/storage/local-lvm" in asked
    assert len(asked) == len(set(asked))


def test_403_names_the_privilege_as_pve_does(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    from domum_tasks import pve
    from domum_tasks.errors import PveError

    pve_sim.add_inventory_vm(96)
    pve_sim.pve.grant(pve_sim.token_id, "/", "VM.Audit")
    client = pve.client(pve_sim.inventory(), "pve1")
    with pytest.raises(PveError) as err:
        client.call("PUT", "/nodes/pve1/qemu/196/config", {"tags": "x"})
    assert err.value.message == (
        "pve1: PUT /nodes/pve1/qemu/196/config: 403 Permission check failed (/vms/196, VM.Config.Options)"
    )
    assert "pveum acl modify" in err.value.hint


def test_failed_task_shows_the_log_tail(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = pve_sim.add_inventory_vm(96, status="stopped")
    vm.start_error = "storage 'local-lvm' is not online"
    code, msg = fails(power_tasks.start, capsys, node=96)
    assert code == 1 and "task qmstart 196 on pve1 failed" in msg
    assert "| TASK ERROR: storage 'local-lvm' is not online" in msg


def test_task_that_times_out(pve_sim: PveSim, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from domum_tasks import pve

    vm = pve_sim.add_inventory_vm(96, status="stopped")
    pve_sim.pve.time_scale = 1.0
    vm.start_secs = 30
    monkeypatch.setitem(pve.TASK_DEADLINES_S, "start", 0.5)
    code, msg = fails(power_tasks.start, capsys, node=96)
    assert code == 1 and "task qmstart 196 on pve1 still running after 0.5s" in msg


def test_locked_vm_names_the_lock_and_task(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    pve_sim.add_inventory_vm(96, status="running")
    pve_sim.pve.time_scale = 0.01
    upid = asyncio.run_coroutine_threadsafe(pve_sim.pve.backup(196, secs=300),
                                            _loop(pve_sim)).result(10)  # fmt: skip
    code, msg = fails(snapshot_tasks.snapshot, capsys, node=96, name="pre-upgrade")
    assert code == 5 and "is locked (backup); running: vzdump" in msg and upid in msg


def test_config_lock_held_by_another_client(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    pve_sim.pve.store_file("local", ISO_NAME, 1024)
    pve_sim.add_inventory_vm(96, status="stopped", cores=1)
    asyncio.run_coroutine_threadsafe(pve_sim.pve.hold_config_lock(196, None),
                                     _loop(pve_sim)).result(10)  # fmt: skip
    code, msg = fails(vm_tasks.create_vm, capsys, node=96, apply_drift=True)
    assert code == 1 and "can't lock file '/var/lock/qemu-server/lock-196.conf'" in msg
    assert "VM 196 is locked but none of its tasks is running on pve1" in msg


def test_node_offline_mid_task(pve_sim: PveSim, capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    vm = pve_sim.add_inventory_vm(96, status="stopped")
    pve_sim.pve.time_scale = 1.0
    vm.start_secs = 2
    timer = threading.Timer(0.3, pve_sim.pve.set_node_offline, args=("pve1",))
    timer.start()
    try:
        code, msg = fails(power_tasks.start, capsys, node=96)
    finally:
        timer.cancel()
    assert code == 1 and "595 No route to host" in msg


def test_flaky_network_fails_cleanly(pve_sim: PveSim, capsys: pytest.CaptureFixture[str]) -> None:
    pve_sim.pve.flaky_network(drop_rate=1.0, seed=1)
    code, msg = fails(status_tasks.status, capsys)
    assert code == 1 and "pve1: unreachable" in msg


def _loop(sim: PveSim) -> Any:
    """The event loop fakepve runs on (to drive its async scenario helpers)."""
    import gc

    from tests.fixtures.pve_sim import _Served

    served = [o for o in gc.get_objects() if isinstance(o, _Served) and o.pve is sim.pve]
    return served[0].loop


def test_slow_network_times_out_with_the_reason(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from domum_tasks import pve

    pve_sim.pve.time_scale = 1.0
    pve_sim.pve.slow_network(1.0)
    client = pve.client(pve_sim.inventory(), "pve1")
    monkeypatch.setattr(client, "timeout_s", 0.3)
    monkeypatch.setattr(client, "_api", None)
    with pytest.raises(pve.PveUnavailable, match=r"cannot reach .*: no answer within 0\.3s"):
        client.get("/cluster/resources")
    pve_sim.pve.slow_network(0.0)


def test_destroy_by_vmid_needs_force_for_a_foreign_guest(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.pve.add_vm(150, "scratch", node="pve1", status="stopped")
    code, msg = fails(vm_tasks.destroy_vm, capsys, vmid=150, yes=True)
    assert code == 4 and "vmid 150 is not an inventory VM (it is qemu 'scratch' on pve1)" in msg
    assert pve_sim.pve.vm(150) is not None
    run(vm_tasks.destroy_vm, capsys, vmid=150, force=True, yes=True)
    assert pve_sim.pve.vm(150) is None


def test_a_vm_made_by_the_old_defaults_moves_to_the_guide(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    """VMs created before: SeaBIOS on i440fx, no EFI disk, virtio-scsi-single with iothread=1 and
    no cache=, ballooning on. PVE queues all of it on a running VM; OVMF is refused (the
    installed Talos would not boot) until --force recreates the VM."""
    pve_sim.pve.store_file("local", ISO_NAME, 1024)
    old_disk = "local-lvm:vm-196-disk-0,discard=on,iothread=1,size=40G,ssd=1"
    vm = pve_sim.add_inventory_vm(96, status="running", scsihw="virtio-scsi-single",
                                  scsi0=old_disk, balloon=None, bios=None, machine=None,
                                  efidisk0=None)  # fmt: skip
    report = json.loads(run(vm_tasks.create_vm, capsys, node=96, json=True))
    assert {d["key"]: d["cls"] for d in report["drift"]["96"]} == {
        "bios": "pending", "efidisk0": "pending", "machine": "pending", "scsihw": "pending",
        "scsi0": "pending", "balloon": "pending",
    }  # fmt: skip
    code, msg = fails(vm_tasks.create_vm, capsys, node=96, apply_drift=True)
    assert code == 4 and "bios: " in msg and "no EFI loader" in msg and "--force" in msg
    assert "bios" not in vm.config and "bios" not in vm.pending  # not sent
    assert vm.config["scsihw"] == "virtio-scsi-single"  # queued, not applied, while running
    assert vm.pending["scsihw"] == "virtio-scsi-pci" and vm.pending["machine"] == "q35"
    assert vm.pending["efidisk0"].startswith("local-lvm:vm-196-disk-1,")  # allocated now
    assert set(vm.pending) == {"scsihw", "scsi0", "balloon", "machine", "efidisk0"}
    run(power_tasks.reboot, capsys, node=96)
    assert vm.pending == {} and vm.config["machine"] == "q35"
    report = json.loads(run(vm_tasks.create_vm, capsys, node=96, json=True))
    assert [d["key"] for d in report["drift"]["96"]] == ["bios"]
    run(power_tasks.shutdown, capsys, node=96)
    run(vm_tasks.create_vm, capsys, node=96, apply_drift=True, force=True, yes=True)
    assert pve_sim.pve.vm(196).config["bios"] == "ovmf"
    out = run(vm_tasks.create_vm, capsys, node=96)
    assert "matches the inventory: nothing to write" in out
