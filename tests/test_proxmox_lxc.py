"""Containers managed like VMs, and proxmox.restore, against fakepve with the PVE layer of
tests/fixtures/pve_lxc.py (vzdump writes archives; restores as qemu-server/pve-container do)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domum_tasks.errors import ConfigError, Refused
from domum_tasks.proxmox.facts import VmFacts, VmInfo
from domum_tasks.proxmox.power import tasks as power_tasks
from domum_tasks.proxmox.restore import tasks as restore_tasks
from domum_tasks.proxmox.restore.plan import parse_archive, plan_restore
from domum_tasks.proxmox.snapshots import tasks as snapshot_tasks
from domum_tasks.proxmox.status import tasks as status_tasks
from tests.fixtures.contract import assert_pve_valid
from tests.fixtures.pve_lxc import PveGuests
from tests.fixtures.task_calls import fails, run

VM_VOLID = "nas-backup:backup/vzdump-qemu-196-2026_12_01-02_30_00.vma.zst"
CT_VOLID = "nas-backup:backup/vzdump-lxc-210-2026_12_01-02_30_00.tar.zst"


# --- pure: archives and restore plans ---------------------------------------------------------


def test_archive_names_as_pve_storage_reads_them() -> None:
    vm, ct = parse_archive(VM_VOLID), parse_archive(CT_VOLID)
    assert (vm.kind, vm.vmid, vm.storage) == ("qemu", 196, "nas-backup")
    assert (ct.kind, ct.vmid) == ("lxc", 210)
    pbs = parse_archive("pbs:backup/ct/210/2026-12-01T02:30:00Z")
    assert (pbs.kind, pbs.vmid) == ("lxc", 210)
    for bad in ("nas-backup:iso/talos.iso", "vzdump-qemu-196-2026_12_01-02_30_00.vma.zst"):
        with pytest.raises(ConfigError, match="not a vzdump backup volume id"):
            parse_archive(bad)


def _facts(status: str | None, kind: str = "lxc", name: str = "domum-unifi") -> VmFacts:
    vm = None if status is None else VmInfo(210, name, "pve1", status, kind=kind)
    return VmFacts(host="pve1", vm=vm, config={} if vm else None)


def test_restore_plans_refuse_what_pve_refuses(loopback_inventory: Any) -> None:
    inv = loopback_inventory
    fresh = plan_restore(inv, "unifi", _facts(None), CT_VOLID, listed=[CT_VOLID])
    [call] = fresh.steps
    assert call.path == "/nodes/pve1/lxc" and not call.destructive
    assert call.params == {"vmid": 210, "storage": "local-lvm", "ostemplate": CT_VOLID,
                           "restore": 1}  # fmt: skip
    replace = plan_restore(inv, "unifi", _facts("stopped"), CT_VOLID, listed=[CT_VOLID])
    assert replace.steps[0].params["force"] == 1 and replace.destructive
    with pytest.raises(Refused, match="running: PVE does not restore over a running container"):
        plan_restore(inv, "unifi", _facts("running"), CT_VOLID, listed=[CT_VOLID])
    with pytest.raises(Refused, match="holds a qemu guest"):
        plan_restore(inv, "unifi", _facts("stopped", kind="qemu"), CT_VOLID, listed=[CT_VOLID])
    with pytest.raises(ConfigError, match="a VM archive cannot restore CT 210"):
        plan_restore(inv, "unifi", _facts(None), VM_VOLID, listed=[VM_VOLID])
    with pytest.raises(Refused, match="holds no backup"):
        plan_restore(inv, "unifi", _facts(None), CT_VOLID, listed=[])
    assert_pve_valid([s.to_dict() for s in (*fresh.steps, *replace.steps)])


@pytest.fixture
def loopback_inventory() -> Any:
    from domum_tasks.inventory import loader
    from tests.fixtures.pve_sim import LOOPBACK_INVENTORY

    return loader.load(LOOPBACK_INVENTORY)


# --- containers: power and snapshots ---------------------------------------------------------


@pytest.mark.integration
def test_container_power_cycle(pve_guests: PveGuests, capsys: pytest.CaptureFixture[str]) -> None:
    ct = pve_guests.add_inventory_ct("unifi", status="stopped")
    run(power_tasks.start, capsys, node="unifi")
    assert ct.status == "running"
    sent = [p for _m, p, _ in pve_guests.sim.sent]
    assert (
        "/nodes/pve1/lxc/210/status/start" in sent and "/nodes/pve1/lxc/210/status/current" in sent
    )
    assert "already running: nothing to do" in run(power_tasks.start, capsys, node="unifi")
    run(power_tasks.reboot, capsys, node="unifi", timeout=30)
    run(power_tasks.shutdown, capsys, node="unifi", force_after=5)
    assert ct.status == "stopped"
    shutdown = [c for c in pve_guests.sim.writes() if c[1].endswith("/status/shutdown")][-1]
    assert shutdown[2] == {"timeout": 5, "forceStop": 1}
    run(power_tasks.start, capsys, node="unifi")
    code, msg = fails(power_tasks.stop, capsys, node="unifi")
    assert code == 4 and "pass --yes" in msg
    run(power_tasks.stop, capsys, node="unifi", yes=True)
    assert ct.status == "stopped"
    code, msg = fails(power_tasks.start, capsys, node="mqtt")
    assert code == 1 and "CT 211 (mqtt) does not exist on pve1" in msg
    assert "inv proxmox.restore --node mqtt --from VOLID" in msg
    code, msg = fails(power_tasks.start, capsys, node="nope")
    assert code == 2 and "no node id or container of that name" in msg and "unifi" in msg


@pytest.mark.integration
def test_container_snapshots(pve_guests: PveGuests, capsys: pytest.CaptureFixture[str]) -> None:
    ct = pve_guests.add_inventory_ct("unifi", status="running")
    code, msg = fails(snapshot_tasks.snapshot, capsys, node="unifi", name="a1", vmstate=True)
    assert code == 2 and "PVE snapshots no container RAM" in msg
    run(snapshot_tasks.snapshot, capsys, node="unifi", name="before")
    run(snapshot_tasks.snapshot, capsys, node="unifi", name="after")
    rows = json.loads(run(snapshot_tasks.snapshot_list, capsys, node="unifi", json=True))
    assert [(r["node"], r["snapshot"]) for r in rows] == [("unifi", "before"), ("unifi", "after")]
    out = run(snapshot_tasks.snapshot_rollback, capsys, node="unifi", name="before", yes=True)
    assert "PVE stops the container for the rollback and leaves it stopped" in out
    assert ct.status == "stopped"
    run(snapshot_tasks.snapshot_delete, capsys, node="unifi", name="after", yes=True)
    assert list(ct.snapshots) == ["before"]
    writes = [(m, p) for m, p, _ in pve_guests.sim.writes()]
    assert ("POST", "/nodes/pve1/lxc/210/snapshot/before/rollback") in writes
    assert ("DELETE", "/nodes/pve1/lxc/210/snapshot/after") in writes


# --- vzdump: containers, and when PVE falls back to suspend ------------------------------------


@pytest.mark.integration
def test_vzdump_of_containers_says_the_mode(
    pve_guests: PveGuests, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_guests.add_inventory_ct("unifi", status="running")  # rootfs on local-lvm (lvmthin)
    pve_guests.add_inventory_ct(
        "mqtt", status="running", rootfs="local:211/vm-211-disk-0.raw,size=4G"
    )
    rows = {r["vmid"]: r for r in json.loads(run(status_tasks.vzdump, capsys, node="unifi",
                                                 json=True))}  # fmt: skip
    assert rows[210]["mode"] == "snapshot" and rows[210]["volid"].startswith(
        "nas-backup:backup/vzdump-lxc-210-"
    )
    [row] = json.loads(run(status_tasks.vzdump, capsys, node="mqtt", json=True))
    assert row["status"] == "ok" and row["mode"] == "suspend"
    assert row["message"] == (
        "backed up in suspend mode: PVE fell back from snapshot "
        "(mode failure - some volumes do not support snapshots)"
    )
    pve_guests.pve.ct(211).status = "stopped"
    [row] = json.loads(run(status_tasks.vzdump, capsys, node="mqtt", json=True))
    assert (row["mode"], row["message"]) == ("stop", "backed up")


def test_backup_job_names_a_suspend_fallback() -> None:
    from domum_tasks.backup.jobs import Job
    from domum_tasks.backup.producers.vzdump_job import verdict
    from domum_tasks.plan import Fanout
    from domum_tasks.proxmox.vzdump import listing_call, vzdump_call
    from domum_tasks.run import StepResult

    log = ["INFO: mode failure - some volumes do not support snapshots",
           "INFO: trying 'suspend' mode instead", "INFO: backup mode: suspend",
           "INFO: creating vzdump archive '/mnt/pve/nas-backup/dump/vzdump-lxc-211-2026_12_01-02_30_00.tar.zst'"]  # fmt: skip
    backup = StepResult(vzdump_call("pve1", 211, "nas-backup"), ok=True,
                        value={"exitstatus": "OK", "log": log, "starttime": 0})  # fmt: skip
    listing = StepResult(listing_call("pve1", 211, "nas-backup"), ok=True, value=[])
    from domum_tasks.inventory.model import BackupJob

    job = Job("pve-vms", BackupJob(kind="vzdump", targets=["pve-nas"], vmids=[211]))
    outcome = StepResult(Fanout(((backup.step, listing.step),)), ok=True, value=[[backup, listing]])
    record = verdict(job, outcome, 0.0)
    assert record["status"] == "ok"
    assert "guest 211 on pve1: ok: backed up in suspend mode" in record["message"]


# --- restore ------------------------------------------------------------------------------


@pytest.mark.integration
def test_restore_a_vm_from_its_vzdump(
    pve_guests: PveGuests, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = pve_guests.sim.add_inventory_vm(96, status="running")
    [row] = json.loads(run(status_tasks.vzdump, capsys, node=96, json=True))
    volid = row["volid"]
    assert volid.startswith("nas-backup:backup/vzdump-qemu-196-")
    vm.config["memory"] = 1024  # what the restore must undo
    code, msg = fails(restore_tasks.restore, capsys, node=96, from_=volid, yes=True)
    assert code == 4 and "is running: PVE does not restore over a running VM" in msg
    assert "inv proxmox.shutdown --node 96" in msg
    run(power_tasks.stop, capsys, node=96, yes=True)
    code, msg = fails(restore_tasks.restore, capsys, node=96, from_=volid)
    assert code == 4 and "pass --yes" in msg
    out = run(restore_tasks.restore, capsys, node=96, from_=volid, yes=True, start=True)
    assert "replaces VM 196 (domum-cp3, node 96) (stopped)" in out
    freed = out.split("its disks are freed: ", 1)[1].split("\n", 1)[0]
    assert "scsi0 local-lvm:vm-196-disk-0" in freed and "efidisk0 local-lvm:" in freed
    restored = pve_guests.pve.vm(196)
    assert restored is not vm and restored.status == "running"
    assert str(restored.config["memory"]) == "4096" and restored.name == "domum-cp3"
    [call] = [c for c in pve_guests.sim.writes() if c[1] == "/nodes/pve1/qemu"]
    assert call[2] == {
        "vmid": 196,
        "storage": "local-lvm",
        "archive": volid,
        "force": 1,
        "start": 1,
    }
    assert_pve_valid(pve_guests.sim.calls())


@pytest.mark.integration
def test_restore_a_container_missing_then_replaced(
    pve_guests: PveGuests, capsys: pytest.CaptureFixture[str]
) -> None:
    ct = pve_guests.add_inventory_ct("unifi", status="stopped", memory=2048, cores=2)
    volid = pve_guests.backup(210)
    pve_guests.pve.cts.remove(ct)  # the container is lost
    code, msg = fails(restore_tasks.restore, capsys, node="unifi", from_=CT_VOLID)
    assert code == 4 and f"nas-backup holds no backup {CT_VOLID}" in msg and volid in msg
    out = run(restore_tasks.restore, capsys, node="unifi", from_=volid)
    assert "done: restore CT 210 (unifi)" in out
    back = pve_guests.pve.ct(210)
    assert back.config["hostname"] == "domum-unifi" and str(back.config["memory"]) == "2048"
    assert back.config["rootfs"].startswith("local-lvm:")
    back.config["memory"] = 64
    out = run(restore_tasks.restore, capsys, node="unifi", from_=volid, yes=True)
    assert "replaces CT 210 (unifi) (stopped)" in out and "rootfs local-lvm:" in out
    assert str(pve_guests.pve.ct(210).config["memory"]) == "2048"
    calls = [c for c in pve_guests.sim.writes() if c[1] == "/nodes/pve1/lxc"]
    assert [c[2].get("force") for c in calls] == [None, 1]
    assert all(c[2]["restore"] == 1 and c[2]["ostemplate"] == volid for c in calls)
    assert_pve_valid(pve_guests.sim.calls())


@pytest.mark.integration
@pytest.mark.parity("proxmox.restore")
def test_restore_parity(plan_parity: Any, pve_guests: PveGuests) -> None:
    pve_guests.sim.add_inventory_vm(96, status="stopped")
    volid = pve_guests.backup(196)
    plans = plan_parity(restore_tasks.restore, node=96, from_=volid, yes=True)
    assert [(s["kind"], s["method"], s["path"]) for p in plans for s in p] == [
        ("pve", "POST", "/nodes/pve1/qemu")
    ]
    assert plans[0][0]["destructive"] is True


@pytest.mark.integration
@pytest.mark.parity("proxmox.restore")
def test_restore_container_parity(plan_parity: Any, pve_guests: PveGuests) -> None:
    ct = pve_guests.add_inventory_ct("mqtt", status="stopped")
    volid = pve_guests.backup(211)
    pve_guests.pve.cts.remove(ct)
    plans = plan_parity(restore_tasks.restore, node="mqtt", from_=volid, start=True)
    assert [(s["kind"], s.get("path", "")) for p in plans for s in p] == [
        ("pve", "/nodes/pve1/lxc"),
        ("wait", ""),
    ]
    assert pve_guests.pve.ct(211).status == "running"
