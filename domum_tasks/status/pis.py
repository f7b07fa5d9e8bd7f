"""The Raspberry Pi OS Pis: reachable, load, temperature, throttling, root disk, through
pi/fleet/facts.py's one-round-trip probe and parsers (Talos Pis are rows of the talos part)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from .model import Probe, Row

if TYPE_CHECKING:
    from ..inventory.model import Inventory
    from ..pi.fleet.facts import PiFacts

DISK_FULL_PCT = 90  # a root disk this full is a failure: logs and apt stop working soon after


def _bounded(inv: Inventory, timeout_s: float) -> Inventory:
    """The inventory with SSH's connect timeout cut to this probe's, so a silent host ends it."""
    if inv.ssh.connect_timeout_s <= timeout_s:
        return inv
    ssh = inv.ssh.model_copy(update={"connect_timeout_s": timeout_s})
    return inv.model_copy(update={"ssh": ssh})


def judge(f: PiFacts) -> tuple[bool, str]:
    """(healthy, the summary or the reason)."""
    from ..pi.fleet.facts import human_uptime

    if not f.reachable:
        return False, f"down: {f.error}" if f.error else "down"
    load = " ".join(f"{x:.2f}" for x in f.load) if f.load else "-"
    temp = f"{f.temp_c:.1f}°C" if f.temp_c is not None else "-"
    disk = f"{f.disk_used_pct}%" if f.disk_used_pct is not None else "-"
    summary = f"up {human_uptime(f.uptime_s)}, load {load}, {temp}, disk {disk}"
    now = [w for w in f.throttling if w.endswith(" now")]
    if now:
        return False, f"{', '.join(now)}; {summary}"
    if f.disk_used_pct is not None and f.disk_used_pct >= DISK_FULL_PCT:
        return False, f"root disk {disk} full; {summary}"
    ever = [w for w in f.throttling if w.endswith(" ever")]
    return True, summary + (f"; {', '.join(ever)}" if ever else "")


def pi_rows(inv: Inventory, node_id: int, timeout_s: float) -> list[Row]:
    from .. import ssh
    from ..pi.fleet.facts import PROBE, facts_from_ssh

    bounded = _bounded(inv, timeout_s)
    result = ssh.run_on(bounded, ssh.resolve(bounded, node_id), PROBE, timeout_s=timeout_s)
    f = facts_from_ssh(bounded, result)
    wait = bounded.ssh.connect_timeout_s
    if not result.ok and result.status != "timeout" and result.elapsed_s >= wait:
        # A host that takes the TCP connection and never speaks fails paramiko's banner wait
        # as "No existing session": say what happened.
        f.error += f" (no answer within {wait:g}s)"
    ok, detail = judge(f)
    fields: dict[str, Any] = f.to_dict()
    return [Row("pi", f"{f.hostname} ({node_id})", ok, detail, fields)]


def probes(inv: Inventory, timeout_s: float | None) -> list[Probe]:
    # SSH's own connect timeout plus the command's few seconds
    t = timeout_s or float(inv.ssh.connect_timeout_s) + 10
    return [
        Probe("pi", f"{n.hostname} ({i})", t, partial(pi_rows, inv, i))
        for i, n in sorted(inv.pis.items())
        if n.os == "raspios"
    ]
