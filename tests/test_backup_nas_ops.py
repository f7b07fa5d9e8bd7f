"""Issue 16, "backups run where the data is", finished: backup.verify, backup.prune and
backup.drill of the NAS's own repository run restic ON the NAS over SSH (the drill restores
into a temporary directory there), with the lock rules of every restic Domum runs. Real restic,
real sshd on 127.0.0.20 (the lab NAS), the NAS's repository on its own disk."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backup_lab import PASSWORD, Lab, restic, restic_env, snapshots, wait_for
from tests.test_backup_kinds import nas_host  # noqa: F401  (fixture: sshd on 127.0.0.20)
from tests.test_backup_nas import nas  # noqa: F401  (fixture: share, repository, binary)

pytestmark = pytest.mark.integration

ONLY_LAST_1 = {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}


class NasRestics:
    """The argv of every restic process started from the NAS's binary path while a run goes
    (sampled from /proc): what ran on the NAS, and that something was seen at all."""

    def __init__(self, binary: Path) -> None:
        self.exe = str(binary).encode() + b"\0"
        self.seen: list[list[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        pids: set[str] = set()
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid in pids:
                    continue
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if argv.startswith(self.exe):
                    pids.add(pid)
                    self.seen.append([a.decode() for a in argv.split(b"\0") if a])

    def commands(self) -> list[str]:
        """restic's subcommand of each process seen (the first word after its options)."""
        out = []
        for argv in self.seen:
            words = argv[3:]  # restic -r <repo>
            while words and words[0].startswith("--"):
                words = words[2:] if words[0] == "--retry-lock" else words[1:]
            out.append(words[0] if words else "")
        return out

    def __enter__(self) -> NasRestics:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _walk(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for s in steps:
        yield s
        yield from _walk(s.get("steps") or [])
        for lane in s.get("lanes") or []:
            yield from _walk(lane)


def _locks(repo: Path) -> list[str]:
    return restic(repo, "--no-lock", "list", "locks").stdout.split()


def _two_snapshots(lab: Lab) -> None:
    lab.job("unraid", **{**lab.data["backup"]["jobs"]["unraid"], "retention": ONLY_LAST_1})
    for _ in range(2):
        run = lab.inv("backup.snapshot")
        assert run.returncode == 0, run.stderr


def test_verify_and_prune_of_the_nas_repository_run_on_the_nas(
    lab: Lab, nas: dict[str, Path]
) -> None:
    _two_snapshots(lab)
    plan = json.loads(lab.inv("backup.prune", "--dry-run", "--json", "--reclaim").stdout)
    remote = [s["args"]["argv"][-1] for s in _walk(plan) if s.get("action") == "backup.nas-run"]
    assert len(remote) == 2  # shown as they run: the forget, then the reclaim
    assert " forget --prune " in remote[0] and " prune --max-unused " in remote[1]
    assert PASSWORD not in json.dumps(plan)
    with NasRestics(nas["binary"]) as watch:
        verify = lab.inv("backup.verify", "--subset", "1")
        assert verify.returncode == 0, verify.stderr
        prune = lab.inv("backup.prune", "--yes", "--reclaim")
        assert prune.returncode == 0, prune.stderr
    assert watch.commands() == ["check", "forget", "prune"]
    check, forget, reclaim = watch.seen
    assert "--read-data-subset=1/1" in check and check[2] == str(nas["repo"])  # a local path
    assert forget[forget.index("forget") + 1] == "--prune"
    assert "--retry-lock" in forget and "--max-unused" in reclaim
    assert lab.state()["verify"]["nas"]["last_result"] == "ok"
    assert [("complete" in s["tags"]) for s in snapshots(nas["repo"], "unraid")] == [True]
    assert lab.state()["retention"]["unraid"]["status"] == "ok"
    assert _locks(nas["repo"]) == []


def test_a_live_lock_on_the_nas_repository_is_waited_for_and_named(
    lab: Lab, nas: dict[str, Path]
) -> None:
    """Another client on the NAS's repository: prune and verify on the NAS wait
    (--retry-lock), then exit 5 naming it; its lock stays (never an unlock)."""
    _two_snapshots(lab)
    other = subprocess.Popen(
        ["restic", "backup", "--stdin", "--stdin-filename", "laptop.txt", "--host", "laptop"],
        env=restic_env(nas["repo"]),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _locks(nas["repo"]), what="the other client's lock")
        [lock] = _locks(nas["repo"])
        with NasRestics(nas["binary"]) as watch:
            prune = lab.inv("backup.prune", "--yes")
            verify = lab.inv("backup.verify", "--subset", "1")
        assert watch.commands() == ["forget", "check"]
        for run in (prune, verify):
            assert run.returncode == 5, run.stderr
            assert f"PID {other.pid} on" in run.stderr
        assert lab.state()["retention"]["unraid"]["status"] == "locked"
        assert _locks(nas["repo"]) == [lock] and other.poll() is None
    finally:
        assert other.stdin is not None
        other.stdin.close()
        other.wait(60)
    assert len(snapshots(nas["repo"], "unraid")) == 2  # nothing forgotten while it waited
