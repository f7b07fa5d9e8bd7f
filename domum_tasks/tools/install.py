"""`inv tools.install`: plan and perform the download of pinned talosctl, flux and restic into .bin/.

Each install is atomic: download to a `.part` file beside the target while hashing (shared
`domum_tasks.download`: https or loopback http only, resumed with HTTP Range after a cut), verify
the sha256 (pinned digest, or the release's own checksum file when none is pinned), extract the
binary from a tarball (or decompress a .bz2) if needed, chmod +x, rename. A mismatch leaves nothing behind in .bin; an
interrupted download keeps its `.part` (named with the version) for the next run to resume.
"""

from __future__ import annotations

import os
import platform
import sys
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ..download import download, fetch_bytes
from ..errors import ConfigError, VerifyError
from ..plan import Local, Plan
from . import INSTALLABLE
from .pins import (
    FLUX_VERSION,
    RESTIC_VERSION,
    SUPPORTED_ARCH,
    SUPPORTED_OS,
    TALOS_DEFAULT,
    Release,
    release,
)
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
    from ..inventory.loader import load

    try:
        return load().cluster.talos_version, "inventory cluster.talos_version"
    except ConfigError:
        return TALOS_DEFAULT, "default (inventory unreadable)"


def pinned_versions() -> dict[str, str]:
    return {"talosctl": talos_pin()[0], "flux": FLUX_VERSION, "restic": RESTIC_VERSION}


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
    text = fetch_bytes(rel.checksums_url, timeout_s=TIMEOUT_S).decode(errors="replace")
    digest = parse_checksums(text, rel.asset)
    if digest is None:
        raise VerifyError(
            f"refusing to install {rel.tool} {rel.version}: no pinned digest, and "
            f"{rel.checksums_url} does not list {rel.asset}"
        )
    return digest, f"upstream {rel.checksums_url.rsplit('/', 1)[-1]}"


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


def _bunzip2(path: Path, out: IO[bytes]) -> None:
    import bz2

    try:
        with bz2.open(path, "rb") as src:
            while chunk := src.read(CHUNK):
                out.write(chunk)
    except (OSError, EOFError) as exc:
        raise VerifyError(f"{path.name}: not a bzip2 file ({exc})") from None


def install_release(rel: Release, dest: Path, *, show_progress: bool = False) -> dict[str, str]:
    """Download, verify and atomically install one release at `dest`; returns what was done."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, how = expected_digest(rel)
    asset_part = dest.parent / f".{rel.asset}.{rel.version}.part"
    bin_part = dest.parent / f".{dest.name}.part"
    # Outside the try: when the download itself fails, its .part stays for the next run to resume.
    got = download(
        rel.url,
        asset_part,
        label=f"{rel.tool} {rel.version}",
        show_progress=show_progress,
        timeout_s=TIMEOUT_S,
    )
    try:
        if got != digest:
            raise VerifyError(
                f"sha256 mismatch for {rel.url}: expected {digest} ({how}), got {got}; "
                "nothing installed"
            )
        if rel.archive_member:
            with open(bin_part, "wb") as fh:
                _extract_member(asset_part, rel.archive_member, fh)
        elif rel.asset.endswith(".bz2"):
            with open(bin_part, "wb") as fh:
                _bunzip2(asset_part, fh)
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
