"""Pure planners for the Pi fleet: inventory + probed facts in, Plan out. No I/O, no Context.

SSH steps name the host by IP; ssh.run_step maps it back to the node's user and port.
Raspberry Pi OS hosts log in as an unprivileged user, so root commands go through `sudo -n`
(never a password prompt a non-interactive run could hang on).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...errors import ConfigError
from ...plan import Fanout, Local, Plan, ResultOf, Ssh, Wait, Write
from .facts import BOOT_ID, REBOOT_CHECK

if TYPE_CHECKING:
    from ...inventory.model import Inventory

APT = (
    "env DEBIAN_FRONTEND=noninteractive apt-get -q -y "
    "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
)
UPDATE_TIMEOUT_S = 900.0
UPGRADE_TIMEOUT_S = 3600.0
REBOOT_POLL_S = 2.0

Host = int | str  # a node id, or "nas"


def sudo(user: str) -> str:
    return "" if user == "root" else "sudo -n "


def select(
    inv: Inventory,
    node: str | None,
    all_: bool,
    *,
    task: str,
    allow_nas: bool = False,
    default_all: bool = False,
) -> list[Host]:
    """The SSH hosts a fleet task acts on: --node N, --all (every Raspberry Pi OS Pi), or NAS."""
    if node and all_:
        raise ConfigError(f"{task}: give --node N or --all, not both")
    if not node:
        if not (all_ or default_all):
            raise ConfigError(f"{task}: give --node N or --all")
        ids: list[Host] = [i for i, n in inv.pis.items() if n.os == "raspios"]
        if not ids:
            raise ConfigError(f"{task}: the inventory has no Raspberry Pi OS Pis to act on")
        return ids
    if node.strip().lower() == "nas":
        if not allow_nas:
            raise ConfigError(f"{task}: --node nas is not supported here; give a Pi's node id")
        if inv.nas is None:
            raise ConfigError(f"{task}: --node nas, but the inventory has no nas: section")
        return ["nas"]
    n = inv.node(node)
    node_id = int(node)
    if n.os == "talos":
        raise ConfigError(
            f"{task}: node {node_id} ({n.hostname}) runs Talos, which has no SSH; "
            "use the talos.* tasks (talosctl), e.g. "
            f"`inv talos.reboot --node {node_id}` or `inv talos.shutdown --node {node_id}`"
        )
    return [node_id]


def host_of(inv: Inventory, host: Host) -> str:
    if host == "nas":
        assert inv.nas is not None
        return str(inv.nas.host)
    return str(inv.nodes[int(host)].ip)


def user_of(inv: Inventory, host: Host) -> str:
    if host == "nas":
        assert inv.nas is not None
        return inv.nas.user
    return inv.nodes[int(host)].user


def label(inv: Inventory, host: Host) -> str:
    """What people see for a host: the node's hostname (domum-dns), or nas."""
    return "nas" if host == "nas" else inv.nodes[int(host)].hostname


def run_plan(inv: Inventory, hosts: Sequence[Host], command: str, parallel: int) -> Plan:
    """One lane per host, `parallel` at once; a failed or unreachable host is its lane's
    outcome (check=False), reported per host, and never stops the others."""
    if not command.strip():
        raise ConfigError("pi.run: --cmd is empty; give the command to run, e.g. --cmd 'uptime'")
    plan = Plan(f"run on {len(hosts)} host(s): {command}")
    lanes = tuple(
        (
            Ssh(host_of(inv, h), command, desc=label(inv, h),
                timeout_s=inv.ssh.command_timeout_s, check=False),
        )
        for h in hosts
    )  # fmt: skip
    plan.add(Fanout(lanes, parallel=parallel, desc=f"{parallel} host(s) at once"))
    return plan


def update_plan(inv: Inventory, hosts: Sequence[Host], parallel: int) -> Plan:
    """Per host, in order: apt update, full-upgrade (keeping changed config files), then read
    reboot-required; a host stops at its first failure, the others go on."""
    plan = Plan(f"apt full-upgrade on {', '.join(label(inv, h) for h in hosts)}")
    lanes = []
    for h in hosts:
        s, ip, name = sudo(user_of(inv, h)), host_of(inv, h), label(inv, h)
        lanes.append((
            Ssh(ip, f"{s}{APT} update", desc=f"{name}: refresh package lists",
                timeout_s=UPDATE_TIMEOUT_S, check=False),
            Ssh(ip, f"{s}{APT} full-upgrade", desc=f"{name}: upgrade every package",
                timeout_s=UPGRADE_TIMEOUT_S, check=False),
            Ssh(ip, REBOOT_CHECK, desc=f"{name}: is a reboot required?", timeout_s=60,
                check=False),
        ))  # fmt: skip
    plan.add(Fanout(tuple(lanes), parallel=parallel, desc=f"{parallel} host(s) at once"))
    return plan


def reboot_plan(
    inv: Inventory, node_id: int, boot_id: str | None, *, wait: bool, deadline_s: float
) -> Plan:
    """Reboot one Pi; with wait, poll SSH until a new boot id answers (or the deadline)."""
    ip, user = host_of(inv, node_id), user_of(inv, node_id)
    s = sudo(user)
    name = label(inv, node_id)
    plan = Plan(f"reboot {name} (node {node_id})")
    # Reboot a second after the session ends, so the SSH command returns its exit status.
    cmd = f"{s}true && ({{ sleep 1; {s}reboot; }} >/dev/null 2>&1 &)"
    plan.add(Ssh(ip, cmd, desc=f"{name}: reboot", timeout_s=30))
    if not wait:
        return plan
    if boot_id:
        probe = Ssh(
            ip, f'test "$(cat {BOOT_ID})" != "{boot_id}"', desc="new boot id?", timeout_s=15
        )
    else:
        plan.note(f"{name} did not answer while planning: boot id unknown, so the wait "
                  "ends as soon as SSH answers")  # fmt: skip
        probe = Ssh(ip, "true", desc="SSH answers?", timeout_s=15)
    plan.add(
        Wait(f"{name} to come back on SSH", deadline_s, probe=probe,
             interval_s=REBOOT_POLL_S)
    )  # fmt: skip
    return plan


def known_hosts_update(
    current: str, name: str, key_type: str, key_b64: str
) -> tuple[str, str, list[str]]:
    """(new text, "same"|"new"|"changed", replaced key blobs) for one host's key.

    A line for `name` with the same key type and blob means nothing to do; the same type with
    another blob is a changed key, which is replaced; other key types of the host are kept.
    """
    kept: list[str] = []
    replaced: list[str] = []
    for line in current.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#") and name in parts[0].split(","):
            if parts[1] == key_type and parts[2] == key_b64:
                return current, "same", []
            if parts[1] == key_type:
                replaced.append(parts[2])
                continue
        kept.append(line)
    kept.append(f"{name} {key_type} {key_b64}")
    return "\n".join(kept) + "\n", "changed" if replaced else "new", replaced


def enroll_plan(
    known_hosts: str,
    current: str,
    who: str,
    name: str,
    key_type: str,
    key_b64: str,
    fingerprint: str,
    old_fingerprints: Sequence[str] = (),
) -> Plan:
    """Add (or, when the key changed, replace) one host key in known_hosts."""
    new_text, state, _ = known_hosts_update(current, name, key_type, key_b64)
    plan = Plan(f"enroll {who} ({name}) in {known_hosts}")
    plan.note(f"{who} presents {key_type} {fingerprint}")
    if state == "same":
        plan.note(f"already in {known_hosts}: nothing to do")
        return plan
    if state == "changed":
        olds = ", ".join(old_fingerprints) or "another key"
        plan.note(f"CHANGED: {known_hosts} has {olds} for {name}; confirm only if you know the "
                  "host was reinstalled")  # fmt: skip
    verb = "replace" if state == "changed" else "add"
    plan.add(
        Write(known_hosts, new_text, 0o644, desc=f"{verb} {name} {key_type} {fingerprint}",
              destructive=True)
    )  # fmt: skip
    return plan


def enroll_fresh_plan(known_hosts: str, who: str, name: str, *, replace: bool = False) -> Plan:
    """The plan for a host that could not be asked for its key while planning: read it and
    show its fingerprint (step 1), then add the key step 1 read (what a real run does for a
    host not yet in known_hosts; a CHANGED key is refused without --replace, as always)."""
    plan = Plan(f"enroll {who} ({name}) in {known_hosts}")
    plan.add(
        Local(
            "enroll.read-host-key",
            {"host": name},
            desc=f"read {name}'s host key over SSH and show its fingerprint",
        ),
        Local(
            "enroll.add-host-key",
            {"known_hosts": known_hosts, "host": name, "key": ResultOf(0), "replace": replace},
            desc=f"add the key read in step 1 to {known_hosts}",
            destructive=True,
        ),
    )
    return plan
