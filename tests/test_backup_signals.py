"""issue 16 #9: SIGTERM and SIGHUP (and Ctrl-C's SIGINT) end a `backup.snapshot` run in each
phase the way Ctrl-C does: the job's whole process group is ended, SIGINT first so restic
removes its own repository lock (restic's cmd/restic/cleanup.go: "signal ... received, cleaning
up"), the job is recorded "terminated" in state, log and metrics, the flock is free and the run
exits 128 + the signal (143 for SIGTERM). Real restic, rsync and sshd; nothing is faked but a
slow remote rsync or a bandwidth-limited restic (restic's own --limit-upload/--limit-download),
which hold a phase open long enough to send the signal in the middle of it."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from domum_tasks.run.jobs import INTERRUPT_GRACE_S
from tests.backup_lab import Lab, _session_members, kill_tree, restic, snapshots, wait_for
from tests.test_backup_faults import ok_job, wrapper_dir

pytestmark = pytest.mark.integration

CASES = [
    (signal.SIGTERM, "pull"),
    (signal.SIGHUP, "pull"),
    (signal.SIGTERM, "backup"),
    (signal.SIGHUP, "backup"),
    (signal.SIGINT, "backup"),  # Ctrl-C (to the inv process only, as a terminal's job control
    # would reach it: the job runs in a process group of its own) behaves the same, exit 130
]


def _locks(repo: Path) -> list[str]:
    """restic's lock files (a `-tmp-` name is one still being written by the local backend)."""
    return sorted(p.name for p in (repo / "locks").iterdir() if "-tmp-" not in p.name)


def _flock_free(state_dir: Path) -> bool:
    fd = os.open(state_dir / "backup.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _hold(lab: Lab, phase: str, marker: Path) -> Path | None:
    """Make `phase` last; returns a file to remove afterwards."""
    real = shutil.which("restic")
    if phase == "pull":  # the remote rsync (host 93's bin/ comes first on its PATH) waits
        slow = lab.fleet.host(93).dir / "bin" / "rsync"
        slow.write_text(f'#!/bin/sh\ntouch {marker}\nsleep 20\nexec /usr/bin/rsync "$@"\n')
        slow.chmod(0o755)
        return slow
    # backup: 48 MiB of random data at 4 MiB/s: restic uploads, its lock held (retention is
    # backup.prune's, on its own timer: no such phase in a snapshot run)
    (lab.src / "blob.bin").write_bytes(os.urandom(48 << 20))
    wrapper_dir(
        lab,
        f'case " $* " in *" backup "*) touch {marker}; exec {real} --limit-upload 4096 "$@"'
        " ;; esac",
    )
    return lab.root / "wrap" / "restic"


@pytest.mark.parametrize(("sig", "phase"), CASES, ids=[f"{s.name}-{p}" for s, p in CASES])
def test_signal_ends_the_run_in_each_phase(lab: Lab, sig: signal.Signals, phase: str) -> None:
    ok_job(lab)
    before = [s["short_id"] for s in snapshots(lab.repo("a"), "pis")]
    marker = lab.root / "marker"
    held = _hold(lab, phase, marker)
    try:
        proc = lab.spawn("backup.snapshot")
        wait_for(marker.exists, what=f"{phase} phase")
        if phase == "backup":  # restic has taken its repository lock: it must remove it itself
            wait_for(lambda: _locks(lab.repo("a")), what="restic's lock")
            held_lock = _locks(lab.repo("a"))
            # Past restic's own locking: for ~200 ms after writing its lock restic re-checks
            # for others, and a signal then leaves the lock behind (restic 0.18,
            # internal/repository/lock.go newLock: the unlock after a failed re-check uses
            # the cancelled context). That window is restic's; the test signals after it.
            time.sleep(1.5)
            assert _locks(lab.repo("a")) == held_lock  # the same restic still holds it
        else:
            time.sleep(0.3)
        t0 = time.monotonic()
        os.kill(proc.pid, sig)  # to the inv process alone, as systemd (KillMode=mixed) does
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
        left = _session_members(proc.pid)  # before the clean-up below could end them
    finally:
        if held is not None:
            held.unlink(missing_ok=True)
        kill_tree(proc.pid)  # only does something when the run left processes behind
    assert proc.returncode == 128 + sig, err
    assert f"backup job pis TERMINATED by {sig.name}" in err, err
    # nothing of the run is left: every process of its session is gone (no orphaned rsync,
    # ssh or restic), and before SIGINT's grace ran out: restic ended on SIGINT
    assert left == []
    assert took < INTERRUPT_GRACE_S, took
    assert _flock_free(lab.state_dir)
    left_locks = _locks(lab.repo("a"))
    if left_locks:
        # restic's own race (see above: a signal while it re-checks its fresh lock, which it
        # loses more often under load) can leave the interrupted restic's lock. Domum's part
        # holds either way: it names the lock and never removes it; a person runs
        # `restic unlock`, as after a kill -9.
        verify = lab.inv("backup.verify", "--subset", "1")
        assert verify.returncode == 5 and "`restic unlock` by hand" in verify.stderr, verify.stderr
        assert _locks(lab.repo("a")) == left_locks
        assert restic(lab.repo("a"), "unlock").returncode == 0  # the person's step
    last = lab.state()["jobs"]["pis"]["last_run"]
    assert last["status"] == "terminated" and last["phase"] == phase
    assert last["message"] == f"terminated by {sig.name} during {last['phase']}"
    assert "job=pis status=terminated" in lab.log.read_text().splitlines()[-1]
    metrics = lab.metrics.read_text().splitlines()
    assert "domum_backup_running 0" in metrics
    assert 'domum_backup_last_run_success{job="pis"} 0' in metrics
    # the repository is whole: a plain check passes (no lock to remove), older snapshots stay
    assert set(before) <= {s["short_id"] for s in snapshots(lab.repo("a"), "pis")}
    check = restic(lab.repo("a"), "check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    (lab.src / "blob.bin").unlink(missing_ok=True)
    rerun = lab.inv("backup.snapshot")
    assert rerun.returncode == 0, rerun.stderr
    assert lab.state()["jobs"]["pis"]["last_run"]["status"] == "ok"
