"""issue 16 #12 and the log: the metrics file while a long `backup.snapshot` runs (at its start,
after each job, at its end), and backup.log rotated by size at the start of a run. Real rsync,
sshd and restic; each job's pull is held on a FIFO the test opens when it has looked."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from domum_tasks.backup.bookkeeping import logrotate
from tests.backup_lab import Lab, kill_tree, wait_for

pytestmark = pytest.mark.integration


def _series(text: str) -> dict[str, float]:
    """Prometheus text format: `name{labels} value` -> {"name{labels}": value}."""
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"([a-z_]+(?:\{[^}]*\})?) (\S+)", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def _held_pull(lab: Lab, node: int, name: str) -> tuple[Path, Path]:
    """The remote rsync of `node` touches a marker, then waits until the FIFO gets a line."""
    fifo, marker = lab.root / f"{name}.fifo", lab.root / f"{name}.pulling"
    os.mkfifo(fifo)
    rsync = lab.fleet.host(node).dir / "bin" / "rsync"
    rsync.write_text(f'#!/bin/sh\ntouch {marker}\nread x < {fifo}\nexec /usr/bin/rsync "$@"\n')
    rsync.chmod(0o755)
    return fifo, marker


def _release(fifo: Path) -> None:
    with fifo.open("w") as fh:
        fh.write("go\n")


def test_metrics_at_start_after_each_job_and_at_the_end(lab: Lab) -> None:
    # sorted by name, "early" runs before "late"
    lab.job("early", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"])
    lab.job("late", kind="files", hosts=[94], paths=[str(lab.src)], targets=["a"])
    first, first_marker = _held_pull(lab, 93, "early")
    second, second_marker = _held_pull(lab, 94, "late")
    proc = lab.spawn("backup.snapshot")
    try:
        wait_for(first_marker.exists, what="the first job's pull")
        at_start = _series(lab.metrics.read_text())
        assert at_start["domum_backup_running"] == 1
        started = at_start["domum_backup_run_started_timestamp_seconds"]
        # the run must have ended by the jobs' deadlines (2 x 2 h default) plus slack
        assert at_start["domum_backup_run_deadline_timestamp_seconds"] > started + 2 * 7200
        for job in ("early", "late"):
            assert at_start[f'domum_backup_last_run_timestamp_seconds{{job="{job}"}}'] == 0
            # verify and drill series exist before either ever ran: 0 = never, and since when
            assert (
                at_start[f'domum_backup_last_drill_success_timestamp_seconds{{job="{job}"}}'] == 0
            )
            assert (
                at_start[f'domum_backup_drill_tracked_since_timestamp_seconds{{job="{job}"}}']
                == started
            )
        assert at_start['domum_backup_last_verify_success_timestamp_seconds{target="a"}'] == 0
        assert (
            at_start['domum_backup_verify_tracked_since_timestamp_seconds{target="a"}'] == started
        )

        _release(first)
        wait_for(second_marker.exists, what="the second job's pull")
        between = _series(lab.metrics.read_text())
        assert between["domum_backup_running"] == 1
        assert between['domum_backup_last_run_success{job="early"}'] == 1
        assert between['domum_backup_files{job="early"}'] == 20  # make_tree's files
        assert between['domum_backup_last_success_files{job="early"}'] == 20
        assert between['domum_backup_files_max_shrink_percent{job="early"}'] == 50
        assert between['domum_backup_last_run_timestamp_seconds{job="late"}'] == 0

        _release(second)
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:  # on a failure, nothing of the run may outlive the test
        kill_tree(proc.pid)
        proc.wait()
        for node in (93, 94):
            (lab.fleet.host(node).dir / "bin" / "rsync").unlink(missing_ok=True)
    end = _series(lab.metrics.read_text())
    assert end["domum_backup_running"] == 0
    assert end["domum_backup_run_started_timestamp_seconds"] == started  # the last run's
    assert end['domum_backup_last_run_success{job="late"}'] == 1
    # the tracked-since times do not move on later runs
    assert lab.inv("backup.snapshot", "--job", "late").returncode == 0
    again = _series(lab.metrics.read_text())
    assert again['domum_backup_verify_tracked_since_timestamp_seconds{target="a"}'] == started
    assert again["domum_backup_run_started_timestamp_seconds"] > started


def test_log_rotated_by_size_at_the_start_of_a_run(lab: Lab) -> None:
    lab.data["backup"].update(log_max_bytes=2048, log_keep=2)
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"])
    lab.log.parent.mkdir(parents=True, exist_ok=True)
    full = "old line\n" * 300  # 2700 bytes: past 2048
    lab.log.write_text(full)
    logrotate.rotated(lab.log, 1).write_text("one\n")
    logrotate.rotated(lab.log, 2).write_text("two\n")  # the oldest: goes
    assert lab.inv("backup.snapshot").returncode == 0
    lines = lab.log.read_text().splitlines()
    assert len(lines) == 1 and "job=pis status=ok" in lines[0]
    assert logrotate.rotated(lab.log, 1).read_text() == full
    assert logrotate.rotated(lab.log, 2).read_text() == "one\n"
    assert not logrotate.rotated(lab.log, 3).exists()
    # below the size: appended, nothing moves
    assert lab.inv("backup.snapshot").returncode == 0
    assert len(lab.log.read_text().splitlines()) == 2
    assert logrotate.rotated(lab.log, 1).read_text() == full


def test_rotate_rules(tmp_path: Path) -> None:
    log = tmp_path / "backup.log"
    assert not logrotate.rotate(log, 10, 3)  # absent: nothing to do
    log.write_text("x" * 9)
    assert not logrotate.rotate(log, 10, 3) and log.exists()
    log.write_text("x" * 10)
    assert logrotate.rotate(log, 10, 3) and not log.exists()
    assert logrotate.rotated(log, 1).read_text() == "x" * 10
    for n in range(5):  # never more than `keep` old files
        log.write_text(str(n) * 10)
        logrotate.rotate(log, 10, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "backup.log.1",
        "backup.log.2",
        "backup.log.3",
    ]
    assert logrotate.rotated(log, 1).read_text() == "4" * 10
    assert logrotate.rotated(log, 3).read_text() == "2" * 10
    log.write_text("y" * 10)
    assert logrotate.rotate(log, 10, 0) and not log.exists()  # keep 0: dropped
