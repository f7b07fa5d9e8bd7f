"""`backup.list` exit codes (issue 16, smaller defects), by README's table: 1 when a target could
not be listed (it used to exit 0 with every target failing), 4 when the only failures are
targets that are not initialised (README: "4 refused (target not initialised ...)")."""

from __future__ import annotations

import json

import pytest

from tests.backup_lab import Lab

pytestmark = pytest.mark.integration


def test_every_target_failing_exits_1(lab: Lab) -> None:
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"])
    assert lab.inv("backup.snapshot").returncode == 0
    ok = lab.inv("backup.list")
    assert ok.returncode == 0 and "pis" in ok.stdout, ok.stderr
    # the target cannot be reached any more (loopback; no such user, no known host key)
    lab.data["backup"]["targets"]["a"]["repository"] = "sftp:nobody@127.0.0.1:/nonexistent"
    lab.data["backup"]["lock_wait"] = "1s"
    lab.save()
    run = lab.inv("backup.list", timeout=180)
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert "pis" in run.stdout and "1 target(s) not listed" in run.stderr
    js = lab.inv("backup.list", "--json", timeout=180)
    assert js.returncode == 1 and json.loads(js.stdout)[0]["error"]


def test_an_uninitialised_target_exits_4(lab: Lab) -> None:
    lab.add_repo("b", initialised=False)
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a", "b"])
    run = lab.inv("backup.list")
    assert run.returncode == 4, (run.returncode, run.stderr)
    assert "not a restic repository yet" in run.stderr and "backup.init" in run.stderr
    assert lab.inv("backup.init").returncode == 0
    assert lab.inv("backup.list").returncode == 0
