"""HTTP downloads shared by pi.flash (images) and tools.install (CLI releases).

* Only https, or plain http to loopback (tests, a mirror on this machine): `check_url`, also
  applied to every redirect before it is followed.
* `download(url, part)` streams into a `.part` file and returns the sha256 of the complete
  file. An existing `.part` is resumed with an HTTP Range request; a connection cut mid-way is
  retried (RETRIES times per call) from where it stopped, and what was received is kept for the
  next run. The caller verifies the hash and renames the file into place.
* Failures are one-line DomumErrors (exit 1); a disallowed URL is a ConfigError (exit 2).

requests is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlparse

from . import progress
from .errors import ConfigError, DomumError

if TYPE_CHECKING:
    from _hashlib import HASH

RETRIES = 3
NET_BLOCK = 64 << 10  # small reads: a cut connection loses at most one read's worth of data
FILE_BLOCK = 4 << 20
# identity: a gzip Content-Encoding would make Content-Length disagree with the bytes written.
HEADERS = {"User-Agent": "domum", "Accept-Encoding": "identity"}


def check_url(url: str) -> None:
    """https only; plain http is allowed to loopback (tests, local mirrors on this machine)."""
    parts = urlparse(url)
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if parts.scheme == "http" and loopback:
        return
    raise ConfigError(f"refusing to download from {url}: only https (or http to loopback)")


def sha256_file(path: Path, *, show_progress: bool | None = None, label: str = "") -> str:
    """sha256 hex of a whole file, with a progress bar on a terminal."""
    return _hash_prefix(path, path.stat().st_size, show_progress, label).hexdigest()


def fetch_bytes(url: str, *, limit: int = 1 << 20, timeout_s: float = 30.0) -> bytes:
    """A small document (a checksum file): at most `limit` bytes of the body."""
    import requests

    check_url(url)
    try:
        with _get(url, HEADERS, timeout_s) as resp:
            _check_response(url, resp)
            body = b""
            for block in resp.iter_content(NET_BLOCK):
                body += block
                if len(body) >= limit:
                    break
            return body[:limit]
    except requests.RequestException as exc:
        raise DomumError(f"download failed: {url}: {_describe(exc)}") from None


def http_get(
    url: str,
    headers: dict[str, str] | None = None,
    *,
    limit: int = 1 << 20,
    timeout_s: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """GET a document whatever the status (an OCI registry answers 401 with the token realm):
    (status, response headers, at most `limit` bytes of the body). Redirects are checked."""
    import requests

    check_url(url)
    try:
        with _get(url, {**HEADERS, **(headers or {})}, timeout_s) as resp:
            chunks: list[bytes] = []
            size = 0
            for block in resp.iter_content(NET_BLOCK):
                chunks.append(block)
                size += len(block)
                if size > limit:
                    raise DomumError(f"download failed: {url}: larger than {limit} bytes")
            return resp.status_code, dict(resp.headers), b"".join(chunks)
    except requests.RequestException as exc:
        raise DomumError(f"download failed: {url}: {_describe(exc)}") from None


def post(
    url: str, body: bytes, *, content_type: str, timeout_s: float = 30.0, limit: int = 1 << 20
) -> tuple[int, bytes]:
    """POST a small document (an Image Factory schematic): (HTTP status, at most `limit` bytes
    of the answer). No redirects are followed: a POST is not repeated elsewhere."""
    import requests

    check_url(url)
    headers = {**HEADERS, "Content-Type": content_type}
    try:
        with requests.post(
            url, data=body, headers=headers, timeout=timeout_s, allow_redirects=False, stream=True
        ) as resp:
            answer = b""
            for block in resp.iter_content(NET_BLOCK):
                answer += block
                if len(answer) >= limit:
                    break
            return resp.status_code, answer[:limit]
    except requests.RequestException as exc:
        raise DomumError(f"{url} unreachable: {_describe(exc)}") from None


def ping(
    url: str, body: bytes = b"", *, headers: dict[str, str] | None = None, timeout_s: float = 10.0
) -> int:
    """POST a monitoring ping (healthchecks, ntfy, Uptime Kuma): the HTTP status. Short timeout,
    no redirects; the caller decides what a failure means (for backups: a warning only)."""
    import requests

    check_url(url)
    try:
        resp = requests.post(
            url,
            data=body,
            headers={**HEADERS, **(headers or {})},
            timeout=timeout_s,
            allow_redirects=False,
        )
        resp.close()
        return int(resp.status_code)
    except requests.RequestException as exc:
        raise DomumError(f"unreachable: {_describe(exc)}") from None


def download(
    url: str,
    part: Path,
    *,
    label: str = "",
    show_progress: bool | None = None,
    timeout_s: float = 30.0,
    retries: int = RETRIES,
) -> str:
    """Download (or resume) `url` into `part`; the sha256 hex of the complete file."""
    check_url(url)
    label = label or part.name.removesuffix(".part")
    state = _State()
    last_error = ""
    for _attempt in range(retries):
        try:
            return _attempt_once(url, part, state, label, show_progress, timeout_s)
        except _Retryable as exc:
            last_error = str(exc)
    have = part.stat().st_size if part.exists() else 0
    if not have:  # nothing received: no .part to speak of
        raise DomumError(f"{url}: download failed after {retries} attempts ({last_error})")
    raise DomumError(
        f"{url}: download failed after {retries} attempts ({last_error}); "
        f"{have} bytes kept in {part}",
        hint="run again to resume",
    )


class _Retryable(Exception):
    pass


class _State:
    """The hash of the bytes already in the `.part`, so a retry does not re-read them."""

    def __init__(self) -> None:
        self.hasher: HASH | None = None
        self.size = 0


def _attempt_once(
    url: str, part: Path, state: _State, label: str, show: bool | None, timeout_s: float
) -> str:
    import requests

    have = part.stat().st_size if part.exists() else 0
    headers = {**HEADERS, "Range": f"bytes={have}-"} if have else HEADERS
    try:
        with _get(url, headers, timeout_s) as resp:
            if resp.status_code == 416:  # the .part is complete (or longer than the file)
                if _total_from_range(resp.headers.get("Content-Range", "")) == have:
                    return _prefix(part, have, state, show, label).hexdigest()
                part.unlink(missing_ok=True)
                raise _Retryable("server refused the resume range; starting over")
            _check_response(url, resp)
            if resp.status_code == 200:
                have = 0  # the server ignored Range: start from scratch
            h = _prefix(part, have, state, show, label)
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            with (
                open(part, "ab" if have else "wb") as fh,
                progress.bar(f"download {label}", total, show=show, done=have) as adv,
            ):
                for block in resp.iter_content(NET_BLOCK):
                    fh.write(block)
                    h.update(block)
                    state.size += len(block)
                    adv(len(block))
                fh.flush()
                os.fsync(fh.fileno())
    except requests.RequestException as exc:
        raise _Retryable(_describe(exc)) from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Retryable(f"connection closed at {size} of {total} bytes")
    return h.hexdigest()


def _prefix(part: Path, have: int, state: _State, show: bool | None, label: str) -> HASH:
    """The hasher covering the first `have` bytes of `part` (reused when it already does)."""
    if state.hasher is None or state.size != have:
        state.hasher = (
            _hash_prefix(part, have, show, f"check {label}") if have else hashlib.sha256()
        )
        state.size = have
    return state.hasher


def _hash_prefix(path: Path, nbytes: int, show: bool | None, label: str) -> HASH:
    h = hashlib.sha256()
    left = nbytes
    with (
        open(path, "rb") as fh,
        progress.bar(label or f"check {path.name}", nbytes, show=show) as adv,
    ):
        while left > 0 and (block := fh.read(min(FILE_BLOCK, left))):
            h.update(block)
            left -= len(block)
            adv(len(block))
    return h


def _get(url: str, headers: dict[str, str], timeout_s: float) -> Any:
    import requests

    hooks = {"response": _check_redirect}
    return requests.get(url, headers=headers, stream=True, timeout=timeout_s, hooks=hooks)


def _check_redirect(resp: Any, *args: Any, **kwargs: Any) -> None:
    """Runs on every response before requests follows it: a redirect must stay allowed too."""
    if resp.is_redirect:
        try:
            check_url(urljoin(resp.url, resp.headers["location"]))
        except ConfigError:
            resp.close()
            raise


def _check_response(url: str, resp: Any) -> None:
    """Only a full (200) or partial (206) body is a download; anything else stops here."""
    if resp.status_code not in (200, 206):
        raise DomumError(f"download failed: {url}: HTTP {resp.status_code} {resp.reason}")


def _causes(exc: BaseException) -> list[BaseException]:
    """exc and what it wraps: requests -> urllib3 MaxRetryError.reason -> the socket error."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [getattr(e, "reason", None), e.__cause__, e.__context__]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return seen


def _describe(exc: Exception) -> str:
    """One short line a person can act on, instead of urllib3's pool-and-retry text."""
    import socket

    import requests

    causes = _causes(exc)
    names = {type(c).__name__ for c in causes}
    request = getattr(exc, "request", None)
    host = urlparse(str(getattr(request, "url", "") or "")).netloc
    where = f" {host}" if host else ""
    if isinstance(exc, requests.exceptions.SSLError) or "SSLError" in names:
        ssl_err = next((c for c in causes if type(c).__name__ == "SSLCertVerificationError"), None)
        why = getattr(ssl_err, "verify_message", "") or "handshake failed"
        return f"TLS error talking to{where}: {why}"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"timed out connecting to{where}"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"timed out waiting for{where} to send data"
    if "NameResolutionError" in names or any(isinstance(c, socket.gaierror) for c in causes):
        return f"cannot resolve{where or ' the host'} (DNS)"
    for c in causes:
        if isinstance(c, ConnectionRefusedError):
            return f"connection refused by{where}"
        if isinstance(c, OSError) and c.strerror:
            return f"cannot connect to{where}: {c.strerror.lower()}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "ProtocolError" in names:
        return "the connection was cut mid-transfer"
    first = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {first[:160]}"


def _total_from_range(header: str) -> int | None:
    total = header.rpartition("/")[2]
    return int(total) if total.isdigit() else None
