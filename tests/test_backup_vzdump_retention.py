"""vzdump retention (issue 16, smaller defects): Proxmox's prune-backups has no keep-within and
applies its keep rules in sequence (proxmox/pve-storage src/PVE/Storage.pm,
prune_mark_backup_group), restic counts them independently. Domum says so in the plan and
refuses a vzdump policy that would reach PVE empty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from domum_tasks.backup import jobs
from domum_tasks.backup.producers import vzdump_job
from domum_tasks.errors import ConfigError
from domum_tasks.inventory.loader import load

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "domum.yaml"


def job_with(tmp_path: Path, retention: dict[str, Any]) -> tuple[Any, jobs.Job]:
    data = yaml.safe_load(SHIPPED.read_text())
    data["backup"]["jobs"]["pve-vms"]["retention"] = retention
    p = tmp_path / "domum.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    inv = load(p)
    return inv, jobs.select(inv, "pve-vms")[0]


def test_keep_within_is_said_not_dropped(tmp_path: Path) -> None:
    inv, job = job_with(tmp_path, {"keep_daily": 7, "keep_weekly": 0, "keep_monthly": 0,
                                   "keep_within": "14d"})  # fmt: skip
    assert vzdump_job.prune_policy(inv, job) == {"keep_daily": 7}
    notes = vzdump_job.retention_notes(inv, job)
    assert any("keep_within 14d is NOT applied" in n and "keep_daily" in n for n in notes)
    assert any("in sequence" in n and "independently" in n for n in notes)


def test_keep_within_alone_is_refused_for_vzdump(tmp_path: Path) -> None:
    inv, job = job_with(tmp_path, {"keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0,
                                   "keep_within": "14d"})  # fmt: skip
    with pytest.raises(ConfigError, match=r"pve-vms\.retention: keep_within is the only"):
        vzdump_job.prune_policy(inv, job)


def test_the_snapshot_plan_carries_the_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domum_tasks.backup.snapshot.plan import plan_snapshot

    inv, job = job_with(tmp_path, {"keep_last": 2, "keep_within": "3d"})
    monkeypatch.setattr(vzdump_job, "steps", lambda inv, job, pve: ())  # no PVE here
    plan = plan_snapshot(inv, [job], {}, tmp_path / "state")
    assert any("keep_within 3d is NOT applied" in n for n in plan.notes), plan.notes
