"""issue 16 #9 beyond backup.snapshot: SIGTERM and SIGHUP end `backup.prune`, `backup.verify`,
`backup.drill` and `backup.restore` the way Ctrl-C does. restic runs in a process group of its
own that gets SIGINT first, so restic removes its own repository lock (restic's
cmd/restic/cleanup.go); the interrupted item is recorded "terminated" in the state, the
metrics are rewritten, and the task exits 128 + the signal. Real restic: only its bandwidth is
limited (its own --limit-download/--limit-upload) so that it is still working, lock held, when
the signal comes."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.backup_lab import Lab, _session_members, kill_tree, restic, snapshots, wait_for
from tests.test_backup_faults import ok_job, wrapper_dir

pytestmark = pytest.mark.integration

BLOB_MB = 32


def _locks(lab: Lab) -> list[str]:
    """`restic list locks`: what a next client would find (the lab repository)."""
    out = restic(lab.repo("a"), "--no-lock", "list", "locks").stdout
    return sorted(out.split())


def _snap(lab: Lab, when: str) -> None:
    restic(
        lab.repo("a"),
        *("backup", "--quiet", "--host", "domum", "--time", when),
        *("--tag", "domum", "--tag", "job=pis", "--tag", "complete"),
        str(lab.src),
    )


def _two_snapshots(lab: Lab) -> None:
    """Two complete snapshots; the older holds 32 MiB the newer does not: forgetting it makes
    restic's prune repack (read and write) the packs they share."""
    (lab.src / "a.bin").write_bytes(os.urandom(BLOB_MB << 20))
    (lab.src / "b.bin").write_bytes(os.urandom(BLOB_MB << 20))
    _snap(lab, "2026-11-01 10:00:00")
    (lab.src / "a.bin").unlink()
    _snap(lab, "2026-11-02 10:00:00")


def _slow(lab: Lab, marker: Path, word: str) -> None:
    """restic at 2 MiB/s each way when its argv has `word` (touching `marker` first)."""
    real = shutil.which("restic")
    wrapper_dir(
        lab,
        f'case " $* " in *" {word} "*) touch {marker}; '
        f'exec {real} --limit-download 2048 --limit-upload 2048 "$@" ;; esac',
    )


CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("backup.verify", ("--subset", "1"), "check"),
    ("backup.prune", ("--yes",), "--prune"),
    ("backup.prune", ("--yes", "--reclaim"), "--max-unused"),
    ("backup.drill", ("--job", "pis"), "restore"),
    ("backup.restore", ("--job", "pis"), "restore"),
]
SIGNALS = [signal.SIGTERM, signal.SIGHUP]


def _params() -> list[Any]:
    out = []
    for task, args, word in CASES:
        for sig in SIGNALS:
            name = f"{task}{'-reclaim' if '--reclaim' in args else ''}-{sig.name}"
            out.append(pytest.param(task, args, word, sig, id=name))
    return out


@pytest.mark.parametrize(("task", "args", "word", "sig"), _params())
def test_signal_ends_the_task_and_restic_removes_its_lock(
    lab: Lab, task: str, args: tuple[str, ...], word: str, sig: signal.Signals
) -> None:
    ok_job(lab)
    lab.job(
        "pis",
        kind="files",
        hosts=[93],
        paths=[str(lab.src)],
        targets=["a"],
        retention={"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0},
    )
    _two_snapshots(lab)
    if word == "--max-unused":  # nothing to forget: reclaim repacks what the forget left
        restic(lab.repo("a"), "forget", snapshots(lab.repo("a"), "pis")[0]["id"])
    to = lab.root / "restored"
    extra = ("--to", str(to)) if task == "backup.restore" else ()
    marker = lab.root / "marker"
    _slow(lab, marker, word)
    proc = lab.spawn(task, *args, *extra)
    try:
        wait_for(marker.exists, timeout=60, what=f"restic {word}")
        wait_for(lambda: _locks(lab), timeout=30, what="restic's lock")
        held = _locks(lab)
        # past restic's own re-check of a fresh lock (test_backup_signals.py says why)
        time.sleep(1.5)
        assert _locks(lab) == held, "restic ended before the signal: the hold is too short"
        os.kill(proc.pid, sig)  # to inv alone, as systemd's stop (KillMode=mixed) does
        _, err = proc.communicate(timeout=60)
        left = _session_members(proc.pid)
    finally:
        kill_tree(proc.pid)  # only acts when the run left processes behind
    assert proc.returncode == 128 + sig, err
    assert left == [], "restic or the job's fork outlived the task"
    assert _locks(lab) == [], "restic's lock was left: it did not get SIGINT first"
    assert f"TERMINATED by {sig.name}" in err or task == "backup.restore", err
    text = f"terminated by {sig.name}"
    if task == "backup.verify":
        assert lab.state()["verify"]["a"]["last_result"] == text
    elif task == "backup.prune":
        section, name = ("reclaim", "a") if "--reclaim" in args else ("retention", "pis")
        entry = lab.state()[section][name]
        assert entry["status"] == "terminated" and entry["message"] == text
        if section == "retention":
            assert 'domum_backup_retention_last_run_success{job="pis"} 0' in (
                lab.metrics.read_text().splitlines()
            )
    elif task == "backup.drill":
        entry = lab.state()["drill"]["pis"]
        assert entry["ok"] is False and entry["message"] == text
        assert not (lab.state_dir / "drill" / "pis").exists()
    else:
        assert not (to / ".domum-restore").exists()
    if task != "backup.restore":
        assert lab.metrics.exists()
    # the repository is whole and the next run works
    check = restic(lab.repo("a"), "check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
