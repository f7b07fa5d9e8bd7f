"""A backup lab for tests: real sshd hosts (the fleet), real restic repositories on disk, real
rsync, and an inventory whose backup: section points everything at a temp directory.

restic's `init` spends ~2 s calibrating its KDF, so one repository is initialised per session
and copied for each test (same password; every copy is a full, independent repository).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.sshd_hosts import SshdFleet

PASSWORD = "correct horse battery staple"
INV = str(Path(sys.executable).parent / "inv")
REPO = Path(__file__).resolve().parent.parent  # where tasks.py is: inv runs from here


def restic_env(repo: Path) -> dict[str, str]:
    return {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD": PASSWORD}


def restic(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["restic", *args], env=restic_env(repo), capture_output=True, text=True, check=check
    )


def snapshots(repo: Path, job: str | None = None) -> list[dict[str, Any]]:
    # --no-lock: the test only looks; right after a kill -9 the killed restic's lock may still
    # be there (Domum never removes it).
    args = ["--no-lock", "snapshots", "--json", *(["--tag", f"job={job}"] if job else [])]
    return list(json.loads(restic(repo, *args).stdout or "[]"))


@pytest.fixture(scope="session")
def restic_template(tmp_path_factory: pytest.TempPathFactory, _pinned_tools: str) -> Path:
    # the restic the tests will find: the pinned one first (conftest), as in each test's PATH
    exe = shutil.which(
        "restic", path=os.pathsep.join(p for p in (_pinned_tools, os.environ["PATH"]) if p)
    )
    if not exe or not shutil.which("rsync"):
        pytest.skip(
            "restic and rsync are needed (scripts/setup.sh puts the pinned restic in .bin/)"
        )
    version = subprocess.run([exe, "version"], capture_output=True, text=True).stdout.split()
    if len(version) < 2 or tuple(int(p) for p in version[1].split(".")[:2]) < (0, 16):
        pytest.skip(
            f"restic >= 0.16 is needed, found {' '.join(version[:2])}: run scripts/setup.sh"
        )
    repo = tmp_path_factory.mktemp("restic-template") / "repo"
    subprocess.run([exe, "init"], env=restic_env(repo), capture_output=True, check=True)
    return repo


def make_tree(root: Path, files: int = 20, size: int = 300) -> None:
    for i in range(files):
        p = root / f"d{i % 4}" / f"f{i}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes((f"file {i} ".encode() * (size // 8 + 1))[:size])


@dataclass
class Lab:
    root: Path
    fleet: SshdFleet
    inventory: Path
    data: dict[str, Any]
    src: Path
    template: Path
    mp: pytest.MonkeyPatch

    @property
    def state_dir(self) -> Path:
        return Path(self.data["backup"]["state_dir"])

    @property
    def metrics(self) -> Path:
        return Path(self.data["backup"]["metrics_dir"]) / "domum_backup.prom"

    @property
    def log(self) -> Path:
        return Path(self.data["backup"]["log_file"])

    def repo(self, name: str) -> Path:
        return Path(self.data["backup"]["targets"][name]["repository"])

    def add_repo(self, name: str, *, initialised: bool = True) -> Path:
        path = self.root / f"repo-{name}"
        if initialised:
            shutil.copytree(self.template, path)
        self.data["backup"]["targets"][name] = {"type": "restic", "repository": str(path)}
        self.mp.setenv(f"DOMUM_BACKUP_TARGETS_{name.upper().replace('-', '_')}_PASSWORD", PASSWORD)
        self.save()
        return path

    def job(self, name: str, **spec: Any) -> None:
        self.data["backup"]["jobs"][name] = spec
        self.save()

    def save(self) -> None:
        self.inventory.write_text(yaml.safe_dump(self.data, sort_keys=False))

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.state_dir / "state.json").read_text()))

    def inv(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`inv ARGS` as cron runs it: stdout is a pipe, not a terminal."""
        return subprocess.run(
            [INV, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [INV, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
        )


def _session_members(sid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state ppid pgrp session ...
            out.append(int(stat.parent.name))
    return out


def kill_tree(pid: int) -> list[int]:
    """kill -9 every process of the session `pid` leads (Lab.spawn starts one): what a power
    cut or a cgroup kill does. Repeated until none is left, so a child forked in the middle
    cannot slip through. Returns the pids; see wait_gone."""
    import signal

    killed: list[int] = []
    for _ in range(50):
        members = _session_members(pid)
        if not members:
            break
        for p in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        killed += members
        time.sleep(0.01)
    return killed


def wait_gone(pids: list[int], timeout: float = 30.0) -> None:
    """Until every pid is reaped (a zombie still 'exists' for restic's stale-lock check)."""
    wait_for(
        lambda: not any(Path(f"/proc/{p}").exists() for p in pids),
        timeout,
        "killed processes to be reaped",
    )


def wait_for(cond: Any, timeout: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def lab(
    sshd_fleet: SshdFleet,
    restic_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Lab]:
    sshd_fleet.reset()
    data = sshd_fleet.inventory_data()
    src = tmp_path / "src"
    make_tree(src)
    secrets = tmp_path / "secrets.sops.yaml"
    secrets.write_text("token: ENC[AES256_GCM,data:abc,type:str]\nsops:\n    mac: ENC[x]\n")
    monkeypatch.setenv("DOMUM_SECRETS_FILE", str(secrets))
    # the Talos secrets bundle a config job requires (issue 16 #5), under a repo root of its own
    root = tmp_path / "repo-root"
    bundle = root / "cluster" / "core" / "01-talos" / "secrets.sops.yaml"
    bundle.parent.mkdir(parents=True)
    bundle.write_text(
        "cluster:\n    id: ENC[AES256_GCM,data:xyz,type:str]\nsops:\n    mac: ENC[y]\n"
    )
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(root))
    data["backup"] = {
        "state_dir": str(tmp_path / "state"),
        "log_file": str(tmp_path / "log" / "backup.log"),
        "metrics_dir": str(tmp_path / "metrics"),
        "retention": {"keep_last": 3},
        "lock_wait": "3s",  # another client's restic lock: wait 3 s, not minutes
        "targets": {},
        "jobs": {},
    }
    inventory = tmp_path / "inventory.yaml"
    lab = Lab(tmp_path, sshd_fleet, inventory, data, src, restic_template, monkeypatch)
    lab.add_repo("a")
    monkeypatch.setenv("DOMUM_INVENTORY", str(inventory))
    lab.save()
    yield lab
