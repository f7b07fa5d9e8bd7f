"""`backup.key-rotate` with real restic: after rotation only the new password opens the
repository; a failure at the verify step leaves the old key in place."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from domum_tasks.backup import tasks as T
from tests.backup_lab import PASSWORD, Lab

pytestmark = pytest.mark.integration

NEW = "a brand new passphrase for the repo"


def opens(lab: Lab, password: str) -> bool:
    proc = subprocess.run(
        ["restic", "--no-lock", "snapshots", "--json"],
        env={**os.environ, "RESTIC_REPOSITORY": str(lab.repo("a")), "RESTIC_PASSWORD": password},
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0


def key_ids(lab: Lab, password: str) -> list[str]:
    proc = subprocess.run(
        ["restic", "--no-lock", "key", "list", "--json"],
        env={**os.environ, "RESTIC_REPOSITORY": str(lab.repo("a")), "RESTIC_PASSWORD": password},
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(k["id"] for k in json.loads(proc.stdout))


@pytest.mark.parity("backup.key-rotate")
def test_key_rotate_parity_and_effect(lab: Lab, plan_parity: Any) -> None:
    lab.mp.setenv("DOMUM_BACKUP_TARGETS_A_NEW_PASSWORD", NEW)
    [old] = key_ids(lab, PASSWORD)
    [plan] = plan_parity(T.key_rotate, target="a", real_options={"yes": True})
    remove = plan[-1]
    assert remove["destructive"] and remove["argv"][-3:] == ["key", "remove", old]
    assert NEW not in json.dumps(plan) and PASSWORD not in json.dumps(plan)
    assert opens(lab, NEW) and not opens(lab, PASSWORD)
    assert old not in key_ids(lab, NEW) and len(key_ids(lab, NEW)) == 1


def test_without_yes_nothing_changes_and_an_unchanged_password_is_bad_input(lab: Lab) -> None:
    lab.mp.setenv("DOMUM_BACKUP_TARGETS_A_NEW_PASSWORD", PASSWORD)
    res = lab.inv("backup.key-rotate", "--target", "a")
    assert res.returncode == 2 and "backup.targets.a.new_password" in res.stdout + res.stderr
    lab.mp.setenv("DOMUM_BACKUP_TARGETS_A_NEW_PASSWORD", NEW)
    res = lab.inv("backup.key-rotate", "--target", "a")
    assert res.returncode == 4, res.stdout + res.stderr
    assert opens(lab, PASSWORD) and not opens(lab, NEW)


def test_a_failing_verify_leaves_the_old_key(lab: Lab) -> None:
    """restic fails every `snapshots` opened with the new password (a stand-in for a key that
    does not work): the old key must survive, the run fails."""
    lab.mp.setenv("DOMUM_BACKUP_TARGETS_A_NEW_PASSWORD", NEW)
    d = lab.root / "wrap"
    d.mkdir()
    real = shutil.which("restic")
    (d / "restic").write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" snapshots "*) [ "$RESTIC_PASSWORD" = "{NEW}" ] && '
        "{ echo 'Fatal: simulated' >&2; exit 1; } ;; esac\n"
        f'exec {real} "$@"\n'
    )
    (d / "restic").chmod(0o755)
    lab.mp.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    [old] = key_ids(lab, PASSWORD)
    res = lab.inv("backup.key-rotate", "--target", "a", "--yes")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "the old key stays" in res.stdout + res.stderr
    assert old in key_ids(lab, PASSWORD) and opens(lab, PASSWORD)
