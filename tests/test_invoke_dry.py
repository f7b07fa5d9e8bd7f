"""invoke's own `--dry`/`-R` only echoes `c.run` commands; Domum acts through its executor, so
those flags (and a `-d` before the task name, invoke's `--debug`) would run a task for real.
Both programs refuse them with exit 2 and the hint, and the disk is never written."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK_INVENTORY, REPO

BIN = Path(sys.executable).parent


def _run(prog: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOMUM_INVENTORY": str(LOOPBACK_INVENTORY)}
    return subprocess.run(
        [str(BIN / prog), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


@pytest.fixture
def disk(tmp_path: Path) -> tuple[Path, Path]:
    """A real raw image (random, 2 MiB) and a regular file standing in for the SD card."""
    image, device = tmp_path / "talos.raw", tmp_path / "sdcard.bin"
    image.write_bytes(os.urandom(2 << 20))
    device.write_bytes(b"precious data\n" * 1000)
    return image, device


@pytest.mark.parametrize("prog", ["domum", "inv"])
@pytest.mark.parametrize(
    ("before", "after"),
    [
        ([], ["--dry"]),  # after the task: invoke still takes it as its core flag
        ([], ["-R", "--yes"]),
        (["--dry"], []),
        (["-d"], ["--yes"]),  # -d before the task name is invoke's --debug
    ],
)
def test_invoke_dry_flags_never_write_the_disk(
    prog: str, before: list[str], after: list[str], disk: tuple[Path, Path]
) -> None:
    image, device = disk
    before_sum = hashlib.sha256(device.read_bytes()).hexdigest()
    task = ["pi.flash", "--node", "92", "--image", str(image), "--device", str(device)]
    args = [*before, *task, *after]
    proc = _run(prog, args, cwd=REPO)  # inv needs tasks.py: run from the repository
    assert proc.returncode == 2, proc.stderr
    assert "use --dry-run (or -d) after the task name" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert hashlib.sha256(device.read_bytes()).hexdigest() == before_sum


@pytest.mark.parametrize(
    ("args", "wrong"),
    [
        (["pi.flash", "--node", "92", "--dyr-run"], "--dry'"),
        (["talos.apply", "--node", "92", "--yse"], "--pty"),
        (["pi.flash", "--node", "92", "--disk", "x"], "--list"),
    ],
)
def test_hints_never_point_at_invoke_core_flags(
    args: list[str], wrong: str, tmp_path: Path
) -> None:
    proc = _run("domum", args, cwd=tmp_path)
    assert proc.returncode == 2
    assert wrong not in proc.stderr
    assert "did you mean '--" not in proc.stderr or "did you mean '--dry-run'" in proc.stderr


def test_the_dry_run_hint_is_the_task_own_option(tmp_path: Path) -> None:
    proc = _run("domum", ["pi.flash", "--node", "92", "--dyr-run"], cwd=tmp_path)
    assert proc.returncode == 2 and "(did you mean '--dry-run'?)" in proc.stderr
