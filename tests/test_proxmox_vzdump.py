"""proxmox.vzdump against fakepve: one task per guest, WARNINGS as a warning, failures reported."""

from __future__ import annotations

import time
from typing import Any

import pytest

from domum_tasks.errors import ConfigError
from domum_tasks.proxmox import vzdump
from tests.fixtures.pve_sim import PveSim


def run_vzdump(inv: Any, vmids: list[int], **kw: Any) -> list[vzdump.VzdumpResult]:
    """The plan the proxmox.vzdump task makes, run by the executor, each guest judged."""
    from domum_tasks.pve import Session
    from domum_tasks.taskutil import executor

    pve = Session(inv)
    plan = vzdump.plan_vzdump(inv, vmids, located=vzdump.locate(pve, vmids), **kw)
    return vzdump.outcomes(executor(inventory=inv, pve_session=pve).execute(plan))


pytestmark = pytest.mark.integration


def archiving(sim: PveSim, *, exitstatus: str = "OK", store: bool = True) -> None:
    """Make fakepve's vzdump act like PVE's: log the archive it writes and list it on the storage.

    fakepve answers POST /nodes/{node}/vzdump generically (a task, nothing stored), see
    contracts/pve-notes.md; this adds what a real vzdump task leaves behind.
    """
    fake = sim.pve
    original = fake.synthesise

    async def synthesise(match: Any, method: str, info: Any, user: Any, values: Any) -> Any:
        answer = await original(match, method, info, user, values)
        if match.template != "/nodes/{node}/vzdump":
            return answer
        record = fake.tasks[answer]
        stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.gmtime())
        name = f"vzdump-qemu-{values['vmid']}-{stamp}.vma.zst"
        path = fake.storages[values["storage"]]["path"]
        record["log"][-1:-1] = [f"INFO: creating vzdump archive '{path}/dump/{name}'"]
        if store:
            fake.store_file(values["storage"], name, 1024, content="backup")
        if exitstatus != "OK":
            record["exitstatus"] = exitstatus
            record["log"][-1] = f"TASK {exitstatus}"
        return answer

    fake.synthesise = synthesise


def test_prune_policy_renders_pve_string() -> None:
    assert vzdump.prune_backups({"keep_daily": 7, "keep_weekly": 4, "keep_last": 0}) == (
        "keep-daily=7,keep-weekly=4"
    )
    with pytest.raises(ConfigError, match=r"unknown key.*keep_forever"):
        vzdump.prune_backups({"keep_forever": 1})
    with pytest.raises(ConfigError, match="keep_daily must be a whole number"):
        vzdump.prune_backups({"keep_daily": -1})


def test_judge_follows_pve_status_is_error() -> None:
    assert vzdump.judge("OK") == "ok"
    assert vzdump.judge("WARNINGS: 2") == "warning"
    assert vzdump.judge("job errors") == "failed"
    assert vzdump.judge("WARNINGS: many") == "failed"


def test_plan_is_one_call_per_guest_then_its_listing(pve_sim: PveSim) -> None:
    plan = vzdump.plan_vzdump(pve_sim.inventory(), [196], prune={"keep_daily": 7})
    step, listing = plan.steps
    assert listing.to_dict() == {
        "kind": "pve",
        "method": "GET",
        "path": "/nodes/pve1/storage/nas-backup/content",
        "params": {"content": "backup", "vmid": 196},
    }
    assert step.to_dict() == {
        "kind": "pve",
        "method": "POST",
        "path": "/nodes/pve1/vzdump",
        "params": {
            "vmid": "196",
            "storage": "nas-backup",
            "mode": "snapshot",
            "compress": "zstd",
            "notes-template": vzdump.NOTES_TEMPLATE,
            "prune-backups": "keep-daily=7",
        },
    }


def test_run_reports_each_volid(pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    archiving(pve_sim)
    [result] = run_vzdump(pve_sim.inventory(), [196], prune={"keep_daily": 7})
    assert result.status == "ok" and result.node == "pve1"
    assert result.volid is not None
    assert result.volid.startswith("nas-backup:backup/vzdump-qemu-196-")


def test_warnings_are_a_warning(pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    archiving(pve_sim, exitstatus="WARNINGS: 1")
    [result] = run_vzdump(pve_sim.inventory(), [196])
    assert result.status == "warning" and result.volid is not None
    assert result.message == "backed up with warnings: 1"


def test_no_archive_is_never_ok(pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="running")  # plain fakepve: the task leaves nothing
    [result] = run_vzdump(pve_sim.inventory(), [196])
    assert result.status == "warning" and result.volid is None
    assert "no archive is named in its log or found on nas-backup" in result.message


def test_failed_task_is_a_failure(pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    pve_sim.pve.fail("POST", "/nodes/pve1/vzdump", 500, "storage 'nas-backup' is not online")
    [result] = run_vzdump(pve_sim.inventory(), [196])
    assert result.status == "failed" and result.volid is None
    assert "storage 'nas-backup' is not online" in result.message


def test_node_offline_is_a_failure_not_a_crash(pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    pve_sim.pve.set_node_offline("pve1")
    [result] = run_vzdump(pve_sim.inventory(), [196])
    assert result.status == "failed"
    assert "595" in result.message


def test_vzdump_task_reports_volids_and_dry_runs_the_call(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from invoke import Context

    from domum_tasks.proxmox.status import tasks as status_tasks

    pve_sim.add_inventory_vm(96, status="running")
    archiving(pve_sim)
    status_tasks.vzdump(Context(), node=96, dry_run=True, json=True)
    step, listing = json.loads(capsys.readouterr().out)
    assert listing["method"] == "GET"
    assert step["params"]["prune-backups"] == "keep-daily=7,keep-weekly=4,keep-monthly=6"
    assert pve_sim.writes() == []
    # --all: every inventory guest, the VM nodes' and the containers
    pve_sim.pve.add_ct(210, "domum-unifi", node="pve1", status="running")
    pve_sim.pve.add_ct(211, "domum-mqtt", node="pve1")
    status_tasks.vzdump(Context(), all=True, json=True)
    rows = {r["vmid"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == [196, 210, 211] and {r["status"] for r in rows.values()} == {"ok"}
    assert rows[196]["volid"].startswith("nas-backup:backup/vzdump-qemu-196-")


def test_vzdump_task_exits_1_when_a_backup_fails(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str]
) -> None:
    from invoke import Context, Exit

    pve_sim.add_inventory_vm(96, status="running")
    archiving(pve_sim, exitstatus="job errors")
    from domum_tasks.proxmox.status import tasks as status_tasks

    with pytest.raises(Exit) as err:
        status_tasks.vzdump(Context(), node=96)
    assert err.value.code == 1 and "vzdump failed for 196" in str(err.value.message)
    assert "backup failed: job errors" in capsys.readouterr().out


def test_a_migrated_vm_is_backed_up_where_it_lives(pve_sim: PveSim) -> None:
    from fakepve.model import FakeVm

    pve_sim.add_inventory_vm(96, status="running")
    vm: FakeVm = pve_sim.pve.vm(196)
    pve_sim.pve.add_node("pve2")
    vm.node = "pve2"
    archiving(pve_sim)
    [result] = run_vzdump(pve_sim.inventory(), [196])
    assert result.node == "pve2" and result.status == "ok"
    assert ("POST", "/nodes/pve2/vzdump") in [(m, p) for m, p, _ in pve_sim.sent]
