"""`backup.install-timer`: systemd units (or crontab lines) that run the backup unattended.

- domum-backup.timer: every 15 minutes `inv backup.snapshot --due` (missed runs catch up:
  --due compares each job's cron schedule with its last success; Persistent=true fires a
  missed tick after boot);
- domum-backup-check.timer: weekly `inv backup.verify` then `inv backup.drill`.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from ...inventory.loader import REPO_ROOT
from ...plan import Plan, Write

UNIT_DIR = "/etc/systemd/system"


def inv_binary() -> str:
    """The venv's `inv` next to the running interpreter (what cron and systemd must call)."""
    return str(Path(sys.executable).parent / "inv")


def _env_lines() -> list[str]:
    keep = ("DOMUM_INVENTORY", "DOMUM_SECRETS_FILE", "SOPS_AGE_KEY_FILE")
    return [f"Environment={shlex.quote(f'{k}={os.environ[k]}')}" for k in keep if os.environ.get(k)]


def service(name: str, description: str, commands: list[str]) -> str:
    execs = [f"ExecStart={inv_binary()} {c}" for c in commands]
    return "\n".join(
        [
            "[Unit]",
            f"Description={description}",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"WorkingDirectory={REPO_ROOT}",
            *_env_lines(),
            *execs,
            "Nice=10",
            "IOSchedulingClass=idle",
            # The job deadlines live in Domum; this only stops a run that ignores them.
            "TimeoutStartSec=1d",
            f"SyslogIdentifier={name}",
            "",
        ]
    )


def timer(description: str, on_calendar: str, delay: str) -> str:
    return "\n".join(
        [
            "[Unit]",
            f"Description={description}",
            "",
            "[Timer]",
            f"OnCalendar={on_calendar}",
            "Persistent=true",
            f"RandomizedDelaySec={delay}",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )


def plan_units(unit_dir: str = UNIT_DIR) -> Plan:
    d = Path(unit_dir)
    plan = Plan(f"systemd units for unattended backups in {d}")
    units = [
        ("domum-backup", "Domum backups that are due", "backup.snapshot --due", "*:0/15", "60"),
        (
            "domum-backup-verify",
            "Domum backup verification",
            "backup.verify",
            "Sun *-*-* 05:00:00",
            "30m",
        ),
        ("domum-backup-drill", "Domum restore drill", "backup.drill", "Sun *-*-* 06:00:00", "30m"),
    ]
    for name, what, command, calendar, delay in units:
        plan.add(
            Write(str(d / f"{name}.service"), service(name, what, [command])),
            Write(str(d / f"{name}.timer"), timer(f"{what} ({calendar})", calendar, delay)),
        )
    names = " ".join(f"{u[0]}.timer" for u in units)
    plan.note(f"then: systemctl daemon-reload && systemctl enable --now {names}")
    return plan


def crontab() -> str:
    inv = shlex.quote(inv_binary())
    cd = f"cd {shlex.quote(str(REPO_ROOT))} &&"
    env = "".join(
        f"{k}={shlex.quote(os.environ[k])} "
        for k in ("DOMUM_INVENTORY", "DOMUM_SECRETS_FILE", "SOPS_AGE_KEY_FILE")
        if os.environ.get(k)
    )
    return "\n".join(
        [
            "# Domum backups: stdout is quiet on success; cron mails the one-line failures",
            f"*/15 * * * *  {cd} {env}{inv} backup.snapshot --due",
            f"0 5 * * 0     {cd} {env}{inv} backup.verify",
            f"0 6 * * 0     {cd} {env}{inv} backup.drill",
            "",
        ]
    )
