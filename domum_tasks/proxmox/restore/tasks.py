"""proxmox.restore: a VM or container from a vzdump archive (replacing it needs --yes)."""

from __future__ import annotations

from invoke import Context

from ...taskutil import Planned, plan_task
from ..common import GUEST


@plan_task(
    yes=True,
    help={
        "node": GUEST,
        "from_": "the backup's volume id, e.g. nas-backup:backup/vzdump-lxc-210-2026_12_01-02_30_00.tar.zst",
        "storage": "PVE storage for the restored disks (default: the inventory's for the guest)",
        "start": "start the guest once restored, and wait until it runs",
    },
)
def restore(
    c: Context, node: str = "", from_: str = "", storage: str = "", start: bool = False
) -> Planned:
    """Restore a VM or container from a vzdump archive; replacing one needs --yes."""
    from ...errors import ConfigError
    from .. import facts
    from ..common import load, need_guest, planned, session
    from .facts import backup_volids
    from .plan import parse_archive, plan_restore

    inv = load()
    target = need_guest(inv, node)
    if not from_:
        raise ConfigError("--from is required: the backup volume id to restore (see --help)")
    archive = parse_archive(from_)
    pve = session(inv)
    probed = facts.probe_guest(pve, target, config=True)
    listed = backup_volids(pve, target, archive.storage, archive.vmid) if probed.reachable else None
    plan = plan_restore(
        inv, node, probed, from_, listed=listed, storage=storage or None, start=start
    )
    return planned(pve, plan)


TASKS = [restore]
