"""Issue 16, "backups run where the data is", finished: backup.verify, backup.prune and
backup.drill of the NAS's own repository run restic ON the NAS over SSH (the drill restores
into a temporary directory there), with the lock rules of every restic Domum runs. Real restic,
real sshd on 127.0.0.20 (the lab NAS), the NAS's repository on its own disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
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


# --- backup.drill of a nas job: restored and checked on the NAS ---------------------------


def _drill_dir(nas: dict[str, Path]) -> Path:
    return nas["repo"].parent / ".domum-drill-unraid"  # beside the repository, on the NAS


def test_drill_of_a_nas_job_restores_on_the_nas_and_removes_its_copy(
    lab: Lab, nas: dict[str, Path]
) -> None:
    assert lab.inv("backup.snapshot").returncode == 0
    seen: list[bool] = []
    with NasRestics(nas["binary"]) as watch:
        run = lab.spawn("backup.drill")
        while run.poll() is None:  # the copy exists on the NAS while restic restores
            seen.append(_drill_dir(nas).exists())
        _, err = run.communicate()
    assert run.returncode == 0, err
    assert watch.commands() == ["stats", "restore"]
    restore = watch.seen[1]
    assert restore[restore.index("--target") + 1] == str(_drill_dir(nas))
    assert "--verify" in restore and "--retry-lock" in restore
    assert any(seen) and not _drill_dir(nas).exists()  # restored there, removed after
    assert not (lab.state_dir / "drill" / "unraid").exists()  # nothing restored here
    entry = lab.state()["drill"]["unraid"]
    assert entry["ok"] is True and entry["targets"]["nas"]["ok"] is True
    files = [p.stat().st_size for p in nas["share"].rglob("*") if p.is_file()]
    assert f"{len(files)} files, {sum(files)} bytes" in entry["message"], entry["message"]
    assert _locks(nas["repo"]) == []


def test_a_drill_that_would_not_fit_on_the_nas_is_refused(
    lab: Lab, nas: dict[str, Path], nas_host: Any
) -> None:
    """The NAS's disk nearly full (its `df` says 10 KiB free): the drill is refused before
    restic restores anything, with the reason and what to do."""
    assert lab.inv("backup.snapshot").returncode == 0
    df = nas_host.dir / "bin" / "df"  # first on the NAS login's PATH (the lab's SetEnv)
    df.write_text(
        "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
        "echo '/dev/md1 1000000 999990 10 100% /mnt/disk1'\n"
    )
    df.chmod(0o755)
    with NasRestics(nas["binary"]) as watch:
        run = lab.inv("backup.drill")
    assert run.returncode == 1
    assert "refused: restoring snapshot" in run.stderr and "10240 free" in run.stderr
    assert "backup.jobs.unraid.drill_dir" in run.stderr
    assert watch.commands() == ["stats"]  # sized, never restored
    assert not _drill_dir(nas).exists()
    assert lab.state()["drill"]["unraid"]["targets"]["nas"]["ok"] is False


def test_the_job_names_where_the_drill_restores(
    lab: Lab, nas: dict[str, Path], tmp_path: Path
) -> None:
    place = tmp_path / "nas-scratch"
    lab.job("unraid", **{**lab.data["backup"]["jobs"]["unraid"], "drill_dir": str(place)})
    assert lab.inv("backup.snapshot").returncode == 0
    plan = json.loads(lab.inv("backup.drill", "--dry-run", "--json").stdout)
    [drill] = [s for s in _walk(plan) if s.get("action") == "backup.nas-drill"]
    assert drill["args"]["work"] == str(place / ".domum-drill-unraid")
    assert PASSWORD not in json.dumps(plan)
    assert lab.inv("backup.drill").returncode == 0
    assert place.is_dir() and list(place.iterdir()) == []


def test_an_interrupted_drill_removes_its_copy_and_restic_on_the_nas_unlocks(
    lab: Lab, nas: dict[str, Path]
) -> None:
    """Ctrl-C (SIGINT to Domum) while restic restores on the NAS: the NAS's restic gets
    SIGINT (the session is gone) and removes its lock, the finally step removes the copy."""
    from datetime import UTC, datetime

    from tests.restic_lockfile import lock_doc, write_lock

    assert lab.inv("backup.snapshot").returncode == 0
    lab.data["backup"]["lock_wait"] = "120s"
    lab.save()
    # another client's exclusive lock, fresh: the restore on the NAS waits for it
    master = json.loads(restic(nas["repo"], "cat", "masterkey").stdout)
    doc = {**lock_doc(datetime.now(UTC), host="laptop", user="alice", pid=4242), "exclusive": True}
    theirs = write_lock(nas["repo"], master, doc)
    run = lab.spawn("backup.drill")
    try:
        wait_for(lambda: _nas_pids(nas["binary"], "restore"), 60, "restic restore on the NAS")
        assert _drill_dir(nas).is_dir()  # the drill's directory, made before the restore
        time.sleep(1.0)  # restic waits for their lock (--retry-lock), holding none of its own
        os.kill(run.pid, signal.SIGINT)
        run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    wait_for(lambda: not _nas_pids(nas["binary"]), 15, "the NAS's restic to stop")
    assert not _drill_dir(nas).exists()
    assert _locks(nas["repo"]) == [theirs]  # theirs stays (never an unlock); none of ours


def _nas_pids(binary: Path, command: str = "") -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        mine = pid.isdigit() and argv.startswith(str(binary).encode() + b"\0")
        if mine and (not command or f"\0{command}\0".encode() in argv):
            out.append(int(pid))
    return out


# --- the plans the NAS runs are the plans --dry-run shows -----------------------------------


def _actions(plan: list[dict[str, Any]]) -> list[str]:
    return [s.get("action") or s["kind"] for s in plan]


@pytest.mark.parity("backup.prune")
def test_nas_prune_parity(lab: Lab, nas: dict[str, Path], plan_parity: Any) -> None:
    from domum_tasks.backup import tasks as T

    _two_snapshots(lab)
    [plan] = plan_parity(T.prune, reclaim=True, real_options={"yes": True})
    assert _actions(plan) == [
        "backup.lock", "backup.nas-install", "backup.nas-run", "backup.retention-record",
        "backup.nas-run", "backup.reclaim-record", "backup.metrics", "backup.unlock",
    ]  # fmt: skip
    assert plan[2]["destructive"] and plan[4]["destructive"]
    assert len(snapshots(nas["repo"], "unraid")) == 1


@pytest.mark.parity("backup.verify")
def test_nas_verify_parity(lab: Lab, nas: dict[str, Path], plan_parity: Any) -> None:
    from domum_tasks.backup import tasks as T

    assert lab.inv("backup.snapshot").returncode == 0
    [plan] = plan_parity(T.verify, subset=2)
    [check] = [s for s in plan if s.get("action") == "backup.nas-run"]
    assert "--read-data-subset=1/2" in check["args"]["argv"][-1]
    assert lab.state()["verify"]["nas"]["next"] == 2


@pytest.mark.parity("backup.drill")
def test_nas_drill_parity(lab: Lab, nas: dict[str, Path], plan_parity: Any) -> None:
    from domum_tasks.backup import tasks as T

    assert lab.inv("backup.snapshot").returncode == 0
    [plan] = plan_parity(T.drill)
    assert _actions(plan) == [
        "backup.lock", "backup.nas-install", "backup.nas-drill", "backup.drill-record",
        "backup.nas-remove", "backup.save-state", "backup.metrics", "backup.nas-remove",
        "backup.unlock",
    ]  # fmt: skip
    assert lab.state()["drill"]["unraid"]["ok"] is True


def test_a_drill_killed_outright_is_cleaned_up_by_the_next(lab: Lab, nas: dict[str, Path]) -> None:
    """kill -9 of Domum while restic restores on the NAS: that restic gets SIGINT from the
    wrapper and stops; the copy it was writing is removed by the next drill, which passes."""
    from tests.backup_lab import kill_tree, wait_gone

    big = nas["share"] / "big.bin"  # enough to restore for a while
    with big.open("wb") as fh:
        for _ in range(64):
            fh.write(os.urandom(1 << 20))
    assert lab.inv("backup.snapshot").returncode == 0
    run = lab.spawn("backup.drill")
    try:
        wait_for(lambda: _nas_pids(nas["binary"], "restore"), 60, "restic restore on the NAS")
        pids = kill_tree(run.pid)
        run.wait(10)
        wait_gone(pids)
    finally:
        if run.poll() is None:
            run.kill()
    wait_for(lambda: not _nas_pids(nas["binary"]), 15, "the NAS's restic to stop")
    assert _locks(nas["repo"]) == []  # restic removed its lock (SIGINT from the wrapper)
    assert _drill_dir(nas).is_dir()  # left by the killed drill: no finally step ran
    again = lab.inv("backup.drill")
    assert again.returncode == 0, again.stderr
    assert not _drill_dir(nas).exists()
    assert lab.state()["drill"]["unraid"]["ok"] is True


def test_restic_ignores_sighup_and_unlocks_on_sigint(lab: Lab, tmp_path: Path) -> None:
    """Why the wrapper sends SIGINT: restic 0.18 ignores SIGHUP (internal/restic/lock.go, init:
    other clients probe a lock holder's liveness with SIGHUP, lock_unix.go processExists), so a
    terminal's hangup would not stop it; SIGINT (and SIGTERM, cmd/restic/cleanup.go) cancel it
    and it removes its lock."""
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(lab.template, repo)
    src = tmp_path / "big"
    src.mkdir()
    with (src / "disk.img").open("wb") as fh:  # sparse: minutes of reading, no space
        fh.truncate(1 << 40)
    other = subprocess.Popen(
        ["restic", "backup", str(src)],
        env=restic_env(repo),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # the default disposition, as a login's command has it
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    try:
        wait_for(lambda: _locks(repo), what="restic's lock")
        time.sleep(1.0)  # reading the big file now
        other.send_signal(signal.SIGHUP)
        time.sleep(3.0)
        assert other.poll() is None and _locks(repo)  # still running, still locked
        other.send_signal(signal.SIGINT)
        other.wait(30)
    finally:
        if other.poll() is None:
            other.kill()
            other.wait(10)
    assert _locks(repo) == []


# --- backup.restore --on-nas: restic restores on the NAS into a path there ------------------


def test_restore_on_the_nas_into_a_path_there(
    lab: Lab, nas: dict[str, Path], tmp_path: Path
) -> None:
    from tests.test_backup_snapshot import same_tree

    assert lab.inv("backup.snapshot").returncode == 0
    to = tmp_path / "nas-restore"  # a path on the NAS (the lab NAS shares this disk)
    with NasRestics(nas["binary"]) as watch:
        run = lab.inv("backup.restore", "--job", "unraid", "--to", str(to), "--on-nas")
    assert run.returncode == 0, run.stderr
    assert "ON the NAS" in run.stdout and "restic restore --verify" in run.stdout
    assert watch.commands() == ["stats", "restore"]
    assert same_tree(to / str(nas["share"]).lstrip("/"), nas["share"])

    (to / "unrelated.txt").write_text("mine\n")  # not empty now: refused without --force
    again = lab.inv("backup.restore", "--job", "unraid", "--to", str(to), "--on-nas")
    assert again.returncode == 4 and "on the NAS is not empty" in again.stderr
    (nas["share"] / "d0" / "f0.txt").write_text("changed on the share\n")
    forced = lab.inv("backup.restore", "--job", "unraid", "--to", str(to), "--on-nas", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (to / "unrelated.txt").read_text() == "mine\n"  # a merge: nothing else removed
    restored = to / str(nas["share"]).lstrip("/") / "d0" / "f0.txt"
    assert restored.read_text() != "changed on the share\n"  # the snapshot's own bytes
    assert _locks(nas["repo"]) == []


def test_restore_on_the_nas_is_for_nas_jobs(lab: Lab, nas: dict[str, Path]) -> None:
    lab.job("conf", kind="config", targets=["a"])
    assert lab.inv("backup.snapshot", "--job", "conf").returncode == 0
    run = lab.inv("backup.restore", "--job", "conf", "--to", "/srv/x", "--on-nas")
    assert run.returncode == 2 and "--on-nas: job conf on a is not a nas job" in run.stderr


@pytest.mark.parity("backup.restore")
def test_nas_restore_on_nas_parity(
    lab: Lab, nas: dict[str, Path], plan_parity: Any, tmp_path: Path
) -> None:
    from domum_tasks.backup import tasks as T

    assert lab.inv("backup.snapshot").returncode == 0
    to = tmp_path / "nas-restore"
    [plan] = plan_parity(T.restore, job="unraid", to=str(to), on_nas=True)
    assert _actions(plan) == ["backup.nas-install", "backup.nas-restore"]
    assert (to / str(nas["share"]).lstrip("/") / "d0").is_dir()
