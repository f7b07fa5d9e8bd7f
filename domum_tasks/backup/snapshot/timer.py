"""`backup.install-timer`: systemd units (or crontab lines) that run the backup unattended.

- domum-backup.timer: every 15 minutes `inv backup.snapshot --due` (missed runs catch up:
  --due compares each job's cron schedule with its last success; Persistent=true fires a
  missed tick after boot);
- domum-backup-prune.timer: daily `inv backup.prune --yes` (retention on its own schedule: a
  backup never runs forget, so a retention failure never fails or re-runs a backup);
- domum-backup-reclaim.timer: weekly `inv backup.prune --yes --reclaim` (`restic prune
  --max-unused`: reclaims what failed or killed backups left, even when nothing is forgotten);
- domum-backup-verify.timer, domum-backup-drill.timer: weekly `inv backup.verify`,
  `inv backup.drill`.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ... import settings
from ...errors import ConfigError
from ...plan import Local, Plan, Write

UNIT_DIR = "/etc/systemd/system"


def inv_binary() -> str:
    """The venv's `inv` next to the running interpreter (what cron and systemd must call)."""
    return str(Path(sys.executable).parent / "inv")


KEEP_ENV = ("DOMUM_INVENTORY", "DOMUM_SECRETS_FILE")


def age_key_file() -> Path:
    """The installing user's age key, as sops would find it in this shell. A system service
    has no $HOME (issue 16 #8), so sops would not look in ~/.config: the unit names the file.
    Under sudo, the invoking user's home, not root's. The key itself is never copied."""
    if given := settings.get("SOPS_AGE_KEY_FILE"):
        return Path(given).expanduser().absolute()
    user = settings.get("SUDO_USER")
    if user and not settings.get("XDG_CONFIG_HOME"):
        import pwd

        try:
            return Path(pwd.getpwnam(user).pw_dir) / ".config" / "sops" / "age" / "keys.txt"
        except KeyError:
            pass
    from ...secrets.store import default_age_key_file

    return default_age_key_file().expanduser().absolute()


def _env() -> dict[str, str]:
    """What the unattended run must see as this shell does (the rest is systemd's/cron's):
    absolute paths, since the unit runs from the repository root."""
    env = {
        k: str(Path(settings.get(k)).expanduser().absolute()) for k in KEEP_ENV if settings.get(k)
    }
    env["SOPS_AGE_KEY_FILE"] = str(age_key_file())
    return env


def key_notes() -> list[str]:
    """Warnings for the plan: a key the unit cannot use."""
    key = age_key_file()
    if settings.get("SOPS_AGE_KEY"):
        return [f"SOPS_AGE_KEY is set here but is not copied into the unit: it reads {key} instead"]
    return [] if key.is_file() else [f"no age key at {key}: the unit cannot decrypt secrets"]


def _env_lines() -> list[str]:
    return [f"Environment={shlex.quote(f'{k}={v}')}" for k, v in _env().items()]


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
            f"WorkingDirectory={settings.repo_root()}",
            *_env_lines(),
            *execs,
            "Nice=10",
            "IOSchedulingClass=idle",
            # The job deadlines live in Domum; this only stops a run that ignores them.
            "TimeoutStartSec=1d",
            # `systemctl stop`: SIGTERM to Domum only, which ends each job's process group
            # itself (SIGINT first: restic removes its own lock) and records the run; SIGKILL
            # for what is left only after TimeoutStopSec (systemd.kill(5)).
            "KillMode=mixed",
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


def check_writable(d: Path) -> None:
    """Before anything is written (dry-run too): the unit directory can take the files."""
    import os

    probe = d
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        problem = f"{probe} is not a directory"
    elif not os.access(probe, os.W_OK | os.X_OK):
        problem = f"{probe} is not writable (run as root, e.g. with sudo)"
    else:
        return
    raise ConfigError(
        f"--unit-dir {d}: cannot write systemd units there: {problem}",
        hint="or pass --unit-dir DIR, or --cron for crontab lines",
    )


# Retention on its own schedule (issue 16 #10, #11): after the nightly backups; reclaim (a long
# repack) midday Saturday, apart from the nightly runs (Domum's lock does not wait).
RETENTION_UNITS = [
    (
        "domum-backup-prune",
        "Domum backup retention",
        "backup.prune --yes",
        "*-*-* 04:30:00",
        "15m",
    ),
    (
        "domum-backup-reclaim",
        "Domum backup space reclaim",
        "backup.prune --yes --reclaim",
        "Sat *-*-* 12:00:00",
        "15m",
    ),
]


def plan_units(unit_dir: str = UNIT_DIR) -> Plan:
    d = Path(unit_dir)
    check_writable(d)
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
        *RETENTION_UNITS,
    ]
    for name, what, command, calendar, delay in units:
        plan.add(
            Write(
                str(d / f"{name}.service"),
                service(name, what, [command]),
                desc=f"runs: inv {command}",
            ),
            Write(
                str(d / f"{name}.timer"),
                timer(f"{what} ({calendar})", calendar, delay),
                desc=f"OnCalendar={calendar}",
            ),
        )
    plan.notes += key_notes()
    names = " ".join(f"{u[0]}.timer" for u in units)
    plan.note(f"then: systemctl daemon-reload && systemctl enable --now {names}")
    return plan


def crontab() -> str:
    inv = shlex.quote(inv_binary())
    cd = f"cd {shlex.quote(str(settings.repo_root()))} &&"
    env = "".join(f"{k}={shlex.quote(v)} " for k, v in _env().items())
    return "\n".join(
        [
            "# Domum backups: stdout is quiet on success; cron mails the one-line failures",
            f"*/15 * * * *  {cd} {env}{inv} backup.snapshot --due",
            f"0 5 * * 0     {cd} {env}{inv} backup.verify",
            f"0 6 * * 0     {cd} {env}{inv} backup.drill",
            f"30 4 * * *    {cd} {env}{inv} backup.prune --yes",
            f"0 12 * * 6    {cd} {env}{inv} backup.prune --yes --reclaim",
            "",
        ]
    )


def plan_crontab() -> Plan:
    """--cron writes nothing: the plan prints the lines for `crontab -e`."""
    return Plan("crontab lines for unattended backups").add(
        Local("backup.print", {"text": crontab()}, desc="for crontab -e; nothing is written")
    )


def handlers() -> dict[str, Callable[[Mapping[str, Any]], Any]]:
    return {"backup.print": lambda args: print(args["text"], end="")}
