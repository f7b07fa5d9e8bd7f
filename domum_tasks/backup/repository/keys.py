"""`backup.key-rotate`: replace a restic target's key with one for a new password.

    restic key add (new password from a 0600 file) -> restic snapshots with the NEW password
    -> restic key remove <old id> with the NEW password

The order is what keeps the repository openable at every point: the old key goes only after
the new password was shown to open the repository, and restic refuses to remove the key the
command itself was opened with (cmd_key_remove.go, "refusing to remove key currently used to
access repository"), so the removal must run with the new one. restic reads a new key's password
from --new-password-file (cmd_key_add.go); the password never appears in argv. The old key's id
is the one `restic key list --json` marks `"current": true` when opened with the old password.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from ...errors import CommandFailed, ConfigError, DomumError
from ...plan import Local, Plan
from ...run import run_cmd
from . import restic

ADD, VERIFY = "backup.key-add", "backup.key-verify"
PASSWORD_FILE = "<0600 file holding the new password>"


def new_password_key(target: str) -> str:
    """Where the user puts the new password before rotating (then moves it into `password`)."""
    return f"backup.targets.{target}.new_password"


def current_key(key_list_stdout: str) -> dict[str, Any]:
    """The key the listing process opened the repository with (`"current": true`)."""
    keys = restic.json_value(key_list_stdout) or []
    mine = [k for k in keys if isinstance(k, dict) and k.get("current")]
    if len(mine) != 1:
        raise DomumError("restic key list --json: no key is marked current")
    return dict(mine[0])


def plan_rotate(r: restic.Repo, new_password: str, old: dict[str, Any]) -> Plan:
    if not new_password or new_password == r.password:
        raise ConfigError(
            f"secret {new_password_key(r.name)}: must be set and differ from "
            f"backup.targets.{r.name}.password"
        )
    new = dataclasses.replace(r, password=new_password)
    old_id = str(old["id"])
    plan = Plan(f"rotate the restic key of {r.name}")
    plan.note(f"{r.name}: old key {old_id[:8]} ({old.get('userName')}@{old.get('hostName')})")
    plan.add(
        Local(
            ADD,
            {
                "target": r.name,
                "argv": r.argv("key", "add", "--new-password-file", PASSWORD_FILE, lock="tag"),
            },
            desc=f"add a key for {new_password_key(r.name)} ({r.name})",
        )
    )
    plan.add(
        Local(
            VERIFY,
            {"target": r.name, "argv": new.argv("--no-lock", "snapshots", "--json")},
            desc="open the repository with the NEW password; stop here if it does not",
        )
    )
    plan.add(
        restic.cmd(
            new,
            ["key", "remove", old_id],
            desc=f"remove the old key {old_id[:8]} (opened with the new password)",
            timeout_s=600,
            check=True,
            destructive=True,
            lock="tag",
        )
    )
    plan.note(
        f"afterwards: move {new_password_key(r.name)} into backup.targets.{r.name}.password "
        "(inv secrets.edit): the old password no longer opens the repository"
    )
    plan.secrets.extend([r.password, new_password])
    return plan


def _run(r: restic.Repo, argv: list[str]) -> restic.Result:
    proc = run_cmd(argv, timeout_s=600, env=r.env(), secrets=[r.password], check=False)
    return restic.Result(proc.returncode, proc.stdout, proc.stderr)


def handlers(r: restic.Repo, new_password: str) -> dict[str, Any]:
    new = dataclasses.replace(r, password=new_password)

    def add(args: Mapping[str, Any]) -> dict[str, Any]:
        fd, path = tempfile.mkstemp(prefix="domum-key-")  # 0600, removed whatever happens
        try:
            os.write(fd, new_password.encode())
            os.close(fd)
            res = _run(r, [path if a == PASSWORD_FILE else str(a) for a in args["argv"]])
        finally:
            os.unlink(path)
        if res.outcome != "ok":
            raise CommandFailed(f"restic key add {res.outcome} (exit {res.code}): {res.tail()}")
        return {"added": True}

    def verify(args: Mapping[str, Any]) -> dict[str, Any]:
        res = _run(new, [str(a) for a in args["argv"]])
        if res.outcome != "ok":
            raise CommandFailed(
                f"the new password does not open {r.name} ({res.outcome}, exit {res.code}): "
                f"{res.tail(2)}; the old key stays (remove the added one by hand if wanted)"
            )
        return {"verified": True}

    return {ADD: add, VERIFY: verify}
