"""`domum status`: the root task (read-only; no plan, no executor step, nothing written)."""

from __future__ import annotations

from invoke import Context

from ..taskutil import domum_task, load_inventory


@domum_task(
    help={
        "json": "print the rows as JSON (part, name, ok, detail, fields)",
        "only": "comma-separated parts to show: talos,etcd,flux,proxmox,pi,backup",
        "timeout": "seconds each probe may take (default per part: talos/etcd 15, flux 30, "
        "proxmox 15, pi ssh.connect_timeout_s + 10, backup 60)",
    }
)
def status(c: Context, json: bool = False, only: str = "", timeout: float = 0.0) -> None:
    """Show the whole homelab on one screen; exit 1 if anything is unhealthy."""
    from ..errors import ConfigError
    from . import parts, report
    from .runner import run_probes

    asked = parts.parse_only(only)
    if timeout < 0:
        raise ConfigError(f"--timeout {timeout:g}: must be 0 (the defaults) or more seconds")
    rows = run_probes(parts.probes(load_inventory(), asked, timeout or None))
    report.show(rows, json)
    report.verdict(rows)
