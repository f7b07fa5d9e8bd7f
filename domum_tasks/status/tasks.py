"""`domum status`: the root task (read-only; no plan, no executor step, nothing written)."""

from __future__ import annotations

from invoke import Context

from ..taskutil import domum_task, load_inventory


@domum_task(
    help={
        "json": "print the rows as JSON (part, name, ok, detail, fields)",
        "only": "comma-separated parts to show: talos,etcd,flux,proxmox,pi,backup",
        "timeout": "seconds each probe may take: N for every part, or PART=N,... (defaults: "
        "talos/etcd 15, flux 30, proxmox 15, pi ssh.connect_timeout_s + 10, backup 60)",
    }
)
def status(c: Context, json: bool = False, only: str = "", timeout: str = "") -> None:
    """Show the whole homelab on one screen; exit 1 if anything is unhealthy."""
    from . import parts, report
    from .runner import run_probes

    asked = parts.parse_only(only)
    timeouts = parts.parse_timeouts(timeout)
    rows = run_probes(parts.probes(load_inventory(), asked, timeouts))
    report.show(rows, json)
    report.verdict(rows)
