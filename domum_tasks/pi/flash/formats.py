"""Image container formats: detection by magic bytes, and the decompressed size read from the
archive's own metadata without decompressing it (zstd frame headers, the xz index).

The size is what the "device smaller than the image" check needs before a single byte is
written. When an archive does not record it (gzip, zstd frames without a content size) the
answer is None, and the writer enforces the limit while streaming instead: it stops before
writing past the end of the device and fails with the same refusal.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

Format = Literal["xz", "zst", "gz", "raw"]

XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZ_MAGIC = b"\x1f\x8b"
_SKIPPABLE = range(0x184D2A50, 0x184D2A60)


class FormatError(ValueError):
    """The archive's structure is broken (truncated, bad footer, ...)."""


def detect_format(head: bytes) -> Format:
    """Format from the first bytes of a file; anything unknown is a raw image."""
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(ZSTD_MAGIC) or (
        len(head) >= 4 and struct.unpack("<I", head[:4])[0] in _SKIPPABLE
    ):
        return "zst"
    if head.startswith(GZ_MAGIC):
        return "gz"
    return "raw"


def file_format(path: str | os.PathLike[str]) -> Format:
    with open(path, "rb") as fh:
        return detect_format(fh.read(8))


def uncompressed_size(path: str | os.PathLike[str], fmt: Format | None = None) -> int | None:
    """Size of the decompressed image, or None when the archive does not say.

    Raises FormatError when the structure is visibly broken (a truncated download, for example).
    """
    fmt = fmt or file_format(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if fmt == "raw":
            return size
        if fmt == "xz":
            return _xz_size(fh, size)
        if fmt == "zst":
            return _zstd_size(fh, size)
    return None  # gzip's ISIZE is modulo 2**32 and per member: not trustworthy for disk images


# --- xz: walk the streams backwards through their footers and indexes -------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise FormatError("xz index: bad variable-length integer")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


@dataclass(frozen=True)
class XzBlock:
    """One xz block: where it is, and the stream header it belongs to (for check type)."""

    offset: int
    unpadded: int
    usize: int
    stream_header: bytes

    @property
    def span(self) -> int:
        return (self.unpadded + 3) & ~3


def xz_blocks(path: str | os.PathLike[str]) -> list[XzBlock]:
    """Every block of every stream, in file order, read from the indexes (FormatError if broken)."""
    with open(path, "rb") as fh:
        streams = _xz_walk(fh, os.fstat(fh.fileno()).st_size)
    out: list[XzBlock] = []
    for start, header, records in reversed(streams):
        offset = start + 12
        for unpadded, usize in records:
            out.append(XzBlock(offset, unpadded, usize, header))
            offset += (unpadded + 3) & ~3
    return out


def xz_block_stream(block: XzBlock, data: bytes) -> bytes:
    """A standalone one-block .xz stream around `data` (the block's bytes), so that any thread
    can decode and check it (block CRC, index, footer) with the plain lzma module."""
    index = bytearray(b"\0")
    for value in (1, block.unpadded, block.usize):
        while value >= 0x80:
            index.append((value & 0x7F) | 0x80)
            value >>= 7
        index.append(value)
    index += bytes(-len(index) % 4)
    index += struct.pack("<I", zlib.crc32(index))
    flags = block.stream_header[6:8]
    body = struct.pack("<I", len(index) // 4 - 1) + flags
    return (
        block.stream_header
        + data
        + bytes(index)
        + struct.pack("<I", zlib.crc32(body))
        + body
        + b"YZ"
    )


def _xz_size(fh: BinaryIO, end: int) -> int:
    return sum(u for _s, _h, records in _xz_walk(fh, end) for _p, u in records)


def _xz_walk(fh: BinaryIO, end: int) -> list[tuple[int, bytes, list[tuple[int, int]]]]:
    """(stream start, stream header, [(unpadded, uncompressed)...]) per stream, last first."""
    streams: list[tuple[int, bytes, list[tuple[int, int]]]] = []
    while end > 0:
        # Stream padding: zero bytes in multiples of four between or after streams.
        fh.seek(end - 4)
        while end >= 4 and fh.read(4) == b"\0\0\0\0":
            end -= 4
            fh.seek(end - 4)
        if end < 24:
            raise FormatError("xz: file too short for a stream header and footer")
        fh.seek(end - 12)
        footer = fh.read(12)
        if footer[10:12] != b"YZ":
            raise FormatError("xz: no stream footer at the end (truncated download?)")
        index_size = (struct.unpack("<I", footer[4:8])[0] + 1) * 4
        fh.seek(end - 12 - index_size)
        index = fh.read(index_size)
        if not index or index[0] != 0:
            raise FormatError("xz: bad index indicator")
        count, pos = _varint(index, 1)
        records: list[tuple[int, int]] = []
        for _ in range(count):
            unpadded, pos = _varint(index, pos)
            usize, pos = _varint(index, pos)
            records.append((unpadded, usize))
        end -= 12 + index_size + sum((u + 3) & ~3 for u, _ in records) + 12
        if end < 0:
            raise FormatError("xz: index describes more data than the file holds")
        fh.seek(end)
        header = fh.read(12)
        if header[:6] != XZ_MAGIC:
            raise FormatError("xz: stream header not where the index says")
        streams.append((end, header, records))
    return streams


# --- zstd: walk frames forwards, skipping blocks by their 3-byte headers ----------------------

_FCS_BYTES = (0, 2, 4, 8)
_DICT_BYTES = (0, 1, 2, 4)


def _zstd_size(fh: BinaryIO, end: int) -> int | None:
    total: int | None = 0
    pos = 0
    while pos < end:
        fh.seek(pos)
        head = fh.read(18)
        if len(head) < 4:
            raise FormatError("zstd: trailing garbage after the last frame")
        magic = struct.unpack("<I", head[:4])[0]
        if magic in _SKIPPABLE:
            pos += 8 + struct.unpack("<I", head[4:8])[0]
            continue
        if magic != 0xFD2FB528:
            raise FormatError(f"zstd: no frame magic at offset {pos}")
        fhd = head[4]
        single = bool(fhd & 0x20)
        fcs_len = _FCS_BYTES[fhd >> 6] or (1 if single else 0)
        off = 5 + (0 if single else 1) + _DICT_BYTES[fhd & 3]
        if fcs_len == 0:
            content: int | None = None
        else:
            raw = head[off : off + fcs_len]
            content = int.from_bytes(raw, "little") + (256 if fcs_len == 2 else 0)
        pos += off + fcs_len
        while True:  # blocks
            fh.seek(pos)
            bh = fh.read(3)
            if len(bh) < 3:
                raise FormatError("zstd: frame ends early (truncated download?)")
            word = int.from_bytes(bh, "little")
            last, btype, bsize = word & 1, (word >> 1) & 3, word >> 3
            if btype == 3:
                raise FormatError(f"zstd: reserved block type at offset {pos}")
            pos += 3 + (1 if btype == 1 else bsize)
            if pos > end:
                raise FormatError("zstd: frame ends early (truncated download?)")
            if last:
                break
        if fhd & 0x04:
            pos += 4  # content checksum
        if pos > end:
            raise FormatError("zstd: frame checksum missing (truncated download?)")
        total = None if total is None or content is None else total + content
    return total


def describe_size(path: Path) -> str:
    """Human text for notes: '512.0 MiB decompressed' or 'decompressed size unknown'."""
    try:
        size = uncompressed_size(path)
    except (FormatError, OSError) as exc:
        return f"unreadable ({exc})"
    return "decompressed size unknown" if size is None else f"{size / 2**20:.1f} MiB decompressed"
