"""Issue 16, part "nas": restic runs on the NAS over SSH (the pinned binary copied once,
checksum-verified, the password on stdin only), `restic copy` of complete snapshots to the
off-site repository, and `backup.drill` rotating over every target. Real restic, real sshd."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domum_tasks.backup.recovery import rotation
from tests.backup_lab import PASSWORD, Lab, kill_tree, restic, snapshots, wait_for, wait_gone
from tests.test_backup_kinds import nas_host  # noqa: F401  (fixture: sshd on 127.0.0.20)
from tests.test_backup_snapshot import same_tree

pytestmark = pytest.mark.integration


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _local_restic() -> Path:
    found = shutil.which("restic")
    assert found, "the lab needs restic"
    return Path(os.path.realpath(found))


@pytest.fixture
def nas(lab: Lab, nas_host: Any, tmp_path: Path) -> dict[str, Path]:
    """The NAS: an sshd on 127.0.0.20 with a share, and its restic repository on its own disk,
    named as the admin machine sees it (sftp:user@127.0.0.20:<path>)."""
    appdata = tmp_path / "mnt" / "user" / "appdata"
    shutil.copytree(lab.src, appdata)
    lab.data["nas"] = {
        "hostname": "tower",
        "host": nas_host.addr,
        "user": lab.fleet.user,
        "ssh_port": nas_host.port,
        "shares": {"appdata": str(appdata)},
    }
    repo = tmp_path / "nas-repo"
    shutil.copytree(lab.template, repo)
    lab.data["backup"]["targets"]["nas"] = {
        "type": "restic",
        "repository": f"sftp:{lab.fleet.user}@{nas_host.addr}:{repo}",
    }
    lab.mp.setenv("DOMUM_BACKUP_TARGETS_NAS_PASSWORD", PASSWORD)
    binary = tmp_path / "nas-bin" / "restic"
    lab.job("unraid", kind="nas", shares=["appdata"], targets=["nas"], restic_path=str(binary))
    return {"share": appdata, "repo": repo, "binary": binary}


class ProcWatch:
    """Every process's argv (and restic's environment) sampled from /proc while a run goes:
    the password must never be in one. `remote` counts the samples of the NAS's restic, so the
    check cannot pass by never looking at it."""

    def __init__(self, secret: str, remote_exe: Path) -> None:
        self.secret, self.exe = secret.encode(), str(remote_exe).encode()
        self.leaks: list[str] = []
        self.remote = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                    env = Path(f"/proc/{pid}/environ").read_bytes() if b"restic" in argv else b""
                except OSError:
                    continue
                if self.secret in argv:
                    self.leaks.append(f"argv of {pid}: {argv!r}")
                if argv.startswith(self.exe):
                    self.remote += 1
                    if self.secret in env:
                        self.leaks.append(f"environment of the NAS's restic {pid}")

    def __enter__(self) -> ProcWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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


# --- restic runs on the NAS ---------------------------------------------------------------


def test_nas_job_runs_restic_on_the_nas(lab: Lab, nas: dict[str, Path], tmp_path: Path) -> None:
    with ProcWatch(PASSWORD, nas["binary"]) as watch:
        run = lab.inv("backup.snapshot")
    assert run.returncode == 0, run.stderr
    assert watch.remote > 0, "the NAS's restic was never seen running"
    assert watch.leaks == []
    # the pinned binary, byte for byte, where the job named it
    assert _sha256(nas["binary"]) == _sha256(_local_restic())
    first_inode = nas["binary"].stat().st_ino
    # the snapshot: of the share itself (not of a staging mirror), marked complete
    [snap] = snapshots(nas["repo"], "unraid")
    assert snap["paths"] == [str(nas["share"])]
    assert "complete" in snap["tags"] and "partial" not in snap["tags"]
    assert not (lab.state_dir / "staging" / "unraid").exists()  # nothing mirrored here
    last = lab.state()["jobs"]["unraid"]["last_run"]  # restic's own count of the shares
    assert (last["status"], last["files"]) == ("ok", 20)
    assert last["bytes"] == sum(p.stat().st_size for p in nas["share"].rglob("*") if p.is_file())
    # restorable, byte-identical
    out = tmp_path / "out"
    restic(nas["repo"], "restore", snap["id"], "--target", str(out))
    assert same_tree(out / str(nas["share"]).lstrip("/"), nas["share"])

    # second run: the binary is not copied again (same file), a new complete snapshot
    (nas["share"] / "new.txt").write_text("second run\n")
    again = lab.inv("backup.snapshot", "--json")
    assert again.returncode == 0, again.stderr
    assert nas["binary"].stat().st_ino == first_inode
    assert [("complete" in s["tags"]) for s in snapshots(nas["repo"], "unraid")] == [True, True]


def test_a_changed_binary_on_the_nas_is_replaced(lab: Lab, nas: dict[str, Path]) -> None:
    nas["binary"].parent.mkdir(parents=True)
    nas["binary"].write_text("#!/bin/sh\necho not restic\n")
    nas["binary"].chmod(0o700)
    run = lab.inv("backup.snapshot")
    assert run.returncode == 0, run.stderr
    assert _sha256(nas["binary"]) == _sha256(_local_restic())
    assert not Path(f"{nas['binary']}.tmp").exists()


def test_targets_the_nas_cannot_reach_are_refused(lab: Lab, nas: dict[str, Path]) -> None:
    lab.job("unraid", kind="nas", shares=["appdata"], targets=["nas", "a"])
    run = lab.inv("backup.snapshot")
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert "backup.jobs.unraid.targets: a (" in line
    assert "cannot be reached by restic running on the NAS" in line
    assert not nas["binary"].exists()  # refused while planning: nothing ran


def test_the_dry_run_shows_no_password(lab: Lab, nas: dict[str, Path]) -> None:
    run = lab.inv("backup.snapshot", "--dry-run", "--json")
    assert run.returncode == 0, run.stderr
    assert PASSWORD not in run.stdout
    assert "--password" not in run.stdout  # restic reads it from stdin: nothing to show
    assert str(nas["share"]) in run.stdout and "backup.nas-install" in run.stdout


def test_nas_snapshot_restores_drills_and_verifies_from_here(
    lab: Lab, nas: dict[str, Path], tmp_path: Path
) -> None:
    """backup.restore reaches the NAS repository over sftp, as the admin machine names it
    (drill and verify run on the NAS: test_backup_nas_ops.py); restic's --verify stands in
    for the manifest a mirror had."""
    assert lab.inv("backup.snapshot").returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    (out / "unrelated.txt").write_text("mine\n")
    run = lab.inv("backup.restore", "--job", "unraid", "--to", str(out), "--force")
    assert run.returncode == 0, run.stderr
    assert "restic restore --verify" in run.stdout
    assert same_tree(out / str(nas["share"]).lstrip("/"), nas["share"])
    assert (out / "unrelated.txt").read_text() == "mine\n"  # a merge: nothing else removed
    drill = lab.inv("backup.drill")
    assert drill.returncode == 0, drill.stderr
    assert lab.state()["drill"]["unraid"]["targets"]["nas"]["ok"] is True
    verify = lab.inv("backup.verify", "--subset", "1")
    assert verify.returncode == 0, verify.stderr


def test_a_damaged_restore_of_a_nas_snapshot_fails(lab: Lab, nas: dict[str, Path]) -> None:
    """No manifest, yet damage is caught: restic checks every blob it restores (and --verify
    re-reads the files it wrote); a pack altered in the repository fails the drill."""
    assert lab.inv("backup.snapshot").returncode == 0
    packs = sorted((nas["repo"] / "data").rglob("*"))
    data_packs = [p for p in packs if p.is_file()]
    for p in data_packs:  # flip a byte in the middle of every pack
        raw = bytearray(p.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        p.chmod(0o600)
        p.write_bytes(bytes(raw))
    drill = lab.inv("backup.drill")  # restored on the NAS (recovery/nas_drill.py)
    assert drill.returncode == 1, drill.stderr
    assert "drill unraid FAILED: restic restore --verify on the NAS failed" in drill.stderr
    assert lab.state()["drill"]["unraid"]["targets"]["nas"]["ok"] is False
    assert not (nas["repo"].parent / ".domum-drill-unraid").exists()  # removed all the same


@pytest.mark.parity("backup.snapshot")
def test_nas_snapshot_parity(lab: Lab, nas: dict[str, Path], plan_parity: Any) -> None:
    from domum_tasks.backup import tasks as T

    [plan] = plan_parity(T.snapshot)
    [job] = [s for s in plan if s["kind"] == "job"]
    inner = [s.get("action") or s["kind"] for s in job["steps"]]
    assert inner == ["backup.nas-install", "fanout"]  # the binary; backup + confirm per target
    assert nas["binary"].exists() and len(snapshots(nas["repo"], "unraid")) == 1


# --- 3-2-1: restic copy to the off-site repository ----------------------------------------


def _copy_lab(lab: Lab) -> Path:
    """a: the repository the job backs up to; b: its off-site copy (targets.a.copy_to)."""
    b = lab.add_repo("b")
    lab.data["backup"]["targets"]["a"]["copy_to"] = ["b"]
    lab.job("conf", kind="config", targets=["a"])
    return b


def test_copy_to_sends_only_complete_snapshots(lab: Lab, tmp_path: Path) -> None:
    b = _copy_lab(lab)
    # a partial snapshot of the job already in a (a run that could not read everything)
    restic(lab.repo("a"), "backup", "--tag", "domum", "--tag", "job=conf", "--tag", "partial",
           "--host", "partial-host", str(lab.src))  # fmt: skip
    run = lab.inv("backup.snapshot")
    assert run.returncode == 0, run.stderr
    [source] = [s for s in snapshots(lab.repo("a"), "conf") if "complete" in s["tags"]]
    [copied] = snapshots(b, "conf")  # the complete one only, tags kept
    assert "complete" in copied["tags"] and copied["tree"] == source["tree"]
    # restic copy keeps the snapshot's original id (the one before `tag` rewrote it)
    assert copied.get("original") == source.get("original", source["id"])
    # a second run copies only the new snapshot (restic skips what b already has)
    assert lab.inv("backup.snapshot").returncode == 0
    assert len(snapshots(b, "conf")) == 2
    # the copy is restorable, and the drill reaches it in its turn
    out = tmp_path / "out"
    got = lab.inv("backup.restore", "--job", "conf", "--target", "b", "--to", str(out))
    assert got.returncode == 0, got.stderr
    for _ in range(2):
        assert lab.inv("backup.drill").returncode == 0
    assert set(lab.state()["drill"]["conf"]["targets"]) == {"a", "b"}
    # backup.list shows the copy as a target of the job
    listed = json.loads(lab.inv("backup.list", "--json").stdout)
    states = {r["target"]: [s["state"] for s in r["snapshots"]] for r in listed}
    assert sorted(states["a"]) == ["complete", "complete", "partial"]
    assert states["b"] == ["complete", "complete"]  # the partial one never travelled
    # and backup.verify reads the copy's packs too
    assert lab.inv("backup.verify", "--subset", "1").returncode == 0
    assert lab.state()["verify"]["b"]["last_result"] == "ok"


def test_copy_waits_for_locks_and_names_both_passwords_nowhere(lab: Lab) -> None:
    _copy_lab(lab)
    lab.mp.setenv("DOMUM_BACKUP_TARGETS_B_PASSWORD", "off-site password")
    run = lab.inv("backup.snapshot", "--dry-run", "--json")
    assert run.returncode == 0, run.stderr
    [copy] = [s for s in _walk(json.loads(run.stdout)) if s.get("action") == "backup.copy"]
    argv = copy["args"]["argv"]
    assert argv[argv.index("--retry-lock") + 1] == "3s" and "unlock" not in argv
    assert argv[-2:] == ["--tag", "job=conf,complete"]
    assert PASSWORD not in run.stdout and "off-site password" not in run.stdout


def test_a_failing_copy_fails_the_job_and_keeps_the_source(lab: Lab) -> None:
    b = _copy_lab(lab)
    lab.mp.setenv("DOMUM_BACKUP_TARGETS_B_PASSWORD", "not-b-s-password")
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1
    assert "restic copy a -> b bad-password" in run.stderr and "not-b-s" not in run.stderr
    assert [("complete" in s["tags"]) for s in snapshots(lab.repo("a"), "conf")] == [True]
    assert snapshots(b, "conf") == []


@pytest.mark.parametrize(
    ("copy_to", "targets", "message"),
    [
        (["nope"], ["a"], "backup.targets.a.copy_to.0: 'nope' is not another restic target"),
        (["a"], ["a"], "backup.targets.a.copy_to.0: 'a' is not another restic target; valid: b"),
        (["b"], ["a", "b"], "backup.jobs.conf.targets.0: 'a' already fills b by restic copy"),
    ],
)
def test_copy_to_mistakes_are_bad_input_of_the_inventory(
    lab: Lab, copy_to: list[str], targets: list[str], message: str
) -> None:
    _copy_lab(lab)
    lab.data["backup"]["targets"]["a"]["copy_to"] = copy_to
    lab.job("conf", kind="config", targets=targets)
    run = lab.inv("backup.snapshot")  # the inventory check: file, line, field, what is valid
    assert run.returncode == 2 and message in run.stderr
    [line] = run.stderr.strip().splitlines()
    assert f"{lab.inventory}:" in line


def _walk(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for s in steps:
        yield s
        yield from _walk(s.get("steps") or [])
        for lane in s.get("lanes") or []:
            yield from _walk(lane)


def test_prune_applies_the_job_retention_to_its_copies(lab: Lab) -> None:
    b = _copy_lab(lab)
    only_last = {"keep_last": 3, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}
    lab.job("conf", kind="config", targets=["a"], retention=only_last)
    for _ in range(4):
        assert lab.inv("backup.snapshot").returncode == 0
    assert len(snapshots(b, "conf")) == 4  # restic copy never forgets
    run = lab.inv("backup.prune", "--yes")
    assert run.returncode == 0, run.stderr
    assert len(snapshots(b, "conf")) == 3


# --- what the targets mean when restic runs on the NAS (pure) -----------------------------


@pytest.mark.parametrize(
    ("repository", "on_nas"),
    [
        ("sftp:root@10.0.10.20:/mnt/user/backups/restic", "/mnt/user/backups/restic"),
        ("sftp:root@tower:/mnt/disk1/restic", "/mnt/disk1/restic"),  # by hostname
        ("sftp:tower:backups/restic", "backups/restic"),  # relative: the login's home
        (
            "rest:https://backup.example.org:8000/domum",
            "rest:https://backup.example.org:8000/domum",
        ),
    ],
)
def test_repository_on_the_nas(repository: str, on_nas: str) -> None:
    from domum_tasks.backup.producers import nas_remote
    from domum_tasks.inventory.loader import load, repo_root
    from domum_tasks.inventory.model import BackupTarget

    inv = load(repo_root() / "config" / "domum.yaml")  # nas 10.0.10.20 "tower": never contacted
    target = BackupTarget(type="restic", repository=repository)
    assert nas_remote.repository_on_nas(inv, "unraid", "t", target) == on_nas


@pytest.mark.parametrize(
    "repository",
    [
        "rclone:gcs:domum-backups/restic",  # rclone and its config live here
        "s3:s3.amazonaws.com/bucket",  # credentials would be in the NAS's environment
        "/srv/restic",  # a path on this machine
        "sftp:root@10.0.10.30:/backups",  # another host: needs Domum's key and known_hosts
        "rest:https://user:pw@backup.example.org/domum",  # credentials in the NAS's argv
    ],
)
def test_repositories_the_nas_cannot_use_are_refused(repository: str) -> None:
    from domum_tasks.backup.producers import nas_remote
    from domum_tasks.errors import ConfigError
    from domum_tasks.inventory.loader import load, repo_root
    from domum_tasks.inventory.model import BackupTarget

    inv = load(repo_root() / "config" / "domum.yaml")
    target = BackupTarget(type="restic", repository=repository)
    with pytest.raises(ConfigError, match=r"^backup\.jobs\.unraid\.targets: t \("):
        nas_remote.repository_on_nas(inv, "unraid", "t", target)


def test_the_default_restic_path_is_under_the_nas_login_home(
    lab: Lab, nas: dict[str, Path]
) -> None:
    lab.job("unraid", kind="nas", shares=["appdata"], targets=["nas"])
    run = lab.inv("backup.snapshot", "--dry-run", "--json")
    assert run.returncode == 0, run.stderr
    [install] = [
        s for s in _walk(json.loads(run.stdout)) if s.get("action") == "backup.nas-install"
    ]
    assert install["args"]["path"] == ".domum/bin/restic"  # relative: the login's home
    assert install["args"]["copy"][-1].endswith(":.domum/bin/restic.tmp")
    assert "/boot" not in run.stdout


def _nas_restic_pids(binary: Path) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid.isdigit() and argv.startswith(str(binary).encode() + b"\0"):
            out.append(int(pid))
    return out


def _wrapper_dirs() -> set[str]:
    """The NAS wrapper's private dirs (restic's output) in the lab NAS's /tmp."""
    return {p.name for p in Path("/tmp").glob("domum-restic.*")}


def _locks(repo: Path) -> list[str]:
    return restic(repo, "--no-lock", "list", "locks").stdout.split()


def test_a_killed_job_does_not_leave_restic_running_on_the_nas(
    lab: Lab, nas: dict[str, Path]
) -> None:
    """kill -9 of Domum here mid-backup: sshd signals nothing to a command without a terminal,
    and restic dying of SIGPIPE at its next write would leave its lock. The wrapper on the NAS
    (producers/nas_session.py) sees the session gone and sends restic SIGINT: restic removes
    its own lock and stops. Nothing is left on the NAS: no restic, no lock, no temp dir."""
    with (nas["share"] / "disk.img").open("wb") as fh:  # sparse: minutes of reading, no space
        fh.truncate(1 << 40)
    before = _wrapper_dirs()
    proc = lab.spawn("backup.snapshot")
    try:
        wait_for(lambda: _nas_restic_pids(nas["binary"]), 60, "restic to run on the NAS")
        assert _wrapper_dirs() - before, "the wrapper's temp dir on the NAS"
        wait_for(lambda: _locks(nas["repo"]), 30, "the NAS's restic to take its lock")
        time.sleep(1.0)  # reading the big file now
        pids = kill_tree(proc.pid)  # the whole job here: inv, its job, ssh
        proc.wait(10)
        wait_gone(pids)
        start = time.monotonic()
        wait_for(lambda: not _nas_restic_pids(nas["binary"]), 30, "the NAS's restic to stop")
        assert time.monotonic() - start < 10  # the watcher polls every second
    finally:
        for pid in _nas_restic_pids(nas["binary"]):  # only what this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(5)
    assert _locks(nas["repo"]) == []  # restic removed its own lock: SIGINT, not SIGPIPE
    wait_for(lambda: not _wrapper_dirs() - before, 10, "the wrapper to remove its temp dir")
    # nothing counted: the snapshot was never saved, let alone marked complete
    assert [s for s in snapshots(nas["repo"], "unraid") if "complete" in s["tags"]] == []


def test_nas_repository_copied_off_site(lab: Lab, nas: dict[str, Path]) -> None:
    """The whole 3-2-1: restic on the NAS into the NAS's repository, then restic copy of the
    complete snapshot from there (over sftp) to the off-site one (here the lab's `a`)."""
    lab.data["backup"]["targets"]["nas"]["copy_to"] = ["a"]
    lab.save()
    run = lab.inv("backup.snapshot")
    assert run.returncode == 0, run.stderr
    [source] = snapshots(nas["repo"], "unraid")
    [copied] = snapshots(lab.repo("a"), "unraid")
    assert copied["tree"] == source["tree"] and "complete" in copied["tags"]


def test_the_planner_refuses_copy_mistakes_too() -> None:
    """copying.copies checks again (a Job built without the loader's cross-check)."""
    from domum_tasks.backup.jobs import Job
    from domum_tasks.backup.repository import copying
    from domum_tasks.errors import ConfigError
    from domum_tasks.inventory.loader import load, repo_root
    from domum_tasks.inventory.model import BackupJob

    inv = load(repo_root() / "config" / "domum.yaml")
    inv.backup.targets["nas"].copy_to.append("gcs")
    job = Job("conf", BackupJob(kind="config", targets=["nas"]))
    assert copying.copies(inv, job) == [("nas", "gcs")]
    assert copying.holders(inv, job) == ["nas", "gcs"]
    both = Job("conf", BackupJob(kind="config", targets=["nas", "gcs"]))
    with pytest.raises(ConfigError, match=r"lists gcs, which backup\.targets\.nas\.copy_to"):
        copying.copies(inv, both)
    inv.backup.targets["nas"].copy_to[:] = ["pve-nas"]  # a pve-storage target
    with pytest.raises(ConfigError, match="'pve-nas' is not another restic target"):
        copying.copies(inv, job)


def test_a_stopped_array_is_not_a_complete_backup(lab: Lab, nas: dict[str, Path]) -> None:
    """The guards on restic's own count: an emptied share (Unraid array stopped, disk not
    mounted) leaves its snapshot `partial`, the job failed, the good snapshot the newest."""
    assert lab.inv("backup.snapshot").returncode == 0
    hidden = nas["share"].parent / "appdata.away"
    nas["share"].rename(hidden)
    nas["share"].mkdir()  # the mount point, empty
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1
    assert "guard failed" in run.stderr and "min_files" in run.stderr
    snaps = snapshots(nas["repo"], "unraid")
    assert [("complete" in s["tags"], "partial" in s["tags"]) for s in snaps] == [
        (True, False),
        (False, True),  # saved, never counted: no copy, no retention, no restore picks it
    ]
    assert lab.state()["jobs"]["unraid"]["last_run"]["status"] == "failed"
