"""Stream an image (xz, zst, gz or raw) onto a disk or into a file, and read it back.

Three threads, so that decompression, hashing and writing overlap on separate cores (lzma,
zstandard, zlib, hashlib and os.pwrite all release the GIL):

    decompress -> exact 4 MiB chunks -+-> sha256 of the decompressed stream
                                      +-> pwrite at the chunk's offset

Like rpi-imager, the first MiB and the last MiB of a disk are zeroed before streaming, and the
first chunk (partition table) is written last, after an fsync of everything else: a write cut
short leaves no valid partition table, old or new. Block devices are opened O_EXCL, so the
kernel refuses a device that something has mounted and udisks cannot mount it mid-write.
Read-back uses O_DIRECT (page cache bypassed) and falls back to dropping the cache first.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import lzma
import mmap
import os
import queue
import stat
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ... import progress
from ...errors import DomumError, Refused, VerifyError
from .facts import human
from .formats import (
    Format,
    FormatError,
    XzBlock,
    file_format,
    uncompressed_size,
    xz_block_stream,
    xz_blocks,
)

CHUNK = 4 << 20
MIB = 1 << 20
_QUEUE_DEPTH = 4
_MAX_PARALLEL_BLOCK = 64 << 20
_WRITEBACK_EVERY = 32 << 20
_sync_file_range: Any = None
_DONE = object()


@dataclass(frozen=True)
class WriteResult:
    nbytes: int
    sha256: str
    seconds: float
    fmt: Format

    @property
    def mib_per_s(self) -> float:
        return self.nbytes / MIB / self.seconds if self.seconds else 0.0


class _Corrupt(Exception):
    pass


def _fill(read_into: Callable[[memoryview], int]) -> Iterator[bytearray]:
    """Exact CHUNK-sized buffers from a readinto-style source (the last one may be shorter)."""
    while True:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        got = 0
        while got < CHUNK:
            n = read_into(view[got:])
            if not n:
                break
            got += n
        if got:
            yield buf if got == CHUNK else buf[:got]
        if got < CHUNK:
            return


def _stream_codec(fh: BinaryIO, new: Callable[[], Any]) -> Iterator[bytes]:
    """xz and gzip via decompressobj with a bounded output, across concatenated members."""
    dec = new()
    pending = b""
    out: list[bytes] = []
    have = 0
    while True:
        if dec.eof:
            pending = dec.unused_data + pending
            if not pending:
                pending = fh.read(1 << 16)
                if not pending:
                    break
            dec = new()
        if not pending and getattr(dec, "needs_input", True):
            pending = fh.read(1 << 16)
            if not pending:
                raise _Corrupt("archive ends before its end-of-stream marker (truncated?)")
        data = dec.decompress(pending, CHUNK - have)
        pending = getattr(dec, "unconsumed_tail", b"")  # zlib keeps input beyond max_length
        if data:
            out.append(data)
            have += len(data)
            if have == CHUNK:
                yield b"".join(out)
                out, have = [], 0
    if have:
        yield b"".join(out)


def _rechunk(pieces: Iterator[bytes]) -> Iterator[bytearray]:
    """Re-cut arbitrary pieces into exact CHUNK-sized buffers (one copy)."""
    buf, have = bytearray(CHUNK), 0
    for piece in pieces:
        view = memoryview(piece)
        while view:
            take = min(len(view), CHUNK - have)
            buf[have : have + take] = view[:take]
            have += take
            view = view[take:]
            if have == CHUNK:
                yield buf
                buf, have = bytearray(CHUNK), 0
    if have:
        yield buf[:have]


def _xz_parallel(src: str, blocks: list[XzBlock], workers: int) -> Iterator[bytes]:
    """Decode independent xz blocks on several threads (as `xz -T0` does), yielded in order."""
    from concurrent.futures import Future, ThreadPoolExecutor

    fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)

    def decode(block: XzBlock) -> bytes:
        data = os.pread(fd, block.span, block.offset)
        out = lzma.decompress(xz_block_stream(block, data), format=lzma.FORMAT_XZ)
        if len(out) != block.usize:
            raise _Corrupt(
                f"block at offset {block.offset}: {len(out)} bytes, index says {block.usize}"
            )
        return out

    pending: collections.deque[Future[bytes]] = collections.deque()
    it = iter(blocks)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="xz") as pool:
            for block in it:
                pending.append(pool.submit(decode, block))
                if len(pending) >= workers * 2:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        os.close(fd)


def decompressed_chunks(
    fh: BinaryIO, fmt: Format, *, src: str = "", workers: int = 0
) -> Iterator[bytes | bytearray]:
    workers = workers or min(4, os.cpu_count() or 1)
    if fmt == "xz" and src and workers > 1:
        try:
            blocks = xz_blocks(src)
        except FormatError as exc:
            raise _Corrupt(str(exc)) from None
        # Multi-block files (xz -T) decode in parallel; keep memory bounded for huge blocks.
        if len(blocks) > 1 and max(b.usize for b in blocks) <= _MAX_PARALLEL_BLOCK:
            return _rechunk(_xz_parallel(src, blocks, workers))
    if fmt == "raw":
        return _fill(fh.readinto)  # type: ignore[attr-defined]
    if fmt == "zst":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
        return _fill(reader.readinto)
    if fmt == "xz":
        return _stream_codec(fh, lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ))
    return _stream_codec(fh, lambda: zlib.decompressobj(wbits=31))


def _producer(src: str, fmt: Format, queues: list[queue.Queue[Any]], stop: threading.Event) -> None:
    def put(item: object) -> None:
        for q in queues:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue

    try:
        with open(src, "rb") as fh:
            for chunk in decompressed_chunks(fh, fmt, src=src):
                if stop.is_set():
                    return
                put(chunk)
        put(_DONE)
    except BaseException as exc:
        put(exc)


def _hasher(q: queue.Queue[Any], h: Any, errors: list[BaseException]) -> None:
    while True:
        item = q.get()
        if item is _DONE:
            return
        if isinstance(item, BaseException):
            errors.append(item)
            return
        h.update(item)


def open_target(dest: str) -> tuple[int, bool]:
    """(fd, is_block). Block devices exclusively; files are created or truncated."""
    try:
        if os.path.exists(dest) and stat.S_ISBLK(os.stat(dest).st_mode):
            return os.open(dest, os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC), True
        return os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644), False
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise Refused(
                f"{dest}: device is busy (mounted or in use by another process)"
            ) from None
        raise DomumError(f"{dest}: cannot open for writing: {exc.strerror}") from None


def write_image(
    src: str,
    dest: str,
    *,
    limit: int | None = None,
    show_progress: bool | None = None,
    fsync: bool = True,
    expected_sha256: str | None = None,
) -> WriteResult:
    """Decompress `src` onto `dest`; return bytes written and sha256 of the decompressed stream.

    `limit` is the device size: the write stops before passing it (Refused). A corrupt or
    truncated archive raises VerifyError; for a regular-file target the partial file is removed.
    With `expected_sha256`, a mismatch is raised before the first chunk (the partition table)
    is written, so a wrong image never leaves a bootable-looking card.
    """
    fmt = file_format(src)
    try:
        expected = uncompressed_size(src, fmt)
    except FormatError as exc:
        raise VerifyError(f"{src}: corrupt {fmt} archive: {exc}") from None
    if limit is not None and expected is not None and expected > limit:
        raise Refused(f"{dest}: too small: {human(limit)} < image {human(expected)} decompressed")
    start = time.monotonic()
    fd, is_block = open_target(dest)
    ok = False
    try:
        sha, nbytes = _stream(
            src, fmt, fd, is_block, limit, expected, show_progress, dest, expected_sha256
        )
        if fsync:
            os.fsync(fd)
        ok = True
    finally:
        os.close(fd)
        if not ok and not is_block:
            # A half-written image file must not look like a good one.
            with _suppress():
                os.unlink(dest)
    if expected is not None and nbytes != expected:
        raise VerifyError(f"{src}: decompressed to {nbytes} bytes, the archive says {expected}")
    return WriteResult(nbytes, sha, time.monotonic() - start, fmt)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _stream(
    src: str,
    fmt: Format,
    fd: int,
    is_block: bool,
    limit: int | None,
    expected: int | None,
    show_progress: bool | None,
    dest: str,
    expected_sha256: str | None = None,
) -> tuple[str, int]:
    if is_block and limit and limit >= 2 * MIB:
        # Invalidate the old partition tables (MBR/GPT at the start, backup GPT at the end).
        os.pwrite(fd, bytes(MIB), 0)
        os.pwrite(fd, bytes(MIB), limit - MIB)
    hq: queue.Queue[Any] = queue.Queue(_QUEUE_DEPTH)
    wq: queue.Queue[Any] = queue.Queue(_QUEUE_DEPTH)
    stop = threading.Event()
    h = hashlib.sha256()
    hash_errors: list[BaseException] = []
    producer = threading.Thread(target=_producer, args=(src, fmt, [wq, hq], stop), daemon=True)
    hasher = threading.Thread(target=_hasher, args=(hq, h, hash_errors), daemon=True)
    producer.start()
    hasher.start()
    offset = 0
    first: bytes | bytearray | None = None
    try:
        with progress.bar(f"write {os.path.basename(dest)}", expected, show=show_progress) as adv:
            while True:
                item = wq.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                if limit is not None and offset + len(item) > limit:
                    raise Refused(
                        f"{dest}: too small: the image is larger than the device ({human(limit)})"
                    )
                if offset == 0:
                    first = item  # written last, after everything else is on the disk
                else:
                    _pwrite_all(fd, item, offset)
                offset += len(item)
                if offset % _WRITEBACK_EVERY == 0:
                    _start_writeback(fd, offset - _WRITEBACK_EVERY, _WRITEBACK_EVERY)
                adv(len(item))
        if first is not None:
            os.fsync(fd)  # flushes while the hasher finishes its queue
        hasher.join()
        if hash_errors:
            raise hash_errors[0]
        if expected_sha256 and h.hexdigest() != expected_sha256:
            raise VerifyError(
                f"{src}: decompressed image sha256 {h.hexdigest()} does not match the expected "
                f"{expected_sha256}; the partition table was not written"
            )
        if first is not None:
            _pwrite_all(fd, first, 0)
    except (lzma.LZMAError, zlib.error, EOFError, _Corrupt) as exc:
        raise VerifyError(f"{src}: corrupt {fmt} archive: {exc}") from None
    except Exception as exc:
        if type(exc).__name__ == "ZstdError":
            raise VerifyError(f"{src}: corrupt zst archive: {exc}") from None
        if isinstance(exc, OSError):
            raise DomumError(f"{dest}: write failed at byte {offset}: {exc.strerror}") from None
        raise
    finally:
        stop.set()
        producer.join(timeout=5)
    return h.hexdigest(), offset


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a finished range now (sync_file_range WRITE, async),
    so dirty pages do not pile up and the final fsync has little left to do."""
    global _sync_file_range
    if _sync_file_range is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.sync_file_range
            fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            _sync_file_range = fn
        except (OSError, AttributeError):
            _sync_file_range = False
    if _sync_file_range:
        _sync_file_range(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE


def _pwrite_all(fd: int, data: bytes | bytearray, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def read_back_sha256(dest: str, nbytes: int, *, show_progress: bool | None = None) -> str:
    """sha256 of the first `nbytes` of `dest`, read from the medium rather than the page cache."""
    h = hashlib.sha256()
    buf = mmap.mmap(-1, CHUNK)  # page-aligned, as O_DIRECT requires
    try:
        fd = os.open(dest, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_DIRECT", 0))
        direct = True
    except OSError:
        fd = os.open(dest, os.O_RDONLY | os.O_CLOEXEC)
        direct = False
    try:
        if not direct:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        done = 0
        with progress.bar(f"verify {os.path.basename(dest)}", nbytes, show=show_progress) as adv:
            while done < nbytes:
                try:
                    got = os.preadv(fd, [buf], done)
                except OSError as exc:
                    if exc.errno != errno.EINVAL or not direct:
                        raise
                    # Filesystem without O_DIRECT support: drop the cache and read normally.
                    os.close(fd)
                    fd = os.open(dest, os.O_RDONLY | os.O_CLOEXEC)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    direct = False
                    continue
                if got <= 0:
                    break
                take = min(got, nbytes - done)
                h.update(memoryview(buf)[:take])
                done += take
                adv(take)
        if done < nbytes:
            raise VerifyError(f"{dest}: read back only {done} of {nbytes} bytes")
        return h.hexdigest()
    finally:
        os.close(fd)
        buf.close()
