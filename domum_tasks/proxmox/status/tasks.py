"""proxmox.status (read-only; exit 1 if a host is down) and proxmox.vzdump."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Context

from ...taskutil import Planned, domum_task, plan_task
from ..common import GUEST

if TYPE_CHECKING:
    from ...run import StepResult


@domum_task(help={"json": "print one JSON object (hosts, guests, storage, missing)"})
def status(c: Context, json: bool = False) -> None:
    """Hosts, guests (VMs and containers), storage use and missing inventory guests."""
    import json as jsonlib

    from ...console import print_table
    from ...errors import ConfigError, PveError
    from ..common import load
    from .report import build, collect, table_rows

    inv = load()
    if not inv.proxmox:
        raise ConfigError("inventory has no proxmox: hosts; add one under proxmox:")
    report = build(inv, collect(inv))
    if json:
        print(jsonlib.dumps(report.to_json(), indent=2))
    else:
        for title, rows in (("Proxmox hosts", report.hosts), ("Guests", report.guests),
                            ("Storage", report.storage),
                            ("Inventory guests missing", report.missing)):  # fmt: skip
            cols, cells = table_rows(rows)
            if cols:
                print_table(title, cols, cells)
    if report.down:
        reasons = "; ".join(f"{h['host']}: {h['reason']}" for h in report.hosts
                            if h["status"] == "down")  # fmt: skip
        raise PveError(f"Proxmox host(s) down: {reasons}")


@plan_task(
    help={
        "node": GUEST,
        "all": "every inventory guest: the proxmox-vm nodes' VMs and the containers",
        "storage": "PVE storage for the archive (default: proxmox.<host>.storages.backup)",
    }
)
def vzdump(c: Context, node: str = "", all: bool = False, storage: str = "") -> Planned:
    """Back up VMs and containers (vzdump, snapshot mode, zstd); exit 1 if one failed."""
    from ...console import print_table
    from ...errors import PveError
    from ..common import load, planned, session
    from ..target import guest_ids, guest_target
    from ..vzdump import PRUNE_KEYS, locate, outcomes, plan_vzdump

    inv = load()
    vmids = [guest_target(inv, ref).vmid for ref in guest_ids(inv, node, all)]
    # backup.retention as PVE keep-* keys (others, such as restic's keep_within, have no PVE twin)
    prune = {k: int(v) for k, v in inv.backup.retention.model_dump().items() if k in PRUNE_KEYS}
    pve = session(inv)  # where each guest lives now (reads only)
    plan = plan_vzdump(inv, vmids, storage=storage or None, prune=prune, located=locate(pve, vmids))
    made = planned(pve, plan)

    def report(results: list[StepResult], json_out: bool) -> None:
        """Each guest's verdict: WARNINGS is a warning, anything but OK a failure (exit 1);
        the mode PVE ran, and why when it fell back from snapshot to suspend."""
        judged = outcomes(results)
        rows = [(r.vmid, r.node, r.status, r.mode or "-", r.volid or "-", r.message)
                for r in judged]  # fmt: skip
        print_table("vzdump", ("vmid", "node", "status", "mode", "volid", "message"), rows,
                    json_out=json_out)  # fmt: skip
        failed = [r for r in judged if r.status == "failed"]
        if failed:
            raise PveError(f"vzdump failed for {', '.join(str(r.vmid) for r in failed)}")

    made.report = report
    return made


TASKS = [status, vzdump]
