"""Fixtures for the pi.flash tests: a loopback HTTP server with Range support and connection
cuts, image builders (Talos-like raw data, a Raspberry Pi OS-like MBR + FAT image), and an
inventory copy that points at them. Imported by the test_pi_flash_* modules."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = REPO / "tests" / "data" / "loopback.yaml"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFlashTestKeyFlashTestKeyFlashTestKey00 test@domum"
MIB = 1 << 20


@dataclass
class Served:
    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, list[int]] = field(default_factory=dict)  # path -> byte counts per GET
    log: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header)
    base: str = ""


def _handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            # The Image Factory's POST /schematics: its id is the sha256 of the canonical YAML
            # (Domum posts that text; image-factory pkg/schematic/schematic.go ID()).
            body = self.rfile.read(int(self.headers["Content-Length"]))
            served.log.append((self.path, "POST"))
            if self.path != "/schematics":
                self.send_error(404)
                return
            data = json.dumps({"id": hashlib.sha256(body).hexdigest()}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            rng = self.headers.get("Range", "")
            served.log.append((self.path, rng))
            data = served.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            if rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            cuts = served.cut_after.get(self.path)
            if cuts:
                # Simulate a dropped connection: promise everything, send part, hang up.
                self.wfile.write(body[: cuts.pop(0)])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def http_server() -> Iterator[Served]:
    served = Served()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    served.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()


def gpt_head(size_mib: int) -> bytes:
    """A protective MBR (one 0xEE entry over the disk) and the `EFI PART` GPT header at LBA 1,
    as the Talos metal images start (the CRCs are not checked by pi.flash, so left zero)."""
    mbr = bytearray(512)
    mbr[446 + 4] = 0xEE
    mbr[446 + 8 : 446 + 16] = struct.pack("<II", 1, size_mib * 2048 - 1)
    mbr[510:512] = b"\x55\xaa"
    header = b"EFI PART" + struct.pack("<I", 0x00010000) + bytes(500)
    return bytes(mbr) + header


def talos_like_raw(size_mib: int = 6, seed: int = 1) -> bytes:
    """A GPT, then mixed zero / random / repetitive blocks, like a real disk image."""
    rng = random.Random(seed)
    out = bytearray(gpt_head(size_mib))
    out += bytes(MIB // 4 - len(out))
    for i in range(1, size_mib * 4):
        kind = i % 3
        if kind == 0:
            out += bytes(MIB // 4)
        elif kind == 1:
            out += rng.randbytes(MIB // 4)
        else:
            line = b"talos block %d\n" % i
            out += (line * (MIB // 4 // len(line) + 1))[: MIB // 4]
    return bytes(out)


def compress(raw: Path, fmt: str) -> Path:
    """Compress with the real CLI tools (multi-block xz via -T0 --block-size)."""
    if fmt == "xz":
        subprocess.run(["xz", "-T2", "--block-size=1MiB", "-1", "-k", "-f", str(raw)], check=True)
        return raw.with_name(raw.name + ".xz")
    if fmt == "zst":
        subprocess.run(["zstd", "-q", "-f", str(raw), "-o", f"{raw}.zst"], check=True)
        return raw.with_name(raw.name + ".zst")
    subprocess.run(["gzip", "-k", "-f", str(raw)], check=True)
    return raw.with_name(raw.name + ".gz")


def rpios_like_image(path: Path, size_mib: int = 72) -> int:
    """An MBR image with a FAT32 boot partition (cmdline.txt, config.txt) and a Linux partition.

    Returns the byte offset of partition 1. The mkfs.fat block count is in KiB (notes pitfall).
    """
    for tool in ("sfdisk", "mkfs.fat", "mcopy"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (apt-get install fdisk dosfstools mtools)")
    with open(path, "wb") as fh:
        fh.truncate(size_mib * MIB)
    start, sectors = 2048, 64 * MIB // 512  # FAT32 needs >= 65525 clusters
    layout = f"label: dos\nstart={start}, size={sectors}, type=c, bootable\nstart={start + sectors}, type=83\n"
    subprocess.run(["sfdisk", "-q", str(path)], input=layout.encode(), check=True)
    subprocess.run(
        [
            "mkfs.fat",
            "-F",
            "32",
            "-s",
            "1",
            "-n",
            "BOOTFS",
            "--offset",
            str(start),
            str(path),
            str(sectors // 2),
        ],
        check=True,
        capture_output=True,
    )
    offset = start * 512
    src = path.parent / "bootfiles"
    src.mkdir(exist_ok=True)
    (src / "cmdline.txt").write_text("console=serial0,115200 root=PARTUUID=abcd-02 rootwait\n")
    (src / "config.txt").write_text("arm_64bit=1\n")
    subprocess.run(
        [
            "mcopy",
            "-o",
            "-i",
            f"{path}@@{offset}",
            str(src / "cmdline.txt"),
            str(src / "config.txt"),
            "::/",
        ],
        check=True,
    )
    # Some recognisable data in the root partition.
    with open(path, "r+b") as fh:
        fh.seek((start + sectors) * 512)
        fh.write(random.Random(7).randbytes(2 * MIB))
    return offset


def mtype(image: str, offset: int, name: str) -> str:
    out = subprocess.run(
        ["mtype", "-i", f"{image}@@{offset}", f"::/{name}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def write_inventory(tmp: Path, monkeypatch: pytest.MonkeyPatch, edit: Any) -> Path:
    """A copy of the loopback inventory with `edit(data)` applied, selected via DOMUM_INVENTORY."""
    data = yaml.safe_load(LOOPBACK.read_text())
    edit(data)
    path = tmp / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("DOMUM_INVENTORY", str(path))
    return path


@pytest.fixture
def flash_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated cache (conftest sets DOMUM_CACHE_DIR) and a repo root of its own, so the lock
    file is `<tmp>/config/images.lock`."""
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(tmp_path))
    return tmp_path


def run_inv(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `inv` CLI (exit codes and output as a user sees them)."""
    return subprocess.run(
        [shutil.which("inv") or "inv", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
    )
