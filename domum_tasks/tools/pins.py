"""Pinned releases of the CLIs `inv tools.install` downloads, and where they are published.

talosctl follows the inventory's `cluster.talos_version` (talosctl should match the cluster);
TALOS_DEFAULT is used only when the inventory cannot be read. flux is pinned to the release the
CLI contracts the tests check against describe.

DIGESTS: sha256 of each release asset, per platform. The values below are NOT filled in: this
repo was written without internet access, so nobody could read the real digests, and inventing
them would be worse than having none. While a digest is None, `inv tools.install` downloads the
release's own checksum file (talos: `sha256sum.txt`, flux: `flux_<v>_checksums.txt`, restic:
`SHA256SUMS`, published
next to the assets), and verifies the asset against it; if that file cannot be fetched or does not
list the asset, the install is refused. To pin a digest, copy the line for your platform from that
file into DIGESTS; a pinned digest is then required to match and the checksum file is not used.
"""

from __future__ import annotations

from dataclasses import dataclass

TALOS_DEFAULT = "v1.13.9"
FLUX_VERSION = "v2.9.4"
# restic >= 0.16: stricter stale locks, --retry-lock; 0.17: exit codes 10/11/12 (issue 16).
RESTIC_VERSION = "v0.18.0"
GITHUB = "https://github.com"

# (tool, version, "os/arch") -> sha256 hex. UNVERIFIED: empty on purpose, see the module doc.
DIGESTS: dict[tuple[str, str, str], str | None] = {
    ("talosctl", "v1.13.9", "linux/amd64"): None,
    ("talosctl", "v1.13.9", "linux/arm64"): None,
    ("talosctl", "v1.13.9", "darwin/amd64"): None,
    ("talosctl", "v1.13.9", "darwin/arm64"): None,
    ("flux", "v2.9.4", "linux/amd64"): None,
    ("flux", "v2.9.4", "linux/arm64"): None,
    ("flux", "v2.9.4", "darwin/amd64"): None,
    ("flux", "v2.9.4", "darwin/arm64"): None,
    ("restic", "v0.18.0", "linux/amd64"): None,
    ("restic", "v0.18.0", "linux/arm64"): None,
    ("restic", "v0.18.0", "darwin/amd64"): None,
    ("restic", "v0.18.0", "darwin/arm64"): None,
}

SUPPORTED_OS = ("linux", "darwin")
SUPPORTED_ARCH = ("amd64", "arm64")


@dataclass(frozen=True)
class Release:
    """One downloadable asset of a pinned release, and how to verify it."""

    tool: str
    version: str  # "v1.13.9"
    platform: str  # "linux/amd64"
    url: str
    checksums_url: str
    asset: str  # the file name as the checksum file lists it
    archive_member: str | None  # for tarballs: the binary inside; None for a raw (or .bz2) binary
    sha256: str | None  # pinned digest, or None: verify against checksums_url

    def to_dict(self) -> dict[str, str | None]:
        return {
            "tool": self.tool,
            "version": self.version,
            "platform": self.platform,
            "url": self.url,
            "sha256": self.sha256,
            "checksums_url": None if self.sha256 else self.checksums_url,
        }


def _release_dir(tool: str, default: str) -> str:
    """Per-tool override (DOMUM_TALOSCTL_BASE_URL: the release directory), else the base URL."""
    from .. import settings

    return settings.tools_base_url(tool, default)


def release(tool: str, version: str, os_name: str, arch: str) -> Release:
    """The asset of `tool` at `version` for one platform (pure, apart from the env overrides)."""
    plat = f"{os_name}/{arch}"
    digest = DIGESTS.get((tool, version, plat))
    if tool == "talosctl":
        d = _release_dir(tool, f"siderolabs/talos/releases/download/{version}")
        asset = f"talosctl-{os_name}-{arch}"
        return Release(
            tool, version, plat, f"{d}/{asset}", f"{d}/sha256sum.txt", asset, None, digest
        )
    if tool == "flux":
        bare = version.removeprefix("v")
        d = _release_dir(tool, f"fluxcd/flux2/releases/download/{version}")
        asset = f"flux_{bare}_{os_name}_{arch}.tar.gz"
        checksums = f"{d}/flux_{bare}_checksums.txt"
        return Release(tool, version, plat, f"{d}/{asset}", checksums, asset, "flux", digest)
    if tool == "restic":
        # restic's release page: restic_<v>_<os>_<arch>.bz2 (one bzip2-compressed binary) and
        # SHA256SUMS listing every asset.
        bare = version.removeprefix("v")
        d = _release_dir(tool, f"restic/restic/releases/download/{version}")
        asset = f"restic_{bare}_{os_name}_{arch}.bz2"
        return Release(tool, version, plat, f"{d}/{asset}", f"{d}/SHA256SUMS", asset, None, digest)
    raise ValueError(f"no release recipe for {tool}")
