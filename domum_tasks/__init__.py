"""Domum: homelab automation as invoke task namespaces (talos, flux, proxmox, pi, backup, tools).

Building `ns` imports only the task modules; heavy libraries (fabric, paramiko, proxmoxer, rich,
pydantic) are imported inside the tasks that use them, so `inv --list` stays fast.
"""

from __future__ import annotations

from invoke import Collection, Context

from .backup.tasks import ns as backup_ns
from .brokenpipe import install_broken_pipe_hook
from .flux.tasks import ns as flux_ns
from .pi.tasks import ns as pi_ns
from .proxmox.tasks import ns as proxmox_ns
from .secrets.tasks import ns as secrets_ns
from .status import tasks as status_tasks
from .talos.tasks import ns as talos_ns
from .taskutil import domum_task
from .tools.tasks import ns as tools_ns
from .up.tasks import up


@domum_task(help={"json": "print the findings as JSON (a list of check/result/subject/detail)"})
def check(c: Context, json: bool = False) -> None:
    """Validate the inventory and everything derived from it (offline)."""
    from .check import run_checks
    from .console import print_table
    from .errors import ConfigError

    findings = run_checks()
    rows = [(f.check, f.severity, f.subject, f.message) for f in findings]
    print_table("domum check", ("check", "result", "subject", "detail"), rows, json_out=json)
    errors = sum(f.severity == "error" for f in findings)
    if errors:
        raise ConfigError(f"check failed: {errors} error(s)")


install_broken_pipe_hook()
ns = Collection(check, status_tasks.status, up)
for sub in (talos_ns, flux_ns, proxmox_ns, pi_ns, backup_ns, tools_ns, secrets_ns):
    ns.add_collection(sub)

__all__ = ["ns"]
