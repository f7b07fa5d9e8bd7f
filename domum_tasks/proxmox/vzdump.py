"""vzdump backups of Proxmox guests through the API: plan, run, and judge each task honestly.

One `POST /nodes/{node}/vzdump` per guest, so every guest gets its own task, status and volid:
`mode=snapshot` (no downtime), `compress=zstd`, a notes template, and the job's keep-policy as
`prune-backups`; then a listing of the guest's backups on the storage (where the archive is
found when the task log names none). Both are unchecked plan steps: a refused call or a task
that ends other than OK is the step's outcome, so a run never stops at the first failed guest.
`outcomes` then judges each guest: `WARNINGS: n` is a warning, anything else but `OK` a failure
(PVE::UPID::status_is_error). The backup namespace (`inv backup.snapshot`) gets one
VzdumpResult per guest and decides what to alert on.

Containers take the same call. `mode=snapshot` is a wish PVE may not grant: for a running
container whose volumes cannot all be snapshotted, pve-container's prepare dies with "mode
failure - some volumes do not support snapshots" (src/PVE/VZDump/LXC.pm, `prepare`), and
pve-manager's exec_backup_task logs "trying 'suspend' mode instead" and backs it up suspended
(PVE/VZDump.pm); a stopped guest is always backed up in `stop` mode. The task log's "backup
mode:" line says which mode ran, and the result says so when it is not the one asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import ConfigError
from ..plan import Plan, PveCall

if TYPE_CHECKING:
    from ..inventory.model import Inventory
    from ..pve import Session
    from ..run import StepResult

NOTES_TEMPLATE = "{{guestname}} ({{vmid}}) on {{node}}, by inv proxmox.vzdump"
# Keep-policy keys as the inventory and backup jobs spell them, in PVE's order.
PRUNE_KEYS = (
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
)
# "INFO: creating vzdump archive '/mnt/pve/nas/dump/vzdump-qemu-196-2026_12_01-02_30_00.vma.zst'"
ARCHIVE_RE = re.compile(r"creating (?:vzdump )?archive '(?P<path>[^']+)'")
# "INFO: creating Proxmox Backup Server archive 'vm/196/2026-12-01T02:30:00Z'"
PBS_ARCHIVE_RE = re.compile(r"creating Proxmox Backup Server archive '(?P<path>[^']+)'")
WARNINGS_RE = re.compile(r"^WARNINGS: \d+$")
# pve-manager PVE/VZDump.pm exec_backup_task: "INFO: backup mode: suspend", and before it, on a
# fallback, the plugin's "mode failure - ..." and "trying 'suspend' mode instead".
MODE_RE = re.compile(r"backup mode: (?P<mode>\w+)")
MODE_FAILURE_RE = re.compile(r"(?P<why>mode failure - [^\n]+)")
FALLBACK = "trying 'suspend' mode instead"


@dataclass(frozen=True)
class VzdumpResult:
    """The outcome of one guest's backup task."""

    vmid: int
    node: str
    status: Literal["ok", "warning", "failed"]
    volid: str | None
    message: str
    mode: str = ""  # the mode PVE ran (snapshot, suspend, stop), from the task log


def prune_backups(prune: Mapping[str, int]) -> str:
    """{"keep_daily": 7, "keep_weekly": 4} -> "keep-daily=7,keep-weekly=4" (zeros left out)."""
    unknown = sorted(set(prune) - set(PRUNE_KEYS))
    if unknown:
        raise ConfigError(
            f"prune policy: unknown key(s) {', '.join(unknown)}; valid: {', '.join(PRUNE_KEYS)}"
        )
    parts = []
    for key in PRUNE_KEYS:
        value = prune.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"prune policy: {key} must be a whole number >= 0, not {value!r}")
        if value:
            parts.append(f"{key.replace('_', '-')}={value}")
    return ",".join(parts)


def _inventory_node(inv: Inventory, vmid: int) -> tuple[str, str] | None:
    """(proxmox host name, pve node) of the inventory VM or container with this vmid, or None."""
    hosts = [n.vm.host for n in inv.nodes.values() if n.vm is not None and n.vm.vmid == vmid]
    hosts += [c.host for c in inv.containers.values() if c.vmid == vmid]
    for host in hosts:
        if host in inv.proxmox:
            return host, inv.proxmox[host].node
    return None


def _placement(
    inv: Inventory, vmid: int, located: Mapping[int, tuple[str, str]] | None
) -> tuple[str, str]:
    """Where the guest lives: as probed (`located`), else the inventory, else the only host."""
    if located and vmid in located:
        return located[vmid]
    known = _inventory_node(inv, vmid)
    if known:
        return known
    if len(inv.proxmox) == 1:
        name, host = next(iter(inv.proxmox.items()))
        return name, host.node
    if not inv.proxmox:
        raise ConfigError("inventory has no proxmox: hosts; vzdump needs one")
    raise ConfigError(
        f"vmid {vmid} is not an inventory VM or container and there are {len(inv.proxmox)} Proxmox hosts: "
        "cannot tell which node holds it"
    )


def backup_storage(inv: Inventory, host_name: str, storage: str | None = None) -> str:
    """--storage, else proxmox.<host>.storages.backup."""
    if storage:
        return storage
    found = inv.proxmox[host_name].storages.get("backup")
    if not found:
        raise ConfigError(
            f"proxmox.{host_name}.storages.backup is not set: name the PVE storage that takes "
            "backups (content 'backup'), or pass --storage"
        )
    return found


def vzdump_call(
    node: str, vmid: int, storage: str, prune: Mapping[str, int] | None = None
) -> PveCall:
    params: dict[str, object] = {
        "vmid": str(vmid),
        "storage": storage,
        "mode": "snapshot",
        "compress": "zstd",
        "notes-template": NOTES_TEMPLATE,
    }
    policy = prune_backups(prune) if prune else ""
    if policy:
        params["prune-backups"] = policy
    return PveCall(
        "POST",
        f"/nodes/{node}/vzdump",
        params,
        desc=f"back up guest {vmid} on {node} to {storage}"
        + (f" (prune {policy})" if policy else ""),
        wait_task=True,
        check=False,
    )


def listing_call(node: int | str, vmid: int, storage: str) -> PveCall:
    """The guest's backups on the storage: where the new archive is when the log names none."""
    return PveCall(
        "GET",
        f"/nodes/{node}/storage/{storage}/content",
        {"content": "backup", "vmid": vmid},
        desc=f"list guest {vmid}'s backups on {storage}",
        check=False,
    )


def plan_vzdump(
    inv: Inventory,
    vmids: Sequence[int],
    *,
    storage: str | None = None,
    prune: dict[str, int] | None = None,
    located: Mapping[int, tuple[str, str]] | None = None,
) -> Plan:
    """One vzdump call per guest, in vmid order. `located`: vmid -> (host, node) as probed."""
    if not vmids:
        raise ConfigError("vzdump: no guests given (a list of vmids, or --node/--all)")
    plan = Plan(f"vzdump {', '.join(str(v) for v in sorted(set(vmids)))}")
    for vmid in sorted(set(vmids)):
        host_name, node = _placement(inv, vmid, located)
        target = backup_storage(inv, host_name, storage)
        plan.add(vzdump_call(node, vmid, target, prune), listing_call(node, vmid, target))
    if not prune or not prune_backups(prune):
        plan.note("no keep-policy given: the storage's own prune-backups setting applies")
    return plan


# --- running ----------------------------------------------------------------------------------


def judge(exitstatus: str) -> Literal["ok", "warning", "failed"]:
    """PVE's verdict on a stopped task: OK, WARNINGS: n, or (anything else) an error."""
    if exitstatus == "OK":
        return "ok"
    if WARNINGS_RE.match(exitstatus):
        return "warning"
    return "failed"


def volid_from_log(storage: str, lines: Sequence[str]) -> str | None:
    """The archive's volume id, from the path the task log names."""
    for line in reversed(lines):
        pbs = PBS_ARCHIVE_RE.search(line)
        if pbs:
            return f"{storage}:backup/{pbs.group('path')}"
        found = ARCHIVE_RE.search(line)
        if found:
            return f"{storage}:backup/{found.group('path').rsplit('/', 1)[-1]}"
    return None


def _newest_backup(listing: StepResult | None, since: int) -> str | None:
    """The newest backup a listing step found created at or after `since` (epoch seconds)."""
    content = listing.value if listing is not None and listing.ok else None
    fresh = [
        (int(v.get("ctime") or 0), str(v["volid"]))
        for v in content or []
        if isinstance(v, Mapping) and v.get("volid") and int(v.get("ctime") or 0) >= since
    ]
    return max(fresh)[1] if fresh else None


def _where(step: PveCall) -> tuple[int, str, str]:
    return int(str(step.params["vmid"])), step.path.split("/")[2], str(step.params["storage"])


def outcome(backup: StepResult, listing: StepResult | None) -> VzdumpResult:
    """One guest's verdict from its backup step's outcome (the task's final status and log, or
    why the call failed) and its listing step's."""
    assert isinstance(backup.step, PveCall)
    vmid, node, storage = _where(backup.step)
    value = backup.value if isinstance(backup.value, Mapping) else {}
    if "error" in value or "exitstatus" not in value:
        return VzdumpResult(vmid, node, "failed", None, str(value.get("error") or backup.stderr))
    exitstatus = str(value["exitstatus"])
    verdict = judge(exitstatus)
    log = [str(line) for line in value.get("log") or []]
    if verdict == "failed":
        tail = next((line for line in reversed(log) if line.startswith("ERROR")), "")
        reason = exitstatus + (f" ({tail})" if tail and tail not in exitstatus else "")
        return VzdumpResult(vmid, node, "failed", None, f"backup failed: {reason}")
    volid = volid_from_log(storage, log) or _newest_backup(
        listing, int(value.get("starttime") or 0)
    )
    if volid is None:
        return VzdumpResult(
            vmid,
            node,
            "warning",
            None,
            f"task ended {exitstatus} but no archive is named in its log or found on {storage}",
        )
    message = "backed up" if verdict == "ok" else f"backed up with {exitstatus.lower()}"
    mode, fallback = mode_of(log)
    if fallback:
        message += f" in suspend mode: PVE fell back from snapshot ({fallback})"
    return VzdumpResult(vmid, node, verdict, volid, message, mode)


def mode_of(log: Sequence[str]) -> tuple[str, str]:
    """(mode PVE ran, why it fell back from snapshot to suspend or ""), from the task log."""
    mode = next((m.group("mode") for line in log if (m := MODE_RE.search(line))), "")
    if not any(FALLBACK in line for line in log):
        return mode, ""
    why = next((m.group("why") for line in log if (m := MODE_FAILURE_RE.search(line))), "")
    return mode, why or "mode failure"


def outcomes(results: Sequence[StepResult]) -> list[VzdumpResult]:
    """Each guest's verdict, from the results of a vzdump plan's steps (backup, listing)."""
    out = []
    for i, r in enumerate(results):
        if isinstance(r.step, PveCall) and r.step.method == "POST":
            nxt = results[i + 1] if i + 1 < len(results) else None
            listed = nxt is not None and isinstance(nxt.step, PveCall) and nxt.step.method == "GET"
            out.append(outcome(r, nxt if listed else None))
    return out


def locate(pve: Session, vmids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """vmid -> (host, node) from each host's /cluster/resources (one call per host)."""
    from ..pve import PveUnavailable
    from .facts import list_vms

    wanted, out = set(vmids), {}
    for name in sorted(pve.inventory.proxmox):
        try:
            guests = list_vms(pve.client(name))
        except PveUnavailable:
            continue  # the vzdump call itself reports the host as down, per guest
        for guest in guests:
            if guest.vmid in wanted:
                out[guest.vmid] = (name, guest.node)
    return out
