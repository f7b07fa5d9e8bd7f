"""issue 16 #6: `backup.restore --force` merges into --to; it never deletes what the snapshot
does not hold. Real restic, rsync and sshd."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backup_lab import Lab
from tests.test_backup_faults import ok_job

pytestmark = pytest.mark.integration


def _restored_then_edited(lab: Lab, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A restore, then: a file the backup holds changed, unrelated files at the top level and
    inside a directory the backup also has, the manifest gone. (to, changed file, its dir)"""
    ok_job(lab)
    assert lab.inv("backup.snapshot").returncode == 0
    to = tmp_path / "to"
    first = lab.inv("backup.restore", "--job", "pis", "--to", str(to))
    assert first.returncode == 0, first.stderr
    [held] = list(to.rglob("f0.txt"))
    held.write_text("changed since the backup\n")
    (to / "notes.txt").write_text("mine, top level\n")
    (held.parent / "local-only.txt").write_text("mine, inside a directory the backup has\n")
    (to / "MANIFEST.sha256").unlink()  # restored again, from the snapshot
    return to, held, held.parent


def test_restore_force_beside_unrelated_files_keeps_them(lab: Lab, tmp_path: Path) -> None:
    to, held, deep_dir = _restored_then_edited(lab, tmp_path)
    run = lab.inv("backup.restore", "--job", "pis", "--to", str(to), "--force")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (to / "notes.txt").read_text() == "mine, top level\n"
    assert (deep_dir / "local-only.txt").read_text() == "mine, inside a directory the backup has\n"
    assert held.read_bytes() == next(lab.src.rglob("f0.txt")).read_bytes()
    assert (to / "MANIFEST.sha256").exists() and not (to / ".domum-restore").exists()


def test_restore_dry_run_lists_what_is_written_and_replaced(lab: Lab, tmp_path: Path) -> None:
    to, held, _ = _restored_then_edited(lab, tmp_path)
    dry = lab.inv("backup.restore", "--job", "pis", "--to", str(to), "--force", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    new = next(ln for ln in dry.stdout.splitlines() if "written new" in ln)
    replaced = next(ln for ln in dry.stdout.splitlines() if "REPLACED" in ln)
    assert "1 file(s)" in new and new.endswith(": MANIFEST.sha256")
    assert "21 file(s)" in replaced and "f1.txt" in replaced  # the 20 files + summary.json
    assert "notes.txt" not in dry.stdout and "local-only.txt" not in dry.stdout
    assert held.read_text() == "changed since the backup\n"  # a dry run changes nothing
    assert not (to / "MANIFEST.sha256").exists()


def test_restore_refuses_a_file_where_the_backup_has_a_directory(lab: Lab, tmp_path: Path) -> None:
    ok_job(lab)
    assert lab.inv("backup.snapshot").returncode == 0
    to = tmp_path / "to"
    assert lab.inv("backup.restore", "--job", "pis", "--to", str(to)).returncode == 0
    [d0] = [p for p in to.rglob("d0") if p.is_dir()]
    for f in d0.iterdir():
        f.unlink()
    d0.rmdir()
    d0.write_text("a file where the backup has a directory\n")
    run = lab.inv("backup.restore", "--job", "pis", "--to", str(to), "--force")
    assert run.returncode == 4 and "disagree" in run.stderr, run.stderr
    assert d0.read_text() == "a file where the backup has a directory\n"
