"""The shared downloader (domum_tasks.download) against loopback HTTP: the sha256 it returns
across resumes (in the same call and in a later one), redirects, HTTP errors, and the small
document fetch used for checksum files."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from domum_tasks import download
from domum_tasks.errors import ConfigError, DomumError
from tests import pi_flash_support as support
from tests.pi_flash_support import Served

http_server = support.http_server  # fixture

DATA = os.urandom(700_000)
SHA = hashlib.sha256(DATA).hexdigest()


def test_cut_connections_are_resumed_and_the_hash_covers_the_whole_file(
    http_server: Served, tmp_path: Path
) -> None:
    http_server.files["/f"] = DATA
    http_server.cut_after["/f"] = [200_000, 150_000]
    part = tmp_path / "f.part"
    assert download.download(http_server.base + "/f", part, show_progress=False) == SHA
    assert part.read_bytes() == DATA
    ranges = [r for _p, r in http_server.log]
    assert ranges[0] == "" and all(r.startswith("bytes=") for r in ranges[1:]) and len(ranges) == 3


def test_part_kept_after_failing_attempts_is_resumed_by_a_later_call(
    http_server: Served, tmp_path: Path
) -> None:
    http_server.files["/f"] = DATA
    http_server.cut_after["/f"] = [100_000, 100_000]
    part = tmp_path / "f.part"
    with pytest.raises(DomumError, match="after 2 attempts") as err:
        download.download(http_server.base + "/f", part, show_progress=False, retries=2)
    assert err.value.hint == "run again to resume" and "\n" not in err.value.message
    kept = part.stat().st_size
    assert 0 < kept <= 200_000
    # A new call hashes the kept bytes first, then only the rest comes over the network.
    assert download.download(http_server.base + "/f", part, show_progress=False) == SHA
    assert http_server.log[-1][1] == f"bytes={kept}-"


def test_complete_part_is_not_downloaded_again(http_server: Served, tmp_path: Path) -> None:
    http_server.files["/f"] = DATA
    part = tmp_path / "f.part"
    part.write_bytes(DATA)
    assert download.download(http_server.base + "/f", part, show_progress=False) == SHA
    assert http_server.log == [("/f", f"bytes={len(DATA)}-")]  # answered 416: nothing sent


def test_http_error_is_one_line_and_not_retried(http_server: Served, tmp_path: Path) -> None:
    with pytest.raises(DomumError) as err:
        download.download(http_server.base + "/missing", tmp_path / "m.part", show_progress=False)
    assert "HTTP 404" in str(err.value) and "/missing" in str(err.value)
    assert len(http_server.log) == 1 and not (tmp_path / "m.part").exists()
    with pytest.raises(DomumError, match="HTTP 404"):
        download.fetch_bytes(http_server.base + "/missing")


def test_fetch_bytes_reads_at_most_limit(http_server: Served) -> None:
    http_server.files["/sums"] = DATA
    assert download.fetch_bytes(http_server.base + "/sums", limit=1000) == DATA[:1000]


@pytest.fixture
def redirector(http_server: Served) -> Iterator[str]:
    """/ok redirects to the data server (loopback), /away to a non-loopback http URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            target = {"/ok": http_server.base + "/f", "/away": "http://example.invalid/f"}
            self.send_response(302)
            self.send_header("Location", target[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_redirects_are_checked_before_they_are_followed(
    redirector: str, http_server: Served, tmp_path: Path
) -> None:
    http_server.files["/f"] = DATA
    assert download.download(redirector + "/ok", tmp_path / "a.part", show_progress=False) == SHA
    with pytest.raises(ConfigError, match=r"refusing to download from http://example\.invalid/f"):
        download.download(redirector + "/away", tmp_path / "b.part", show_progress=False)
    assert not (tmp_path / "b.part").exists()


def test_progress_bar_goes_to_stderr(
    http_server: Served, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    http_server.files["/f"] = DATA
    download.download(http_server.base + "/f", tmp_path / "f.part", label="img", show_progress=True)
    out, err = capfd.readouterr()
    assert out == "" and "download img" in err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_errors_are_short_and_name_no_missing_part(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there: refused
    part = tmp_path / "x.part"
    with pytest.raises(DomumError) as err:
        download.download(f"http://127.0.0.1:{port}/x", part, show_progress=False, retries=2)
    message = err.value.message
    assert message == (
        f"http://127.0.0.1:{port}/x: download failed after 2 attempts "
        f"(connection refused by 127.0.0.1:{port})"
    )
    assert err.value.hint == "" and not part.exists()
    with pytest.raises(DomumError) as err:
        download.fetch_bytes(f"http://127.0.0.1:{port}/sums")
    assert err.value.message.endswith(f"connection refused by 127.0.0.1:{port}")
    assert "HTTPConnectionPool" not in err.value.message
