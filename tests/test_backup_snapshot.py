"""backup.snapshot end to end with real parts: sshd hosts, rsync, restic; cron behaviour."""

from __future__ import annotations

import fcntl
import filecmp
import os
import time
from pathlib import Path

import pytest

from tests.backup_lab import Lab, restic, snapshots

pytestmark = pytest.mark.integration


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(same_tree(a / d, b / d) for d in cmp.common_dirs)


def files_job(lab: Lab, **extra: object) -> None:
    lab.job("pis", kind="files", hosts=[93, 94], paths=[str(lab.src)], targets=["a"], **extra)


def test_files_job_cron_run_is_quiet_and_restores_byte_identical(lab: Lab, tmp_path: Path) -> None:
    files_job(lab)
    run = lab.inv("backup.snapshot")
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    [snap] = snapshots(lab.repo("a"), "pis")
    assert set(snap["tags"]) == {"domum", "job=pis", "complete"}  # marked after exit 0 only
    assert snap["original"] != snap["id"]  # `restic tag` rewrote it: state names the new id
    assert snap["paths"] == [str(lab.state_dir / "staging" / "pis")]
    st = lab.state()["jobs"]["pis"]
    assert st["last_run"]["status"] == "ok" and st["last_success"] >= st["last_run"]["started"]
    assert st["last_run"]["snapshots"] == {"a": snap["short_id"]}
    assert 'domum_backup_last_run_success{job="pis"} 1' in lab.metrics.read_text()
    [line] = lab.log.read_text().splitlines()
    assert "job=pis status=ok" in line and f"a:{snap['short_id']}" in line
    # the snapshot count is retention's (issue 16 #10: backup.prune, on its own timer)
    assert lab.inv("backup.prune", "--yes").returncode == 0
    assert 'domum_backup_snapshots{job="pis",target="a"} 1' in lab.metrics.read_text()

    out = tmp_path / "restored"
    res = lab.inv("backup.restore", "--job", "pis", "--to", str(out))
    assert res.returncode == 0, res.stderr
    assert "every one matches MANIFEST.sha256" in res.stdout
    for label in ("domum-dns", "domum-zigbee"):
        assert same_tree(out / label / str(lab.src).lstrip("/"), lab.src)
    # not empty now: refused without --force (exit 4)
    again = lab.inv("backup.restore", "--job", "pis", "--to", str(out))
    assert again.returncode == 4 and "not empty" in again.stderr


def test_incremental_runs_and_retention(lab: Lab) -> None:
    # keep_last only: restic >= 0.17 also keeps the oldest snapshot while a bucket rule such as
    # the default keep_daily 7 is not filled yet ("oldest daily snapshot")
    only_last = {"keep_last": 3, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}
    files_job(lab, retention=only_last)
    for i in range(4):
        (lab.src / "d0" / "f0.txt").write_text(f"change {i}\n")
        assert lab.inv("backup.snapshot", "--job", "pis").returncode == 0
    # issue 16 #10: a backup never forgets; retention is backup.prune's (daily timer)
    assert len(snapshots(lab.repo("a"), "pis")) == 4
    assert lab.inv("backup.prune", "--yes").returncode == 0
    snaps = snapshots(lab.repo("a"), "pis")
    assert len(snaps) == 3  # keep_last 3, applied by restic forget
    assert lab.state()["jobs"]["pis"]["snapshots"] == {"a": 3}
    assert restic(lab.repo("a"), "check").returncode == 0


def test_uninitialised_target_is_refused_until_init(lab: Lab) -> None:
    lab.add_repo("b", initialised=False)
    files_job(lab)
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a", "b"])
    run = lab.inv("backup.snapshot")
    assert run.returncode == 4  # README: 4 refused (target not initialised)
    assert "not a restic repository yet: run `inv backup.init`" in run.stderr
    assert snapshots(lab.repo("a"), "pis") != []  # target a still got its snapshot
    dry = lab.inv("backup.init", "--dry-run", "--json")
    assert dry.returncode == 0 and '"init"' in dry.stdout and PASSWORD_NOT_IN(dry.stdout)
    assert lab.inv("backup.init").returncode == 0
    assert (lab.repo("b") / "config").exists()
    assert lab.inv("backup.init").returncode == 0  # idempotent
    assert lab.inv("backup.snapshot").returncode == 0


def PASSWORD_NOT_IN(text: str) -> bool:
    from tests.backup_lab import PASSWORD

    return PASSWORD not in text


def test_host_down_fails_that_job_only(lab: Lab) -> None:
    files_job(lab)
    lab.job("conf", kind="config", targets=["a"])
    with lab.fleet.down(94):
        run = lab.inv("backup.snapshot")
    assert run.returncode == 1
    assert run.stdout == ""
    [line, summary] = run.stderr.strip().splitlines()
    assert line.startswith("domum: backup job pis FAILED:") and "domum-zigbee" in line
    assert "1 failure(s)" in summary
    metrics = lab.metrics.read_text()
    assert 'domum_backup_last_run_success{job="pis"} 0' in metrics
    assert 'domum_backup_last_success_timestamp_seconds{job="pis"} 0' in metrics
    assert 'domum_backup_last_run_success{job="conf"} 1' in metrics
    assert snapshots(lab.repo("a"), "pis") == []  # a job with a host missing is not snapshotted
    assert len(snapshots(lab.repo("a"), "conf")) == 1


def test_second_run_exits_5_at_once(lab: Lab) -> None:
    files_job(lab)
    lab.state_dir.mkdir(parents=True)
    with (lab.state_dir / "backup.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        t0 = time.monotonic()
        run = lab.inv("backup.snapshot")
        assert time.monotonic() - t0 < 10
    assert run.returncode == 5 and "another backup run holds" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_two_real_runs_overlap_one_is_refused(lab: Lab) -> None:
    files_job(lab)
    slow = lab.fleet.host(93).dir / "bin" / "rsync"
    slow.write_text('#!/bin/sh\nsleep 3\nexec /usr/bin/rsync "$@"\n')
    slow.chmod(0o755)
    try:
        first = lab.spawn("backup.snapshot")
        time.sleep(1.0)
        second = lab.inv("backup.snapshot")
        assert second.returncode == 5
        assert first.wait(60) == 0
    finally:
        slow.unlink()


def test_due_runs_only_jobs_whose_schedule_came(lab: Lab) -> None:
    files_job(lab, schedule="0 0 1 1 *")  # once a year
    lab.job("conf", kind="config", targets=["a"], schedule="* * * * *")
    assert lab.inv("backup.snapshot", "--due").returncode == 0  # never ran: both due
    first = lab.state()["jobs"]
    assert set(first) == {"pis", "conf"}
    # a machine that was off for two hours: conf (every minute) missed runs, pis (yearly) did not
    import json

    data = lab.state()
    for name in ("pis", "conf"):
        data["jobs"][name]["last_success_started"] -= 7200
    (lab.state_dir / "state.json").write_text(json.dumps(data))
    assert lab.inv("backup.snapshot", "--due").returncode == 0
    second = lab.state()["jobs"]
    assert second["pis"]["last_run"] == first["pis"]["last_run"]
    assert second["conf"]["last_run"]["started"] > first["conf"]["last_run"]["started"]


def test_terminal_shows_progress(lab: Lab) -> None:
    files_job(lab)
    import pty
    import subprocess

    from tests.backup_lab import INV

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [INV, "backup.snapshot"], stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(60) == 0
    text = out.decode()
    assert "pis: running (files" in text and "job=pis status=ok" in text


def test_list_shows_newest_and_last_run_and_no_secret_leaks(lab: Lab) -> None:
    from tests.backup_lab import PASSWORD

    files_job(lab)
    lab.job("conf", kind="config", targets=["a"], enabled=False)
    assert lab.inv("backup.snapshot").returncode == 0  # conf is disabled: not run
    table = lab.inv("backup.list")
    assert table.returncode == 0
    assert "pis" in table.stdout and "conf (disabled)" in table.stdout and "never" in table.stdout
    rows = {r["job"]: r for r in __import__("json").loads(lab.inv("backup.list", "--json").stdout)}
    assert rows["pis"]["last_run"]["status"] == "ok" and rows["pis"]["newest"]["age_s"] >= 0
    assert rows["pis"]["newest"]["size"] > 0 and rows["conf"]["snapshots"] == []
    for text in (
        lab.log.read_text(),
        lab.metrics.read_text(),
        (lab.state_dir / "state.json").read_text(),
    ):
        assert PASSWORD not in text


def test_sudo_runs_the_remote_rsync_through_sudo(lab: Lab, tmp_path: Path) -> None:
    host = lab.fleet.host(93)
    fake = host.dir / "bin" / "sudo"  # the host's own sudo: logs, then runs the command
    fake.write_text(
        '#!/bin/sh\n[ "$1" = -n ] && shift\necho "$@" >> "$DOMUM_FAKE_ROOT/sudo.log"\nexec "$@"\n'
    )
    fake.chmod(0o755)
    try:
        lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"], sudo=True)
        assert lab.inv("backup.snapshot").returncode == 0
    finally:
        fake.unlink()
    assert host.read_fake("sudo.log").startswith("rsync --server --sender")
    out = tmp_path / "back"
    assert lab.inv("backup.restore", "--job", "pis", "--to", str(out)).returncode == 0
    assert same_tree(out / "domum-dns" / str(lab.src).lstrip("/"), lab.src)
