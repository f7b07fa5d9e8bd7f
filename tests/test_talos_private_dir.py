"""The private directory that holds the decrypted Talos secrets bundle while genconfig runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from domum_tasks.talos.genconfig import generate


def test_one_directory_per_process_so_two_runs_never_share_it() -> None:
    name = Path(generate.private_dir()).name
    assert name == f"domum-genconfig-{os.getuid()}-{os.getpid()}"


def test_leftovers_of_killed_runs_go_and_live_runs_stay(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    uid = os.getuid()
    left = tmp_path / f"domum-genconfig-{uid}-{dead.pid}"
    live = tmp_path / f"domum-genconfig-{uid}-{os.getppid()}"
    for d in (left, live):
        d.mkdir()
        (d / "secrets.yaml").write_text("plaintext")
    mine = tmp_path / f"domum-genconfig-{uid}-{os.getpid()}"
    generate._make_private(mine)
    assert mine.is_dir() and (mine.stat().st_mode & 0o777) == 0o700
    assert not left.exists()  # the bundle of a killed run does not outlive it
    assert (live / "secrets.yaml").read_text() == "plaintext"  # another run, still going
