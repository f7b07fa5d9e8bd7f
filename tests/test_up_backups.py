"""`up --only backups` over the real planners (backup.init, backup.install-timer,
backup.snapshot) against real restic repositories on disk (tests/backup_lab.py): the dry-run's
plans are the ones the run executes, and a second run makes zero writes (no restic run, no
unit written, no new snapshot)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from invoke import Context

from domum_tasks.up import state
from domum_tasks.up.tasks import up
from tests.backup_lab import Lab, restic, snapshots
from tests.fixtures.parity import recording

pytestmark = pytest.mark.integration


def _up(**kw: Any) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        up(Context(), only="backups", **kw)
    return out.getvalue()


@pytest.mark.parity("up")
def test_backups_phase_runs_its_dry_run_plans_then_changes_nothing(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    fresh = lab.add_repo("b", initialised=False)
    lab.job("conf", kind="config", targets=["a", "b"])
    units = tmp_path / "units"
    units.mkdir()

    doc = json.loads(_up(dry_run=True, json=True, unit_dir=str(units)))
    [phase] = doc["phases"]
    shown = [plan for part in phase["parts"] for plan in part["plans"]]
    kinds = [[s["kind"] for s in plan] for plan in shown]
    assert kinds[0] == ["cmd"]  # restic init of b only: a is a repository already
    assert "init" in shown[0][0]["argv"] and str(fresh) in " ".join(shown[0][0]["argv"])
    assert set(kinds[1]) == {"write"}  # the timer units
    assert len(shown) == 3  # and one snapshot plan for the config job
    assert not fresh.exists() and not any(units.iterdir())

    with recording(monkeypatch) as executed:
        _up(unit_dir=str(units))
    assert executed == shown
    assert len(snapshots(lab.repo("a"), "conf")) == 1
    assert len(snapshots(fresh, "conf")) == 1
    assert list(state.load()["phases"]) == ["backups"]

    before = {p.name: p.stat().st_mtime_ns for p in units.iterdir()}
    with recording(monkeypatch) as again:
        text = _up(unit_dir=str(units))
    assert again == []  # nothing executed: no restic, no write
    assert "nothing to change: 0 writes" in text
    assert "every restic target is a repository" in text
    assert {p.name: p.stat().st_mtime_ns for p in units.iterdir()} == before
    assert len(snapshots(lab.repo("a"), "conf")) == 1
    assert restic(fresh, "--no-lock", "check").returncode == 0
