"""First-boot customisation of a Raspberry Pi OS image, written into its FAT boot partition
without mounting it (pyfatfs at the partition's offset, found in the MBR).

The files (cloud-init NoCloud user-data, network-config, meta-data, ssh) come from cloudinit.py;
`ds=nocloud;i=<instance-id>` is appended to cmdline.txt as rpi-imager does. Older images that
use `firstrun.sh` (bookworm) are not handled.
"""

from __future__ import annotations

import os
import struct

from ...errors import VerifyError
from .cloudinit import FirstBoot, for_node, from_inventory

__all__ = ["FirstBoot", "customize", "first_partition", "for_node", "from_inventory"]

FAT_TYPES = {0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E, 0xEF}


def first_partition(mbr: bytes) -> tuple[int, int]:
    """(byte offset, byte size) of partition 1 from an MBR sector; it must be FAT."""
    if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
        raise VerifyError("no MBR partition table (not a Raspberry Pi OS image?)")
    entry = mbr[446:462]
    ptype = entry[4]
    start, sectors = struct.unpack("<II", entry[8:16])
    if ptype not in FAT_TYPES or not sectors:
        raise VerifyError(f"partition 1 is type 0x{ptype:02x}, not a FAT boot partition")
    return start * 512, sectors * 512


def customize(device: str, boot: FirstBoot) -> dict[str, int]:
    """Write the first-boot files into partition 1 of `device`, then read them back."""
    from pyfatfs.PyFatFS import PyFatFS

    with open(device, "rb") as fh:
        offset, _size = first_partition(fh.read(512))
    files = boot.files()
    try:
        fs = PyFatFS(device, offset=offset, preserve_case=True)
    except Exception as exc:  # pyfatfs raises its own and builtin errors for a damaged FAT
        raise VerifyError(
            f"{device}: partition 1 holds no readable FAT filesystem "
            f"({type(exc).__name__}: {exc}); first-boot files not written"
        ) from None
    try:
        existing = {name.lower(): name for name in fs.listdir("/")}
        for name, content in files.items():
            fs.writebytes(f"/{existing.get(name.lower(), name)}", content.encode())
        cmdline_name = existing.get("cmdline.txt")
        if cmdline_name:
            cmdline = fs.readbytes(f"/{cmdline_name}").decode().strip()
            ds = f"ds=nocloud;i={boot.instance_id(files['user-data'] + files['network-config'])}"
            words = [w for w in cmdline.split() if not w.startswith("ds=nocloud")]
            fs.writebytes(f"/{cmdline_name}", (" ".join([*words, ds]) + "\n").encode())
    finally:
        fs.close()
    _invalidate_fsinfo(device, offset)
    # Read back through a fresh reader: what the Pi will see.
    fs = PyFatFS(device, offset=offset, preserve_case=True, read_only=True)
    try:
        for name, content in files.items():
            if fs.readbytes(f"/{name}") != content.encode():
                raise VerifyError(f"{device}: boot partition file {name} reads back differently")
    finally:
        fs.close()
    return {name: len(content) for name, content in files.items()}


def _invalidate_fsinfo(device: str, offset: int) -> None:
    """pyfatfs does not maintain FAT32's FSInfo free-cluster hint, so mark it unknown
    (0xFFFFFFFF, allowed by the FAT spec): the OS recounts instead of trusting a stale value."""
    with open(device, "r+b") as fh:
        fh.seek(offset)
        boot = fh.read(512)
        bytes_per_sector = struct.unpack("<H", boot[11:13])[0] or 512
        fat16_size = struct.unpack("<H", boot[22:24])[0]
        if fat16_size:  # FAT12/16: no FSInfo
            return
        fsinfo, backup = struct.unpack("<HH", boot[48:52])
        for sector in {fsinfo, backup + fsinfo if backup else fsinfo}:
            if sector in (0, 0xFFFF):
                continue
            pos = offset + sector * bytes_per_sector
            fh.seek(pos)
            info = fh.read(512)
            if info[:4] == b"RRaA" and info[484:488] == b"rrAa":
                fh.seek(pos + 488)
                fh.write(b"\xff\xff\xff\xff\xff\xff\xff\xff")  # free count, next free
        fh.flush()
        os.fsync(fh.fileno())
