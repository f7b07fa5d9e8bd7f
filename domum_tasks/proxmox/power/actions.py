"""Power actions of VMs and containers: start, stop, shutdown, reboot. Wait for the task,
then for the state. A container takes the same calls under /lxc/ (pve-container
src/PVE/API2/LXC/Status.pm: vm_start, vm_stop, vm_shutdown with timeout and forceStop, vm_reboot
with timeout).

Each plan is the action's call (its task awaited by the facade, which raises on failure) and a
Wait whose probe (`pve.vm-state`, run by pve.Session) reads status/current until PVE reports
the wanted state, with a deadline. `shutdown` asks the guest (ACPI / the guest agent); only with --force-after does PVE
stop the VM once that many seconds have passed (`forceStop=1`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ...errors import ConfigError, DomumError, Refused
from ...plan import Local, Plan, PveCall, Wait
from ...pve import VM_STATE
from ..facts import VmFacts
from ..target import Guest, check_ours, check_unlocked, guest_target, unreachable_note, vm_base

if TYPE_CHECKING:
    from ...inventory.model import Inventory

Action = Literal["start", "stop", "shutdown", "reboot"]
WANT: dict[str, str] = {"start": "running", "stop": "stopped", "shutdown": "stopped",
                        "reboot": "running"}  # fmt: skip
STATE_DEADLINE_S = 60.0
STATE_INTERVAL_S = 1.0
DEFAULT_SHUTDOWN_S = 180


def absent(t: Guest, host: str, what: str) -> DomumError:
    if t.kind == "qemu":
        hint = f"create it with inv proxmox.create-vm --node {t.ref}"
    else:
        hint = f"restore it from a backup with inv proxmox.restore --node {t.ref} --from VOLID"
    return DomumError(f"{t.label} does not exist on {host}: {what}", hint=hint)


def plan_power(
    inv: Inventory,
    node_id: int | str,
    facts: VmFacts,
    action: Action,
    *,
    force_after: int | None = None,
    timeout_s: int = DEFAULT_SHUTDOWN_S,
) -> Plan:
    t = guest_target(inv, node_id)
    plan = Plan(f"{action} {t.label}")
    vm = facts.vm
    if vm is None and facts.reachable:
        raise absent(t, facts.host, f"nothing to {action}")
    if force_after is not None and (action != "shutdown" or force_after < 1):
        raise ConfigError(
            f"--force-after {force_after}: a whole number of seconds >= 1, and only for shutdown"
        )
    status = vm.status if vm is not None else "unknown"
    if vm is not None:
        check_ours(t, vm)
        if status == WANT[action] and action != "reboot":
            return plan.note(f"{t.label} is already {status}: nothing to do")
        if action == "reboot" and status != "running":
            raise Refused(
                f"{t.label} is {status}, not running: nothing to reboot",
                hint=f"start it with inv proxmox.start --node {t.ref}",
            )
        check_unlocked(t, vm, facts.lock_holders)
    plan.notes += unreachable_note(
        facts.host, facts.reachable, facts.reason, f"assumed {t.label} exists and can {action}"
    )
    base = vm_base(t, vm)
    params: dict[str, object] = {}
    if action in ("shutdown", "reboot"):
        params["timeout"] = force_after or timeout_s
    if action == "shutdown" and force_after:
        params["forceStop"] = 1
        plan.note(f"if the guest is still up after {force_after}s, PVE stops it hard")
    how = "guest agent / ACPI" if t.kind == "qemu" else "the container's init"
    desc = {
        "start": f"start {t.label}",
        "stop": f"hard-stop {t.label} (like pulling the plug)",
        "shutdown": f"shut down {t.label} ({how})",
        "reboot": f"reboot {t.label} (applies pending config)",
    }[action]
    plan.add(
        PveCall("POST", f"{base}/status/{action}", params, desc=desc,
                destructive=action == "stop", wait_task=True),
        Wait(f"{t.label} to be {WANT[action]}", STATE_DEADLINE_S,
             probe=Local(VM_STATE, {"path": f"{base}/status/current", "want": WANT[action]}),
             interval_s=STATE_INTERVAL_S),
    )  # fmt: skip
    return plan
