"""pi.flash onto real block devices: loop devices (losetup, partx), a mounted ext4 that must be
refused, a too-small device, and a Raspberry Pi OS image customised on the device itself.
Needs root and /dev/loop-control; skipped with the reason otherwise."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import pi_flash_support as support
from tests.pi_flash_support import (
    MIB,
    PUBKEY,
    compress,
    mtype,
    rpios_like_image,
    run_inv,
    talos_like_raw,
    write_inventory,
)

flash_env = support.flash_env  # fixture

pytestmark = [pytest.mark.integration, pytest.mark.root]

if os.geteuid() != 0:
    pytest.skip("loop-device tests need root (losetup, partx, mount)", allow_module_level=True)
if not os.path.exists("/dev/loop-control"):
    pytest.skip(
        "no /dev/loop-control: this kernel/container has no loop devices", allow_module_level=True
    )
if not shutil.which("losetup") or not shutil.which("partx"):
    pytest.skip("losetup/partx missing (apt-get install util-linux)", allow_module_level=True)


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def loop_device(backing: Path, size_mib: int) -> Iterator[str]:
    """A loop device over a fresh file of `size_mib` MiB; always detached afterwards."""
    with open(backing, "wb") as fh:
        fh.truncate(size_mib * MIB)
    dev = _sh("losetup", "-f", "--show", str(backing))
    try:
        yield dev
    finally:
        subprocess.run(["partx", "-d", dev], capture_output=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


@pytest.fixture
def talos_zst(tmp_path: Path) -> tuple[bytes, Path]:
    raw = tmp_path / "metal-arm64.raw"
    data = talos_like_raw(6)
    raw.write_bytes(data)
    return data, compress(raw, "zst")


def test_flash_loop_device_needs_force_then_writes_byte_exact(
    flash_env: Path, talos_zst: tuple[bytes, Path]
) -> None:
    raw, zst = talos_zst
    with loop_device(flash_env / "disk", 16) as dev:
        proc = run_inv("pi.flash", "--node", "92", "--image", str(zst), "--device", dev, "--yes")
        assert proc.returncode == 4, proc.stderr
        assert "not a removable disk" in proc.stderr and "--force" in proc.stderr
        proc = run_inv(
            "pi.flash", "--node", "92", "--image", str(zst), "--device", dev, "--yes", "--force"
        )
        assert proc.returncode == 0, proc.stderr
        assert "read back and verified" in proc.stdout
        with open(dev, "rb") as fh:
            assert fh.read(len(raw)) == raw
        assert hashlib.sha256(raw).hexdigest() in proc.stdout


def test_wrong_extract_sha256_never_writes_the_partition_table(
    talos_zst: tuple[bytes, Path],
) -> None:
    """A wrong image is caught before its first chunk lands: the card keeps no valid MBR/GPT."""
    from domum_tasks.errors import VerifyError
    from domum_tasks.pi.flash.write import CHUNK, write_image

    raw, zst = talos_zst
    with loop_device(zst.parent / "disk", 16) as dev:
        with open(dev, "r+b") as fh:
            fh.write(b"\xaa" * MIB)  # an old partition table that must be invalidated
        with pytest.raises(VerifyError, match="partition table was not written"):
            write_image(str(zst), dev, limit=16 * MIB, expected_sha256="0" * 64)
        with open(dev, "rb") as fh:
            first_chunk = fh.read(CHUNK)
            rest = fh.read(len(raw) - CHUNK)
        assert first_chunk == bytes(CHUNK)  # old table zeroed, new one held back
        assert rest == raw[CHUNK:]


def test_mounted_ext4_on_loop_is_refused(flash_env: Path, talos_zst: tuple[bytes, Path]) -> None:
    _raw, zst = talos_zst
    mnt = flash_env / "mnt"
    mnt.mkdir()
    with loop_device(flash_env / "disk", 16) as dev:
        _sh("mkfs.ext4", "-q", "-F", dev)
        _sh("mount", dev, str(mnt))
        try:
            (mnt / "precious").write_text("keep me")
            proc = run_inv(
                "pi.flash", "--node", "92", "--image", str(zst), "--device", dev, "--yes", "--force"
            )
            assert proc.returncode == 4
            assert f"mounted on {mnt}" in proc.stderr and "verified" not in proc.stdout
            assert (mnt / "precious").read_text() == "keep me"
        finally:
            _sh("umount", str(mnt))


def test_disk_with_mounted_partition_is_refused(
    flash_env: Path, talos_zst: tuple[bytes, Path]
) -> None:
    _raw, zst = talos_zst
    mnt = flash_env / "mnt"
    mnt.mkdir()
    with loop_device(flash_env / "disk", 32) as dev:
        layout = b"label: dos\nstart=2048, size=16384, type=c\nstart=18432, type=83\n"
        subprocess.run(["sfdisk", "-q", dev], input=layout, check=True, capture_output=True)
        subprocess.run(["partx", "-a", dev], check=True, capture_output=True)
        part = f"{dev}p2"
        _sh("mkfs.ext4", "-q", "-F", part)
        _sh("mount", part, str(mnt))
        try:
            proc = run_inv(
                "pi.flash", "--node", "92", "--image", str(zst), "--device", dev, "--yes", "--force"
            )
            assert proc.returncode == 4
            assert f"{part} mounted on {mnt}" in proc.stderr
            # Giving the partition itself is refused too.
            proc = run_inv(
                "pi.flash",
                "--node",
                "92",
                "--image",
                str(zst),
                "--device",
                f"{dev}p1",
                "--yes",
                "--force",
            )
            assert proc.returncode == 4 and "is a partition" in proc.stderr
        finally:
            _sh("umount", str(mnt))


def test_device_smaller_than_image_is_refused(
    flash_env: Path, talos_zst: tuple[bytes, Path]
) -> None:
    _raw, zst = talos_zst  # 6 MiB decompressed
    with loop_device(flash_env / "disk", 4) as dev:
        with open(dev, "r+b") as fh:
            fh.write(b"old data")
        proc = run_inv(
            "pi.flash", "--node", "92", "--image", str(zst), "--device", dev, "--yes", "--force"
        )
        assert proc.returncode == 4 and "too small" in proc.stderr
        with open(dev, "rb") as fh:
            assert fh.read(8) == b"old data"  # refused before writing anything


def test_raspios_on_loop_device_gets_cloud_init(
    flash_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = flash_env / "raspios.img"
    offset = rpios_like_image(img)
    xz = compress(img, "xz")

    def edit(d: dict[str, Any]) -> None:
        d["nodes"][93]["authorized_keys"] = [PUBKEY]

    write_inventory(flash_env, monkeypatch, edit)
    with loop_device(flash_env / "disk", 96) as dev:
        proc = run_inv(
            "pi.flash", "--node", "93", "--image", str(xz), "--device", dev, "--yes", "--force"
        )
        assert proc.returncode == 0, proc.stderr
        assert "first boot: meta-data, network-config, ssh, user-data" in proc.stdout
        assert PUBKEY in mtype(dev, offset, "user-data")
        subprocess.run(["partx", "-a", dev], check=True, capture_output=True)
        fsck = subprocess.run(["fsck.fat", "-n", f"{dev}p1"], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
