"""`inv tools.install`: plan and perform the download of pinned talosctl and flux into .bin/.

Each install is atomic: download to a `.part` file beside the target while hashing, verify the
sha256 (pinned digest, or the release's own checksum file when none is pinned), extract the binary
from a tarball if needed, chmod +x, rename. A mismatch leaves nothing behind in .bin.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import platform
import sys
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from ..errors import ConfigError, VerifyError
from ..plan import Local, Plan
from . import INSTALLABLE
from .pins import FLUX_VERSION, SUPPORTED_ARCH, SUPPORTED_OS, TALOS_DEFAULT, Release, release
from .versions import same_version

TIMEOUT_S = 60.0
CHUNK = 1 << 16
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_platform(system: str | None = None, machine: str | None = None) -> tuple[str, str]:
    """("linux", "amd64") etc. for this machine; anything else is a clear error."""
    os_name = (system or platform.system()).lower()
    arch = _ARCH.get((machine or platform.machine()).lower(), (machine or platform.machine()))
    if os_name not in SUPPORTED_OS or arch not in SUPPORTED_ARCH:
        raise ConfigError(
            f"tools.install: no release for {os_name}/{arch}; supported: "
            f"{', '.join(f'{o}/{a}' for o in SUPPORTED_OS for a in SUPPORTED_ARCH)}",
            hint="install talosctl and flux by hand and put them on PATH",
        )
    return os_name, arch


def talos_pin() -> tuple[str, str]:
    """talosctl follows the inventory's cluster.talos_version; (version, where it came from)."""
    from ..inventory import load

    try:
        return load().cluster.talos_version, "inventory cluster.talos_version"
    except ConfigError:
        return TALOS_DEFAULT, "default (inventory unreadable)"


def pinned_versions() -> dict[str, str]:
    return {"talosctl": talos_pin()[0], "flux": FLUX_VERSION}


def plan_install(
    releases: list[Release], installed: Mapping[str, str | None], dest: Path, *, force: bool
) -> Plan:
    """Pure: one download step per release not already installed at its pinned version."""
    plan = Plan(f"install pinned tools into {dest}")
    for rel in releases:
        if not force and same_version(installed.get(rel.tool), rel.version):
            plan.note(f"{rel.tool} {rel.version} already in {dest} (--force reinstalls)")
            continue
        how = (
            "pinned sha256"
            if rel.sha256
            else f"sha256 from {rel.checksums_url.rsplit('/', 1)[-1]} (no pinned digest)"
        )
        args = {**rel.to_dict(), "dest": str(dest / rel.tool)}
        plan.add(Local("tools.download", args, desc=f"{rel.tool} {rel.version}, verified by {how}"))
    return plan


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


def _open(url: str) -> Any:
    import urllib.error
    import urllib.request

    check_url(url)
    req = urllib.request.Request(url, headers={"User-Agent": "domum-tools-install"})
    try:
        return urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise VerifyError(f"download failed: HTTP {exc.code} for {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise VerifyError(f"download failed: {url}: {reason}") from None


def parse_checksums(text: str, asset: str) -> str | None:
    """The digest for `asset` in a sha256sum-style file ("<hex>  name" or "<hex> *name")."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].lstrip("*").rsplit("/", 1)[-1] == asset:
            digest = fields[0].lower()
            if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
                return digest
    return None


def expected_digest(rel: Release) -> tuple[str, str]:
    """(sha256, how we know it). No pinned digest and no usable checksum file: refuse."""
    if rel.sha256:
        return rel.sha256.lower(), "pinned digest in domum_tasks/tools/pins.py"
    with _open(rel.checksums_url) as resp:
        text = resp.read(1 << 20).decode(errors="replace")
    digest = parse_checksums(text, rel.asset)
    if digest is None:
        raise VerifyError(
            f"refusing to install {rel.tool} {rel.version}: no pinned digest, and "
            f"{rel.checksums_url} does not list {rel.asset}"
        )
    return digest, f"upstream {rel.checksums_url.rsplit('/', 1)[-1]}"


def _download(url: str, out: IO[bytes], label: str, show_progress: bool) -> str:
    """Stream url into `out`; return the sha256 hex of what was written."""
    h = hashlib.sha256()
    with _open(url) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        progress = None
        if show_progress:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            progress = Progress(
                "{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            progress.start()
        task = progress.add_task(label, total=total) if progress else None
        try:
            while chunk := resp.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
                if progress is not None and task is not None:
                    progress.advance(task, len(chunk))
        finally:
            if progress is not None:
                progress.stop()
    return h.hexdigest()


def _extract_member(archive: Path, member: str, out: IO[bytes]) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for info in tar:
            if info.isfile() and info.name.rsplit("/", 1)[-1] == member:
                src = tar.extractfile(info)
                if src is None:
                    break
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                return
    raise VerifyError(f"{archive.name}: no file named {member!r} in the archive")


def install_release(rel: Release, dest: Path, *, show_progress: bool = False) -> dict[str, str]:
    """Download, verify and atomically install one release at `dest`; returns what was done."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, how = expected_digest(rel)
    asset_part = dest.parent / f".{rel.asset}.part"
    bin_part = dest.parent / f".{dest.name}.part"
    try:
        with open(asset_part, "wb") as fh:
            got = _download(rel.url, fh, f"{rel.tool} {rel.version}", show_progress)
        if got != digest:
            raise VerifyError(
                f"sha256 mismatch for {rel.url}: expected {digest} ({how}), got {got}; "
                "nothing installed"
            )
        if rel.archive_member:
            with open(bin_part, "wb") as fh:
                _extract_member(asset_part, rel.archive_member, fh)
        else:
            os.replace(asset_part, bin_part)
        os.chmod(bin_part, 0o755)
        os.replace(bin_part, dest)
    finally:
        asset_part.unlink(missing_ok=True)
        bin_part.unlink(missing_ok=True)
    return {
        "tool": rel.tool,
        "version": rel.version,
        "path": str(dest),
        "sha256": got,
        "verified_by": how,
    }


def handler(releases: list[Release], *, show_progress: bool, quiet: bool = False) -> Any:
    """The Local-step handler for "tools.download"."""
    by_tool = {r.tool: r for r in releases}

    def download(args: Mapping[str, Any]) -> dict[str, str]:
        done = install_release(
            by_tool[args["tool"]], Path(args["dest"]), show_progress=show_progress
        )
        if not quiet:
            print(
                f"installed {done['tool']} {done['version']} -> {done['path']} "
                f"(sha256 {done['sha256'][:12]}…, verified against {done['verified_by']})",
                file=sys.stderr,
            )
        return done

    return download


def releases_for(tools: list[str], os_name: str, arch: str) -> list[Release]:
    pins = pinned_versions()
    unknown = [t for t in tools if t not in INSTALLABLE]
    if unknown:
        raise ConfigError(
            f"tools.install: cannot install {', '.join(unknown)}; valid: {', '.join(sorted(INSTALLABLE))}"
        )
    return [release(t, pins[t], os_name, arch) for t in tools]
