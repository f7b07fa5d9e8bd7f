"""issue 16 #10 and #11 with real restic: retention on its own schedule, with its own status.

- #10: a failing retention used to fail the backup job, so `snapshot --due` re-ran the whole
  backup every 15 minutes. Now backup.snapshot runs no forget or prune at all; backup.prune
  records a retention failure as its own status and metric, and --due ignores it.
- #11: `forget --prune` prunes only when it removed something, so the packs of a killed or failed
  backup were never reclaimed. `backup.prune --reclaim` (weekly timer) runs `restic prune
  --max-unused`, which (restic >= 0.16) removes unreferenced packs whether or not anything was
  forgotten.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.backup_lab import Lab, restic, restic_env, snapshots, wait_for, wait_gone
from tests.test_backup_faults import wrapper_dir

pytestmark = pytest.mark.integration

ONLY_LAST_1 = {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}
FAIL_FORGET = (
    'case " $* " in *" forget "*) echo "Fatal: injected forget failure" >&2; exit 1;; esac'
)


def metric(lab: Lab, name: str, labels: str) -> float:
    m = re.search(rf"^{name}{{{re.escape(labels)}}} (\S+)$", lab.metrics.read_text(), re.M)
    assert m, f"{name}{{{labels}}} not in {lab.metrics}"
    return float(m.group(1))


def plan_argvs(steps: list[dict[str, Any]]) -> list[list[str]]:
    out: list[list[str]] = []
    for s in steps:
        out.append(s.get("argv") or (s.get("args") or {}).get("argv") or [])
        for v in (s.get("args") or {}).values():  # argv templates a Local step runs
            if isinstance(v, list) and v and v[0] == "restic":
                out.append(v)
        out += plan_argvs(s.get("steps", []))
        out += plan_argvs([x for lane in s.get("lanes", []) for x in lane])
    return out


def test_snapshot_plans_no_forget_and_no_prune(lab: Lab) -> None:
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"])
    dry = lab.inv("backup.snapshot", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    restics = [a for a in plan_argvs(json.loads(dry.stdout)) if a and a[0] == "restic"]
    assert any("backup" in a for a in restics)
    assert not [a for a in restics if "forget" in a or "prune" in a], restics


def test_a_failing_retention_is_its_own_status_and_never_reruns_the_backup(lab: Lab) -> None:
    """restic forget fails (dry run and real alike): the backup is still a success, `--due`
    does not run it again, and backup.prune records the failure as retention's own status."""
    lab.job(
        "pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"], retention=ONLY_LAST_1
    )
    wrapper_dir(lab, FAIL_FORGET)
    run = lab.inv("backup.snapshot")
    assert run.returncode == 0, run.stderr
    assert lab.state()["jobs"]["pis"]["last_run"]["status"] == "ok"
    # the retention series exist from the first metrics write: a staleness alert can fire
    assert metric(lab, "domum_backup_retention_last_success_timestamp_seconds", 'job="pis"') == 0
    for _ in range(2):  # the timer's next ticks: nothing is due, nothing runs again
        due = lab.inv("backup.snapshot", "--due")
        assert due.returncode == 0, due.stderr
        assert len(snapshots(lab.repo("a"), "pis")) == 1
    prune = lab.inv("backup.prune", "--yes")
    assert prune.returncode == 1 and "injected forget failure" in prune.stderr, prune.stderr
    assert "retention of pis on a FAILED" in prune.stderr
    st = lab.state()
    assert (
        st["retention"]["pis"]["status"] == "failed"
        and "last_success" not in st["retention"]["pis"]
    )
    assert st["jobs"]["pis"]["last_run"]["status"] == "ok"  # the backup's record is untouched
    assert metric(lab, "domum_backup_retention_last_run_success", 'job="pis"') == 0
    assert metric(lab, "domum_backup_last_run_success", 'job="pis"') == 1
    due = lab.inv("backup.snapshot", "--due")
    assert due.returncode == 0 and len(snapshots(lab.repo("a"), "pis")) == 1

    (lab.root / "wrap" / "restic").unlink()  # restic works again: the next daily prune passes
    assert lab.inv("backup.snapshot").returncode == 0
    assert len(snapshots(lab.repo("a"), "pis")) == 2  # no forget in the backup itself
    prune = lab.inv("backup.prune", "--yes")
    assert prune.returncode == 0, prune.stderr
    assert len(snapshots(lab.repo("a"), "pis")) == 1
    st = lab.state()
    assert st["retention"]["pis"]["status"] == "ok" and st["jobs"]["pis"]["snapshots"] == {"a": 1}
    assert metric(lab, "domum_backup_retention_last_run_success", 'job="pis"') == 1
    assert metric(lab, "domum_backup_retention_last_success_timestamp_seconds", 'job="pis"') > 0


def packs(repo: Path) -> set[str]:
    """Pack files by name (a 64-hex id). A kill mid-upload also leaves the local backend's
    `<id>-tmp-<n>` files, which restic neither lists nor removes: not counted here."""
    return {p.name for p in (repo / "data").rglob("*") if re.fullmatch("[0-9a-f]{64}", p.name)}


def listed_packs(repo: Path) -> set[str]:
    return set(restic(repo, "--no-lock", "list", "packs").stdout.split())


def raw_size(repo: Path) -> int:
    """restic's raw-data stats count only blobs snapshots reference: orphans do not show."""
    out = restic(repo, "--no-lock", "stats", "--mode", "raw-data", "--json").stdout
    return int(json.loads(out)["total_size"])


def on_disk(repo: Path) -> int:
    return sum(p.stat().st_size for p in (repo / "data").rglob("*") if p.name in packs(repo))


def test_reclaim_removes_the_packs_of_a_killed_backup(lab: Lab) -> None:
    """#11: a backup killed half-way leaves packs no snapshot references. The daily prune has
    nothing to forget, so it leaves them (what `forget --prune` did); the weekly `--reclaim`
    (`restic prune --max-unused`) removes them. Measured on the repository's own files."""
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"])
    assert lab.inv("backup.snapshot").returncode == 0
    repo = lab.repo("a")
    before, size_before, disk_before = packs(repo), raw_size(repo), on_disk(repo)
    big = lab.root / "big"
    big.mkdir()
    for i in range(8):  # random, so nothing deduplicates: every byte is a new pack
        (big / f"blob{i}").write_bytes(os.urandom(4 << 20))
    proc = subprocess.Popen(  # another backup into the repository, slowed so it can be killed
        ["restic", "backup", "--pack-size", "4", "--limit-upload", "2048", str(big)],
        env=restic_env(repo),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(packs(repo) - before) >= 2, timeout=60, what="packs of the backup")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    wait_gone([proc.pid])
    orphans = packs(repo) - before
    assert len(orphans) >= 2 and len(snapshots(repo)) == 1  # packs written, no snapshot saved
    assert listed_packs(repo) == before | orphans and on_disk(repo) > disk_before + (4 << 20)
    # the killed restic's lock stays (Domum never removes a lock); restic's own unlock removes
    # only stale ones (its process is gone), as an operator would after the alert
    assert restic(repo, "unlock").returncode == 0

    daily = lab.inv("backup.prune", "--yes")
    assert daily.returncode == 0, daily.stderr
    assert packs(repo) == before | orphans  # nothing forgotten: forget --prune would not run
    time.sleep(0.01)
    weekly = lab.inv("backup.prune", "--yes", "--reclaim")
    assert weekly.returncode == 0, weekly.stderr
    assert packs(repo) == before == listed_packs(repo) and on_disk(repo) == disk_before
    assert raw_size(repo) == size_before  # the snapshot's own data untouched
    assert restic(repo, "check").returncode == 0
    assert lab.state()["reclaim"]["a"]["status"] == "ok"
    got = metric(lab, "domum_backup_retention_reclaim_last_success_timestamp_seconds", 'target="a"')
    assert got > 0


def test_reclaim_dry_run_shows_restic_prune_with_the_limit(lab: Lab) -> None:
    lab.data["backup"]["prune_max_unused"] = "10%"
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"])
    dry = lab.inv("backup.prune", "--dry-run", "--json", "--reclaim")
    assert dry.returncode == 0, dry.stderr
    [prune] = [a for a in plan_argvs(json.loads(dry.stdout)) if "prune" in a]
    assert prune[-3:] == ["prune", "--max-unused", "10%"]
    lab.data["backup"]["prune_max_unused"] = "lots"
    lab.save()
    bad = lab.inv("backup.prune", "--dry-run", "--reclaim")
    assert bad.returncode == 2 and "prune_max_unused" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parity("backup.prune")
def test_prune_reclaim_parity(lab: Lab, plan_parity: Any) -> None:
    from domum_tasks.backup import tasks as T

    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"])
    assert lab.inv("backup.snapshot").returncode == 0
    [plan] = plan_parity(T.prune, reclaim=True, real_options={"yes": True})
    kinds = [s.get("action") or s["kind"] for s in plan]
    assert kinds == [
        "backup.lock", "backup.retention-record", "job", "backup.reclaim-record",
        "backup.metrics", "backup.unlock",
    ]  # fmt: skip
    [prune] = [x for s in plan if s["kind"] == "job" for x in s["steps"]]
    assert prune["destructive"] and prune["argv"][-3:] == ["prune", "--max-unused", "5%"]
    assert lab.state()["reclaim"]["a"]["status"] == "ok"
