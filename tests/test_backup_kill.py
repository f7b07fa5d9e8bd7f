"""kill -9 in each phase of backup.snapshot (pull, stage, backup; it runs no forget since
issue 16 #10), then a rerun: nothing
partial is reported, older snapshots stay intact, the repository checks clean. (A file of its own
so that pytest-xdist can run it beside the other fault tests.)"""

from __future__ import annotations

import os
import time

import pytest

from tests.backup_lab import Lab, kill_tree, snapshots, wait_for, wait_gone
from tests.test_backup_faults import assert_nothing_partial, ok_job, wrapper_dir

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("phase", ["pull", "stage", "backup"])
def test_kill_9_in_each_phase_then_rerun(lab: Lab, phase: str) -> None:
    from tests.backup_lab import make_tree

    ok_job(lab)
    assert lab.inv("backup.snapshot").returncode == 0
    before = [s["short_id"] for s in snapshots(lab.repo("a"), "pis")]
    done_before = lab.state()["jobs"]["pis"]["last_run"]
    marker = lab.root / "marker"
    make_tree(lab.src / "big", files=2000, size=2000)  # enough work for each phase to last a moment
    (lab.src / "big" / "blob.bin").write_bytes(os.urandom(24 << 20))
    slow_rsync = lab.fleet.host(93).dir / "bin" / "rsync"
    if phase == "pull":
        slow_rsync.write_text(f'#!/bin/sh\ntouch {marker}\nsleep 1\nexec /usr/bin/rsync "$@"\n')
        slow_rsync.chmod(0o755)
    elif phase == "backup":
        wrapper_dir(lab, f'case " $* " in *" {phase} "*) touch {marker} ;; esac')
    phase_file = lab.state_dir / "run" / "pis.phase"
    try:
        proc = lab.spawn("backup.snapshot")
        if phase == "stage":
            wait_for(
                lambda: phase_file.exists() and phase_file.read_text().strip() == "stage",
                what="stage",
            )
        else:
            wait_for(marker.exists, what=f"{phase} phase")
            time.sleep(0.3 if phase != "pull" else 1.3)  # into the middle of it
        pids = kill_tree(proc.pid)
        proc.wait(10)
        wait_gone(pids)
    finally:
        slow_rsync.unlink(missing_ok=True)
        (lab.root / "wrap" / "restic").unlink(missing_ok=True)
    # nothing reported complete: the state still shows the run before
    assert lab.state()["jobs"]["pis"]["last_run"] == done_before
    assert_nothing_partial(lab, before, raw_check=False)
    rerun = lab.inv("backup.snapshot")
    assert rerun.returncode == 0, rerun.stderr
    assert lab.state()["jobs"]["pis"]["last_run"]["status"] == "ok"
    assert_nothing_partial(lab, before, raw_check=True)
