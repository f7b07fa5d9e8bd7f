"""The OpenSSH command line that rsync and restic's sftp backend use: as strict as fabric.

Same key file and known_hosts as domum_tasks.ssh, StrictHostKeyChecking=yes (an unknown or
changed key fails; nothing is ever added), BatchMode (no password prompt on a cron run), and
`-F /dev/null` so ~/.ssh/config cannot redirect or relax anything.
"""

from __future__ import annotations

import shlex

from ...inventory.model import Inventory
from ...ssh import key_file, known_hosts_path


def strict_ssh(inv: Inventory, port: int) -> list[str]:
    key = key_file(inv)
    argv = ["ssh", "-F", "/dev/null"]
    if key is not None:
        argv += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
    argv += [
        "-o", f"UserKnownHostsFile={known_hosts_path(inv)}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={max(1, int(inv.ssh.connect_timeout_s))}",
        "-o", "ServerAliveInterval=30",
        "-p", str(port),
    ]  # fmt: skip
    return argv


def strict_ssh_text(inv: Inventory, port: int) -> str:
    return shlex.join(strict_ssh(inv, port))
