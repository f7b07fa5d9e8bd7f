"""restic, as its own source documents it: argv builders, exit codes, and its JSON outputs.

Domum needs restic >= 0.16 (MIN_VERSION; pinned 0.18.0, see tools/pins.py): --retry-lock, and
the stricter lock handling of 0.15/0.16 (a client that could not refresh its lock in time stops
instead of writing on). Exit codes (restic doc/075_scripting.rst): 0 ok; 1 failed; 3 backup made
a snapshot but could not read some source files (an INCOMPLETE snapshot: a failure for us) or
forget could not remove some snapshots; 10 no repository (0.17+), 11 lock failed (0.17+), 12 wrong
password (0.17.1+); unknown codes are failures. The stderr texts are kept as a second sign.

Locks: Domum never runs `restic unlock`. Every command that takes a lock waits for another
client's lock with `--retry-lock` (LOCK_WAIT_S, capped by the inventory's backup.lock_wait) and
then fails as "locked", naming the holder restic reports (`lock_holder`).

No process runs here: `cmd` builds plan steps, facts.py probes, the executor runs them.
The password goes to restic through RESTIC_PASSWORD in its environment, never in argv. An sftp:
repository gets an ssh command with the inventory's key and known_hosts and
StrictHostKeyChecking=yes, like every other SSH connection Domum makes.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ...inventory.model import BackupTarget, Inventory
from ...plan import Cmd
from ..producers.transport import strict_ssh

OK, INCOMPLETE, NO_REPO, LOCKED, BAD_PASSWORD = 0, 3, 10, 11, 12
MIN_VERSION = (0, 16)
Outcome = Literal["ok", "incomplete", "no-repo", "locked", "bad-password", "failed"]
_NO_REPO_TEXT = ("Is there a repository at the following location?",)
_BAD_PASSWORD_TEXT = ("wrong password or no key found",)
_LOCKED_TEXT = ("unable to create lock", "repository is already locked")
# How long each command waits for a lock another client holds (restic --retry-lock). Reads that
# a person waits for are short; backup takes a shared lock (only an exclusive one blocks it);
# forget/prune/check need the repository to themselves and may wait longer.
LOCK_WAIT_S: dict[str, float] = {
    "backup": 300.0,
    "tag": 60.0,
    "restore": 60.0,
    "forget": 600.0,
    "prune": 1800.0,
    "check": 600.0,
}
_SFTP = re.compile(r"^sftp:(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>.*)$")


@dataclass(frozen=True)
class Repo:
    """One restic target with what restic needs to open it."""

    name: str
    repository: str
    password: str = field(repr=False)
    options: tuple[str, ...] = ()
    cache_dir: str = ""
    lock_wait_s: float | None = None  # the inventory's backup.lock_wait: caps LOCK_WAIT_S

    def env(self) -> dict[str, str]:
        env = {"RESTIC_REPOSITORY": self.repository, "RESTIC_PASSWORD": self.password}
        from ... import settings

        if self.cache_dir and not settings.get("RESTIC_CACHE_DIR"):
            # systemd runs a system service without $HOME: restic would run uncached
            env["RESTIC_CACHE_DIR"] = self.cache_dir
        return env

    def argv(self, *args: str, lock: str = "") -> list[str]:
        """`lock`: the command's LOCK_WAIT_S key; its wait goes before the command's args."""
        return ["restic", "-r", self.repository, *self.options, *self.retry_lock(lock), *args]

    def retry_lock(self, lock: str) -> list[str]:
        if not lock:
            return []
        wait = LOCK_WAIT_S[lock]
        if self.lock_wait_s is not None:
            wait = min(wait, self.lock_wait_s)
        return ["--retry-lock", f"{int(wait)}s"] if wait >= 1 else []


def sftp_command(inv: Inventory, repository: str) -> str | None:
    """The strict ssh command for an sftp: repository (None for other backends)."""
    m = _SFTP.match(repository)
    if not m:
        return None
    host, user = m.group("host"), m.group("user")
    port = 22
    nas = inv.nas
    if nas is not None and host in (str(nas.host), nas.hostname):
        port, user = nas.ssh_port, user or nas.user
    argv = [*strict_ssh(inv, port), f"{user}@{host}" if user else host, "-s", "sftp"]
    return shlex.join(argv)


def repo(inv: Inventory, name: str, target: BackupTarget, password: str) -> Repo:
    options: tuple[str, ...] = ()
    cmd = sftp_command(inv, target.repository)
    if cmd is not None:
        options = ("-o", f"sftp.command={cmd}")
    from ...ssh import repo_path

    cache = repo_path(inv.backup.state_dir) / "cache" / "restic"
    return Repo(name, target.repository, password, options, str(cache), inv.backup.lock_wait)


@dataclass
class Result:
    """What one restic process returned (from a Cmd step's StepResult or a probe)."""

    code: int | None
    stdout: str
    stderr: str

    @property
    def outcome(self) -> Outcome:
        return classify(self.code, self.stderr)

    def tail(self, lines: int = 6) -> str:
        if self.outcome == "locked":
            return (
                f"repository locked by {lock_holder(self.stderr)}; Domum never removes a lock: "
                "once that client is gone, `restic unlock` by hand"
            )
        text = (self.stderr or self.stdout).strip().splitlines()
        keep = [ln for ln in text if '"message_type":"status"' not in ln]
        return " | ".join(keep[-lines:])


# restic internal/restic/lock.go, alreadyLockedError.Error() and Lock.String(): "repository is
# already locked [exclusively ]by PID <pid> on <host> by <user> (UID .., GID ..)\nlock was
# created at <time> (<age> ago)\nstorage ID <id>". With --json the same text is the `message` of
# an `exit_error` line.
_HOLDER = re.compile(
    r"already locked (?P<excl>exclusively )?by (?P<who>PID \d+ on \S+ by \S+)"
    r"(?:[^\n]*\nlock was created at (?P<at>[^\n]*))?(?:\nstorage ID (?P<id>\w+))?"
)


def lock_holder(stderr: str) -> str:
    """Who holds the lock restic could not take, as restic reported it."""
    texts = [str(o.get("message", "")) for o in json_lines(stderr) if "message" in o]
    for text in [*texts, stderr]:
        m = _HOLDER.search(text)
        if m:
            where = f" (lock {m.group('id')})" if m.group("id") else ""
            when = f", created {m.group('at')}" if m.group("at") else ""
            return f"{m.group('who')}{when}{where}"
    return "another restic client (restic did not say which)"


def classify(code: int | None, stderr: str) -> Outcome:
    """restic's exit code (None: timed out or never ran) as an outcome."""
    if code is None:
        return "failed"
    if code == OK:
        return "ok"
    if code == INCOMPLETE:
        return "incomplete"
    if code == NO_REPO or any(t in stderr for t in _NO_REPO_TEXT):
        return "no-repo"
    if code == BAD_PASSWORD or any(t in stderr for t in _BAD_PASSWORD_TEXT):
        return "bad-password"
    if code == LOCKED or any(t in stderr for t in _LOCKED_TEXT):
        return "locked"
    return "failed"  # restic: an unknown exit code MUST be treated as a failure


def cmd(
    r: Repo,
    args: Sequence[str],
    *,
    desc: str = "",
    timeout_s: float = 7200.0,
    check: bool = False,
    inherit_fds: bool = False,
    destructive: bool = False,
    lock: str = "",
) -> Cmd:
    """A restic step: the password reaches restic through its environment, never argv (the
    plan lists it among its secrets, so it is masked wherever it could show). `lock`: wait
    that long (LOCK_WAIT_S) for another client's lock, never remove it."""
    return Cmd(
        tuple(r.argv(*args, lock=lock)),
        desc=desc,
        timeout_s=timeout_s,
        env=r.env(),
        check=check,
        inherit_fds=inherit_fds,
        destructive=destructive,
    )


# --- JSON outputs --------------------------------------------------------------------------


def json_lines(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


def tag_result(stdout: str) -> str:
    """The new id of a snapshot `restic tag --json` rewrote ("" if it reported none)."""
    for o in json_lines(stdout):
        if o.get("message_type") == "changed":
            return str(o.get("new_snapshot_id") or "")
    return ""


def backup_summary(stdout: str) -> dict[str, Any]:
    """The `{"message_type":"summary", ...}` line of `restic backup --json` ({} if absent)."""
    found = [o for o in json_lines(stdout) if o.get("message_type") == "summary"]
    return dict(found[-1]) if found else {}


def json_value(stdout: str) -> Any:
    """The JSON document of `snapshots --json`, `forget --json` (first JSON line that parses)."""
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith(("[", "{")):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def snapshot_row(
    s: dict[str, Any], job: str, target: str, action: str, reasons: list[str]
) -> dict[str, Any]:
    """One retention decision about snapshot `s` (keep/remove), as the plans show it."""
    return {
        "job": job,
        "target": target,
        "snapshot": s.get("short_id") or str(s.get("id", ""))[:8],
        "id": s.get("id", ""),
        "time": s.get("time", ""),
        "action": action,
        "reasons": reasons,
    }


def forget_rows(stdout: str, job: str, target: str) -> list[dict[str, Any]]:
    """`forget --json` groups -> one row per snapshot: keep/remove and restic's own reasons.

    restic 0.14's `reasons[].snapshot` has no id, so reasons are matched on (time, tree).
    """
    rows: list[dict[str, Any]] = []
    for group in json_value(stdout) or []:
        reasons = {
            (r.get("snapshot", {}).get("time"), r.get("snapshot", {}).get("tree")): r.get(
                "matches", []
            )
            for r in group.get("reasons") or []
        }
        for action, snaps in (
            ("keep", group.get("keep") or []),
            ("remove", group.get("remove") or []),
        ):
            for s in snaps:
                why = reasons.get((s.get("time"), s.get("tree")), []) if action == "keep" else []
                rows.append(snapshot_row(s, job, target, action, list(why)))
    rows.sort(key=lambda r: str(r["time"]), reverse=True)
    return rows


_PACK = re.compile(r"\b(?:pack|Pack ID does not match, want)\s+([0-9a-f]{8,64})")


def bad_packs(text: str) -> list[str]:
    """Pack ids `restic check` complains about (e.g. 'Pack ID does not match, want <id>')."""
    seen: list[str] = []
    for m in _PACK.finditer(text):
        if m.group(1) not in seen:
            seen.append(m.group(1))
    return seen
