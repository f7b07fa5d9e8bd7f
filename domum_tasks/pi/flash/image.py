"""Which image `pi.flash` writes for a node, and where it is cached (pure: no I/O).

* Talos nodes: the Image Factory disk image of the node's schematic and the cluster's Talos
  version. Pis get `metal-arm64.raw.zst` (zstd decompresses far faster than xz); other nodes the
  ISO. The schematic id is the node's `schematic.id`, else computed offline by
  `talos.schematic` (the Pis' schematics carry the board overlay and the watchdog option, so
  their ids differ from the docs' vanilla rpi_generic id). The factory
  publishes no checksums for free, so the first download's sha256 is recorded in
  `config/images.lock` (trust on first use) and checked ever after.
* Raspberry Pi OS nodes: `image.url`, with `image.sha256` (hash of the downloaded, compressed
  file, as in the `.sha256` file next to it) and optionally `image.extract_sha256` (hash of the
  decompressed image, as in rpi-imager's `extract_sha256`).
* `--image PATH|URL` overrides both; its hash is known only if the lock file has it.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ...errors import ConfigError

if TYPE_CHECKING:
    from ...inventory.model import Inventory, Node

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ImageSpec:
    """Where the image comes from and what its hashes must be."""

    source: str  # an http(s) URL or a local path
    origin: str  # "image-factory", "inventory" or "--image"
    sha256: str | None = None  # of the file as downloaded (compressed)
    extract_sha256: str | None = None  # of the decompressed image
    trust_on_first_use: bool = False  # record/check the download's hash in images.lock
    schematic_id: str | None = None

    @property
    def is_url(self) -> bool:
        return is_url(self.source)

    def local_path(self, cache: Path) -> Path:
        """The file the writer reads: the cache entry for a URL, the path itself otherwise."""
        return cache / cache_name(self.source) if self.is_url else Path(self.source)


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def cache_name(url: str) -> str:
    """Cache file name: a short hash of the whole URL (two schematics never collide) + its name."""
    base = posixpath.basename(unquote(urlsplit(url).path)) or "image"
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return f"{digest}-{_SAFE_NAME.sub('_', base)}"


def schematic_id_of(inv: Inventory, node: Node) -> str:
    """The node's schematic id (an inventory `schematic.id` must be that id: ConfigError)."""
    from ...talos.schematic import node_schematic_id

    return node_schematic_id(inv, node)


def talos_image_url(inv: Inventory, node: Node, schematic_id: str) -> str:
    from ...talos.schematic import node_image_urls

    urls = node_image_urls(inv, node, schematic_id)
    return urls.get("raw.zst") or urls.get("raw.xz") or next(iter(urls.values()))


def resolve_image(inv: Inventory, node_id: int, override: str = "") -> ImageSpec:
    """The image to flash for a node (ConfigError names the inventory field when one is missing)."""
    node = inv.node(node_id)
    if node.platform == "proxmox-vm":
        raise ConfigError(
            f"--node {node_id}: {node.hostname} is a Proxmox VM; it boots from an ISO that the "
            "proxmox tasks attach, there is no boot medium to flash"
        )
    if override:
        _check_source(override, "--image")
        return ImageSpec(source=override, origin="--image", trust_on_first_use=is_url(override))
    if node.os == "talos":
        sid = schematic_id_of(inv, node)
        return ImageSpec(
            source=talos_image_url(inv, node, sid),
            origin="image-factory",
            trust_on_first_use=True,
            schematic_id=sid,
        )
    if node.image is None:
        raise ConfigError(
            f"nodes.{node_id}.image: not set; a Raspberry Pi OS node needs image.url "
            "(and image.sha256), or pass --image PATH|URL"
        )
    _check_source(node.image.url, f"nodes.{node_id}.image.url")
    return ImageSpec(
        source=node.image.url,
        origin="inventory",
        sha256=node.image.sha256,
        extract_sha256=node.image.extract_sha256,
        # Without a published hash, fall back to trust on first use like the factory images.
        trust_on_first_use=node.image.sha256 is None and is_url(node.image.url),
    )


def _check_source(source: str, where: str) -> None:
    """Refuse a URL the downloader would refuse, at plan time, so a dry run shows it too."""
    from ...download import check_url

    if is_url(source):
        try:
            check_url(source)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    elif "://" in source:
        raise ConfigError(f"{where}: {source}: only https:// (or http:// to loopback) or a path")
