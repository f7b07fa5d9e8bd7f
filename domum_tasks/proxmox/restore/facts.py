"""Read-only probes for proxmox.restore: the guest's state and config, and the archive listing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...pve import Session
    from ..target import Guest


def backup_volids(session: Session, t: Guest, storage: str, vmid: int) -> list[str] | None:
    """The backup volids of guest `vmid` on `storage`, as the guest's host lists them; None when
    the host cannot be asked (the plan then says what it assumed)."""
    from ...pve import PveUnavailable

    try:
        listing = session.client(t.host_name).get(
            f"/nodes/{t.host.node}/storage/{storage}/content", content="backup", vmid=vmid
        )
    except PveUnavailable:
        return None
    return [str(v["volid"]) for v in listing or [] if isinstance(v, Mapping) and v.get("volid")]
