"""Snapshot planners for VMs and containers: take, list, roll back, delete. Pure.

A rollback throws away everything the guest did since the snapshot, so its plan says what is
lost (the newer snapshots stay, the current disk and RAM state do not) and is destructive: it
needs confirmation or --yes. Containers have no RAM snapshots (pve-container
src/PVE/API2/LXC/Snapshot.pm leaves `vmstate` commented out) and a rollback stops a running one
(src/PVE/LXC/Config.pm, __snapshot_rollback_vm_stop).
"""

from __future__ import annotations

import re
import time
from typing import Any

from ...errors import ConfigError, Refused
from ...inventory.model import Inventory
from ...plan import Plan, PveCall
from ..facts import VmFacts
from ..power.actions import absent
from ..target import (
    Guest,
    check_ours,
    check_unlocked,
    guest_target,
    unreachable_note,
    vm_base,
)

# pve-configid, at most 40 characters (qemu-server's snapshot API).
SNAPNAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{1,39}$")


def check_snapname(name: str) -> str:
    if not SNAPNAME_RE.match(name):
        raise ConfigError(
            f"--name {name!r}: a snapshot name is 2-40 characters, a letter first, then letters, "
            "digits, '-' or '_' (e.g. pre-upgrade)"
        )
    if name.lower() in ("current", "pending", "vzdump"):
        raise ConfigError(f"--name {name!r}: PVE reserves that name; pick another")
    return name


def _names(facts: VmFacts) -> list[str]:
    return [str(s["name"]) for s in facts.snapshots]


def _existing(inv: Inventory, node_id: int | str, facts: VmFacts, what: str) -> Guest:
    t = guest_target(inv, node_id)
    if facts.vm is None and facts.reachable:
        raise absent(t, facts.host, what)
    if facts.vm is not None:
        check_ours(t, facts.vm)
        check_unlocked(t, facts.vm, facts.lock_holders)
    return t


def plan_snapshot(
    inv: Inventory, node_id: int | str, facts: VmFacts, name: str, *, vmstate: bool = False
) -> Plan:
    t = _existing(inv, node_id, facts, "nothing to snapshot")
    check_snapname(name)
    if vmstate and t.kind == "lxc":
        raise ConfigError(f"--vmstate: {t.label} is a container; PVE snapshots no container RAM")
    plan = Plan(f"snapshot {t.label} as {name}")
    if facts.vm is not None and name in _names(facts):
        return plan.note(f"{t.label} already has a snapshot named {name!r}: nothing to do")
    plan.notes += unreachable_note(
        facts.host, facts.reachable, facts.reason,
        f"assumed {t.label} exists without a snapshot {name!r}",
    )  # fmt: skip
    params: dict[str, object] = {"snapname": name, "description": "taken by inv proxmox.snapshot"}
    if vmstate:
        params["vmstate"] = 1
    return plan.add(
        PveCall("POST", f"{vm_base(t, facts.vm)}/snapshot", params,
                desc=f"snapshot {t.label}" + (" with its RAM" if vmstate else ""), wait_task=True)
    )  # fmt: skip


def _when(snap: dict[str, Any]) -> str:
    stamp = int(snap.get("snaptime") or 0)
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp)) if stamp else "-"


def plan_rollback(inv: Inventory, node_id: int | str, facts: VmFacts, name: str) -> Plan:
    t = _existing(inv, node_id, facts, "nothing to roll back")
    check_snapname(name)
    plan = Plan(f"roll {t.label} back to {name}")
    if facts.vm is not None:
        names = _names(facts)
        if name not in names:
            raise Refused(
                f"{t.label} has no snapshot {name!r}; it has: {', '.join(names) or 'none'}",
                hint=f"list them with inv proxmox.snapshot-list --node {t.ref}",
            )
        snap = next(s for s in facts.snapshots if s["name"] == name)
        newer = [s for s in names[names.index(name) + 1 :]]
        plan.note(
            f"rolling back loses everything {t.label} wrote since {_when(snap)}"
            + (" (its RAM state too: it was running)" if facts.vm.status == "running" else "")
            + (f"; newer snapshots stay: {', '.join(newer)}" if newer else "")
        )
        if str(snap.get("vmstate", 0)) == "1":
            plan.note(f"{name!r} holds RAM: the VM resumes running from that moment")
        elif facts.vm.status == "running":
            what = "VM" if t.kind == "qemu" else "container"
            plan.note(
                f"{name!r} holds no RAM: PVE stops the {what} for the rollback and leaves it "
                f"stopped (inv proxmox.start --node {t.ref})"
            )
    plan.notes += unreachable_note(
        facts.host, facts.reachable, facts.reason, f"assumed {t.label} has a snapshot {name!r}"
    )
    return plan.add(
        PveCall("POST", f"{vm_base(t, facts.vm)}/snapshot/{name}/rollback", {},
                desc=f"roll {t.label} back to {name}: its current disk state is lost",
                destructive=True, wait_task=True)
    )  # fmt: skip


def plan_snapshot_delete(inv: Inventory, node_id: int | str, facts: VmFacts, name: str) -> Plan:
    t = _existing(inv, node_id, facts, "no snapshot to delete")
    check_snapname(name)
    plan = Plan(f"delete snapshot {name} of {t.label}")
    if facts.vm is not None and name not in _names(facts):
        return plan.note(f"{t.label} has no snapshot {name!r}: nothing to delete")
    plan.notes += unreachable_note(
        facts.host, facts.reachable, facts.reason, f"assumed {t.label} has a snapshot {name!r}"
    )
    return plan.add(
        PveCall("DELETE", f"{vm_base(t, facts.vm)}/snapshot/{name}", {},
                desc=f"delete snapshot {name} of {t.label} (the guest itself is untouched)",
                destructive=True, wait_task=True)
    )  # fmt: skip


def snapshot_rows(
    inv: Inventory, facts: dict[str, VmFacts]
) -> list[tuple[str, str, str, str, str, str]]:
    """(node, vmid, name, taken, ram, description) per snapshot, for snapshot-list; `facts` by
    --node ref, in the order given."""
    rows = []
    for ref, f in facts.items():
        t = guest_target(inv, ref)
        if f.vm is None:
            state = "unreachable" if not f.reachable else f"no {'VM' if t.kind == 'qemu' else 'CT'}"
            rows.append((ref, str(t.vmid), "-", state, "-", f.reason or "-"))
            continue
        for s in f.snapshots:
            ram = "yes" if str(s.get("vmstate", 0)) == "1" else "no"
            desc = " ".join(str(s.get("description") or "").split())
            rows.append((ref, str(t.vmid), str(s["name"]), _when(s), ram, desc))
    return rows
