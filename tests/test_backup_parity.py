"""backup.*: the plan `--dry-run --json` prints is the plan the real run executes (parity), and
a dry-run fails wherever the real run would on a precondition, with the same exit code and
message. Real restic, rsync and sshd (tests/backup_lab.py); the tasks run in this process."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from domum_tasks.backup import tasks as T
from tests.backup_lab import Lab, snapshots
from tests.test_backup_faults import ok_job
from tests.test_backup_kinds import _snap_at

pytestmark = pytest.mark.integration


def outcome(task: Any, **options: Any) -> tuple[int, str]:
    """(exit code, message) of one run of the task, stdout swallowed."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            task(Context(), **options)
    except Exit as exc:
        return exc.code, str(exc.message or "")
    return 0, ""


def both(task: Any, **options: Any) -> tuple[int, str]:
    """The dry-run and the real run end the same way; returns that (exit code, message)."""
    dry = outcome(task, dry_run=True, **options)
    real = outcome(task, **options)
    assert dry == real, f"dry-run {dry} vs real run {real}"
    assert "internal error" not in real[1] and "Traceback" not in real[1]
    return real


def kinds(plan: list[dict[str, Any]]) -> list[str]:
    return [s.get("action") or s["kind"] for s in plan]


# --- parity: the executed plans are the printed ones ------------------------------------------


@pytest.mark.parity("backup.init")
def test_init_parity(lab: Lab, plan_parity: Any) -> None:
    lab.add_repo("b", initialised=False)
    [plan] = plan_parity(T.init)
    assert [s["argv"][3:] for s in plan] == [["init"]]  # only b: a is a repository already
    assert (lab.repo("b") / "config").exists()


@pytest.mark.parity("backup.snapshot")
def test_snapshot_parity(lab: Lab, plan_parity: Any) -> None:
    ok_job(lab)
    lab.job("conf", kind="config", targets=["a"])
    [plan] = plan_parity(T.snapshot)
    assert kinds(plan) == [
        "backup.lock",
        *["backup.start", "job", "backup.record"] * 2,
        "backup.metrics",
        "backup.unlock",
    ]
    assert {j for j in lab.state()["jobs"]} == {"pis", "conf"}


@pytest.mark.parity("backup.prune")
def test_prune_parity(lab: Lab, plan_parity: Any) -> None:
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"],
            retention={"keep_last": 3, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0})  # fmt: skip
    for day in range(1, 6):
        _snap_at(lab, f"2026-04-{day:02d} 11:00:00")
    [plan] = plan_parity(T.prune, real_options={"yes": True})
    # restic in a process group of its own: a signal ends it as Ctrl-C does (issue 16 #9)
    [forget] = [x for s in plan for x in s.get("steps", []) if "--prune" in x.get("argv", [])]
    assert forget["destructive"] and len(forget["argv"]) - forget["argv"].index("--prune") == 3
    # flock, forget, its own status (issue 16 #10), metrics, flock
    assert kinds(plan) == [
        "backup.lock", "job", "backup.retention-record", "backup.metrics", "backup.unlock",
    ]  # fmt: skip
    assert "unlock" not in forget["argv"]  # restic's locks: never removed by Domum
    assert forget["argv"][3:6] == ["--retry-lock", "3s", "forget"]  # the lab's lock_wait
    assert len(snapshots(lab.repo("a"), "pis")) == 3  # keep_last 3


@pytest.mark.parity("backup.verify")
def test_verify_parity(lab: Lab, plan_parity: Any) -> None:
    ok_job(lab)
    assert lab.inv("backup.snapshot").returncode == 0
    [plan] = plan_parity(T.verify, subset=2)  # the slice comes from the state: 1 both times
    assert any(
        "--read-data-subset=1/2" in x.get("argv", []) for s in plan for x in s.get("steps", [])
    )
    assert lab.state()["verify"]["a"]["next"] == 2


@pytest.mark.parity("backup.restore")
def test_restore_parity(lab: Lab, plan_parity: Any, tmp_path: Path) -> None:
    ok_job(lab)
    assert lab.inv("backup.snapshot").returncode == 0
    out = tmp_path / "restored"
    plan_parity(T.restore, job="pis", to=str(out))
    assert (out / "MANIFEST.sha256").exists() and not (out / ".domum-restore").exists()


@pytest.mark.parity("backup.drill")
def test_drill_parity(lab: Lab, plan_parity: Any) -> None:
    ok_job(lab)
    assert lab.inv("backup.snapshot").returncode == 0
    plan_parity(T.drill)
    assert lab.state()["drill"]["pis"]["ok"] is True


@pytest.mark.parity("backup.install-timer")
def test_install_timer_parity(plan_parity: Any, tmp_path: Path) -> None:
    units = tmp_path / "units"
    [plan] = plan_parity(T.install_timer, unit_dir=str(units))
    assert sorted(Path(s["path"]).name for s in plan) == sorted(p.name for p in units.iterdir())


# --- dry-run parity: the dry-run fails where the real run does --------------------------------


def test_snapshot_without_a_restic_password_exits_2_both_ways(lab: Lab, tmp_path: Path) -> None:
    ok_job(lab)
    lab.mp.delenv("DOMUM_BACKUP_TARGETS_A_PASSWORD")
    lab.mp.setenv("DOMUM_SECRETS_FILE", str(tmp_path / "no-such-secrets.sops.yaml"))
    code, message = both(T.snapshot)
    assert code == 2 and "secret 'backup.targets.a.password' is not set" in message
    assert snapshots(lab.repo("a")) == []


def test_state_dir_that_cannot_be_written_fails_the_same_way(lab: Lab) -> None:
    blocker = lab.root / "not-a-dir"
    blocker.write_text("a file where the state directory's parent should be\n")
    lab.data["backup"]["state_dir"] = str(blocker / "state")
    ok_job(lab)
    for task in (T.snapshot, T.verify, T.drill, T.prune):
        code, message = both(task)
        assert code == 2 and "cannot write state there" in message and "not a directory" in message
    assert snapshots(lab.repo("a")) == []


def test_install_timer_into_a_directory_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, message = both(T.install_timer, unit_dir=str(blocker / "system"))
    assert code == 2 and "cannot write systemd units there" in message


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a read-only filesystem")
def test_install_timer_into_a_read_only_filesystem(tmp_path: Path) -> None:
    """What a non-root user meets in /etc/systemd/system, as root: nothing may be written."""
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], check=True)
    try:
        code, message = both(T.install_timer, unit_dir=str(ro / "system"))
    finally:
        subprocess.run(["umount", str(ro)], check=False)
    assert code == 2 and "is not writable" in message


def test_due_dry_run_plans_only_the_jobs_the_real_run_runs(lab: Lab) -> None:
    ok_job(lab)
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"],
            schedule="0 0 1 1 *")  # fmt: skip
    lab.job("conf", kind="config", targets=["a"], schedule="* * * * *")
    assert lab.inv("backup.snapshot", "--due").returncode == 0  # never ran: both due
    data = lab.state()
    data["jobs"]["conf"]["last_success_started"] -= 7200  # conf missed runs; pis (yearly) not
    (lab.state_dir / "state.json").write_text(json.dumps(data))
    before = {n: e["last_run"]["started"] for n, e in lab.state()["jobs"].items()}
    dry = lab.inv("backup.snapshot", "--due", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = {s["name"] for s in json.loads(dry.stdout) if s["kind"] == "job"}
    assert lab.inv("backup.snapshot", "--due").returncode == 0
    ran = {n for n, e in lab.state()["jobs"].items() if e["last_run"]["started"] != before[n]}
    assert planned == ran == {"conf"}


def test_snapshot_json_reports_each_job(lab: Lab) -> None:
    ok_job(lab)
    run = lab.inv("backup.snapshot", "--json")
    assert run.returncode == 0, run.stderr
    [res] = json.loads(run.stdout)
    assert res["job"] == "pis" and res["status"] == "ok" and res["snapshots"]["a"]
