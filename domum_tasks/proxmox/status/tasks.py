"""proxmox.status (read-only; exit 1 if a host is down) and proxmox.vzdump."""

from __future__ import annotations

from invoke import Context

from ...taskutil import DRY_RUN, JSON, domum_task
from ..common import VM_NODE


@domum_task(help={"json": "print one JSON object (hosts, guests, storage, missing)"})
def status(c: Context, json: bool = False) -> None:
    """Hosts, guests (VMs and containers), storage use and missing inventory VMs."""
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
                            ("Inventory VMs missing", report.missing)):  # fmt: skip
            cols, cells = table_rows(rows)
            if cols:
                print_table(title, cols, cells)
    if report.down:
        reasons = "; ".join(f"{h['host']}: {h['reason']}" for h in report.hosts
                            if h["status"] == "down")  # fmt: skip
        raise PveError(f"Proxmox host(s) down: {reasons}")


@domum_task(
    help={
        "node": VM_NODE,
        "all": "every proxmox-vm node of the inventory",
        "storage": "PVE storage for the archive (default: proxmox.<host>.storages.backup)",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def vzdump(
    c: Context,
    node: int = 0,
    all: bool = False,
    storage: str = "",
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Back up nodes' VMs with vzdump (snapshot mode, zstd); exit 1 if one failed."""
    from ...console import print_table
    from ...errors import PveError
    from ..common import execute, load
    from ..target import node_ids, vm_target
    from ..vzdump import PRUNE_KEYS, locate, plan_vzdump, run_vzdump

    inv = load()
    vmids = [vm_target(inv, i).spec.vmid for i in node_ids(inv, node, all)]
    # backup.retention as PVE keep-* keys (others, such as restic's keep_within, have no PVE twin)
    prune = {k: int(v) for k, v in inv.backup.retention.model_dump().items() if k in PRUNE_KEYS}
    if dry_run:  # where each guest lives now, as a real run would find it (reads only)
        plan = plan_vzdump(inv, vmids, storage=storage or None, prune=prune,
                           located=locate(inv, vmids))  # fmt: skip
        execute(inv, plan, dry_run=True, json=json)
        return
    results = run_vzdump(inv, vmids, storage=storage or None, prune=prune)
    rows = [(r.vmid, r.node, r.status, r.volid or "-", r.message) for r in results]
    print_table("vzdump", ("vmid", "node", "status", "volid", "message"), rows, json_out=json)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise PveError(f"vzdump failed for {', '.join(str(r.vmid) for r in failed)}")


TASKS = [status, vzdump]
