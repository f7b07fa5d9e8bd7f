"""Cross-field checks of the nodes' disk settings (install_disk, install_disk_selector,
ephemeral_disk): a setting Talos ignores must not look as if it did something."""

from __future__ import annotations

from collections.abc import Iterator

from .findings import Finding
from .model import Inventory

FLASHED = (
    "has no effect on a Talos Raspberry Pi: Talos never installs from an SBC image (the image "
    "pi.flash writes is the installation), and upgrade and reset act on the disk it booted from; "
    "drop it, and put /var and Longhorn's data on an NVMe with ephemeral_disk (README, "
    '"Raspberry Pis")'
)


def disk_findings(inv: Inventory) -> Iterator[Finding]:
    for node_id, node in sorted(inv.nodes.items()):
        base = ("nodes", node_id)
        if node.os == "talos" and node.is_pi:
            for field in ("install_disk", "install_disk_selector"):
                if field in node.model_fields_set:
                    yield Finding("warning", (*base, field), FLASHED)
        if node.ephemeral_disk is not None and node.os != "talos":
            yield Finding(
                "error",
                (*base, "ephemeral_disk"),
                "ephemeral_disk places Talos's EPHEMERAL volume; this node runs raspios",
            )
        if isinstance(node.ephemeral_disk, str) and not node.ephemeral_disk.startswith("/dev/"):
            yield Finding(
                "error",
                (*base, "ephemeral_disk"),
                f"{node.ephemeral_disk!r} is not a device path (e.g. /dev/nvme0n1) or a "
                "selector {serial: ...}",
            )
