"""Issue 16, part "nas": restic runs on the NAS over SSH (the pinned binary copied once,
checksum-verified, the password on stdin only), `restic copy` of complete snapshots to the
off-site repository, and `backup.drill` rotating over every target. Real restic, real sshd."""

from __future__ import annotations

import pytest

from domum_tasks.backup.recovery import rotation
from tests.backup_lab import Lab

pytestmark = pytest.mark.integration


# --- drill rotates over every target ------------------------------------------------------


def test_rotation_picks_the_target_drilled_longest_ago() -> None:
    assert rotation.pick(["nas", "gcs"], {}) == "nas"  # never drilled: inventory order
    entry: dict = {}
    rotation.record(entry, "nas", 100.0, True, "ok")
    assert rotation.pick(["nas", "gcs"], entry) == "gcs"
    rotation.record(entry, "gcs", 200.0, False, "unreachable")  # a failed turn is a turn
    assert rotation.pick(["nas", "gcs"], entry) == "nas"
    assert rotation.pick(["nas", "gcs", "usb"], entry) == "usb"  # a new target goes next


def test_drill_restores_every_target_in_turn(lab: Lab) -> None:
    lab.add_repo("b")
    lab.job("conf", kind="config", targets=["a", "b"])
    assert lab.inv("backup.snapshot").returncode == 0
    drilled = []
    for _ in range(3):
        run = lab.inv("backup.drill")
        assert run.returncode == 0, run.stderr
        entry = lab.state()["drill"]["conf"]
        last = max(entry["targets"], key=lambda t: entry["targets"][t]["last_run"])
        assert entry["targets"][last]["ok"] is True
        assert f"from {last}:" in entry["message"]
        drilled.append(last)
    assert drilled == ["a", "b", "a"]  # the second target (the off-site copy) is restored too


def test_drill_of_an_unreachable_target_still_moves_the_rotation_on(lab: Lab) -> None:
    lab.add_repo("b", initialised=False)  # b cannot answer: no repository there
    lab.job("conf", kind="config", targets=["b", "a"])
    lab.inv("backup.snapshot")  # b fails, a gets its snapshot
    first = lab.inv("backup.drill", "--job", "conf")
    assert first.returncode == 1 and "drill conf FAILED" in first.stderr
    second = lab.inv("backup.drill", "--job", "conf")
    assert second.returncode == 0, second.stderr
    targets = lab.state()["drill"]["conf"]["targets"]
    assert targets["b"]["ok"] is False and targets["a"]["ok"] is True
