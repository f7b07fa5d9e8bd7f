"""One files baseline per job (`last_success_files`): the shrink guard and the shrink alert read
the same number. State files written when the guard kept its own copy
(`last_complete_files`) are migrated when read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from domum_tasks.backup.bookkeeping import state
from tests.backup_lab import Lab, snapshots


def _write(d: Path, jobs: dict[str, dict[str, object]]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "state.json").write_text(json.dumps({"version": 1, "jobs": jobs}))


def test_an_old_state_is_migrated_on_read(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "old": {"last_complete_files": 20, "last_success": 1.0},  # the guard's copy only
            "both": {"last_complete_files": 7, "last_success_files": 9},
            "none": {"last_success": 1.0},
        },
    )
    jobs = state.load(tmp_path)["jobs"]
    assert jobs["old"] == {"last_success_files": 20, "last_success": 1.0}
    assert jobs["both"] == {"last_success_files": 9}
    assert jobs["none"] == {"last_success": 1.0}
    state.save(tmp_path, state.load(tmp_path))
    assert "last_complete_files" not in (tmp_path / "state.json").read_text()


def test_an_ok_run_records_one_baseline_and_a_failed_run_keeps_it() -> None:
    data: dict[str, Any] = {"jobs": {}, "sizes": {}}
    ok = {"status": "ok", "started": 1.0, "finished": 2.0, "files": 12}
    state.record_run(data, "j", ok)
    entry = data["jobs"]["j"]
    assert entry["last_success_files"] == 12 and "last_complete_files" not in entry
    state.record_run(data, "j", {"status": "failed", "started": 3.0, "finished": 4.0, "files": 0})
    assert entry["last_success_files"] == 12


@pytest.mark.integration
def test_the_guard_reads_a_migrated_baseline(lab: Lab) -> None:
    """A state written by the previous version (the guard's baseline under its old key only):
    an emptied source is still refused against it, and the file is rewritten with one key."""
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"], min_files=0)
    assert lab.inv("backup.snapshot").returncode == 0
    data = lab.state()
    entry = data["jobs"]["pis"]
    entry["last_complete_files"] = entry.pop("last_success_files")
    (lab.state_dir / "state.json").write_text(json.dumps(data))
    before = snapshots(lab.repo("a"), "pis")
    for p in lab.src.iterdir():
        shutil.rmtree(p)
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "than the last complete run (20), got 0" in run.stderr, run.stderr
    assert snapshots(lab.repo("a"), "pis") == before
    after = lab.state()["jobs"]["pis"]
    assert after["last_success_files"] == 20 and "last_complete_files" not in after
    metrics = lab.metrics.read_text().splitlines()
    assert 'domum_backup_last_success_files{job="pis"} 20' in metrics
