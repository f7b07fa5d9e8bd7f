"""Is this a disk image? `pi.flash` writes whole disks, so an image must start with a partition
table: an MBR (0x55AA signature and sane entries) or a GPT (protective MBR plus the `EFI PART`
header at LBA 1), and be at least 1 MiB. A text file, a lone partition or filesystem image, or a
truncated download is refused before anything is written (unless --force).
"""

from __future__ import annotations

import struct
from pathlib import Path

from .formats import file_format

MIN_IMAGE = 1 << 20
GPT_SIGNATURE = b"EFI PART"
_HEAD = MIN_IMAGE  # enough for the MBR, GPT headers of 512- and 4096-byte sectors, and the size


def read_head(path: Path, n: int = _HEAD) -> bytes | None:
    """The first `n` bytes of the image as it will be written (decompressed); None when the
    archive cannot be decoded (the write step then reports the corruption in its own words)."""
    from .write import decompressed_chunks

    out = bytearray()
    try:
        with open(path, "rb") as fh:
            for chunk in decompressed_chunks(fh, file_format(path)):
                out += chunk
                if len(out) >= n:
                    break
    except Exception:  # lzma/zstd/zlib each raise their own error type for a corrupt stream
        return None
    return bytes(out[:n])


def _mbr_partitions(sector: bytes) -> list[tuple[int, int, int]] | None:
    """(type, first LBA, sectors) of the used MBR entries; None if this is no partition table."""
    if len(sector) < 512 or sector[510:512] != b"\x55\xaa":
        return None
    used = []
    for i in range(4):
        entry = sector[446 + 16 * i : 462 + 16 * i]
        if entry[0] not in (0x00, 0x80):  # boot flag: anything else is boot code, not a table
            return None
        ptype = entry[4]
        start, count = struct.unpack("<II", entry[8:16])
        if ptype and count:
            used.append((ptype, start, count))
    return used or None


def describe(head: bytes) -> str:
    """What the start of the image looks like, for the refusal message."""
    if not head:
        return "an empty file"
    if head[:5] == b"%PDF-":
        return "a PDF document"
    text = head[:4096]
    if all(b in b"\t\n\r" or 32 <= b < 127 for b in text):
        first = text.split(b"\n", 1)[0][:40].decode("ascii", "replace")
        return f"text ({first!r}...)"
    if head[510:512] == b"\x55\xaa" and head[3:11].strip() in (
        b"mkfs.fat",
        b"MSDOS5.0",
        b"MSWIN4.1",
    ):
        return "a FAT filesystem (one partition, not a whole disk)"
    if len(head) > 1080 and head[1080:1082] == b"\x53\xef":
        return "an ext2/3/4 filesystem (one partition, not a whole disk)"
    return "no MBR or GPT partition table"


def image_problem(head: bytes) -> str | None:
    """Why `head` (the image's first MiB, shorter if the image is) is not a disk image, or None."""
    table = None
    parts = _mbr_partitions(head)
    if parts is not None:
        protective = [p for p in parts if p[0] == 0xEE]
        if protective:
            sector = 4096 if head[4096:4104] == GPT_SIGNATURE else 512
            table = "GPT" if head[sector : sector + 8] == GPT_SIGNATURE else None
            if table is None:
                return "a protective MBR without the GPT header behind it (truncated or damaged)"
        else:
            table = "MBR"
    if table is None:
        return describe(head)
    if len(head) < MIN_IMAGE:
        return f"only {len(head)} bytes with an {table} (a disk image is at least 1 MiB)"
    return None


def _looks_fat(sector: bytes) -> bool:
    """A FAT boot sector (BPB): signature, a power-of-two sector and cluster size, >= 1 FAT."""
    if len(sector) < 512 or sector[510:512] != b"\x55\xaa":
        return False
    per_sector = struct.unpack("<H", sector[11:13])[0]
    per_cluster, reserved, fats = sector[13], struct.unpack("<H", sector[14:16])[0], sector[16]
    power_of_two = per_cluster > 0 and per_cluster & (per_cluster - 1) == 0
    return per_sector in (512, 1024, 2048, 4096) and power_of_two and reserved >= 1 and fats >= 1


def boot_partition_problem(path: Path) -> str | None:
    """Why a Raspberry Pi OS image has no FAT boot partition for the first-boot files (checked
    before anything is written), or None. A corrupt archive is left to the write step."""
    from ...errors import VerifyError
    from .firstboot import first_partition

    head = read_head(path, 512)
    if head is None:
        return None
    try:
        offset, _size = first_partition(head)
    except VerifyError as exc:
        return str(exc)
    data = read_head(path, offset + 512)
    if data is None:
        return None
    if len(data) < offset + 512:
        return "partition 1 starts beyond the end of the image"
    if not _looks_fat(data[offset : offset + 512]):
        return "partition 1 is marked FAT but holds no FAT filesystem"
    return None


def refusal(path: Path, *, raspios: bool, force: bool) -> str | None:
    """Why `path` must not be written for this node (one line, nothing written yet), or None.
    --force allows a non-disk image; a Raspberry Pi OS node always needs its boot partition."""
    if not force:
        head = read_head(path)
        found = image_problem(head) if head is not None else None
        if found:
            return (
                f"{path}: not a disk image: found {found}; nothing was written "
                "(pass --force to write it anyway)"
            )
    if raspios:
        problem = boot_partition_problem(path)
        if problem:
            return (
                f"{path}: not a Raspberry Pi OS image: {problem}; the first-boot files need "
                "a FAT boot partition as partition 1; nothing was written"
            )
    return None
