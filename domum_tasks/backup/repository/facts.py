"""Read-only restic probes a planner makes: is a target a repository yet, a job's snapshots,
restic's own `forget --dry-run` decision. `--no-lock` where restic allows it: a probe writes
nothing into the repository, not even a lock file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...run import run_cmd
from .. import jobs
from . import access, restic


def probe(r: restic.Repo, args: Sequence[str], *, timeout_s: float = 600.0) -> restic.Result:
    """One restic process; its exit code and output as data (never raises on an exit code)."""
    from ...errors import CommandFailed

    try:
        proc = run_cmd(
            r.argv(*args), timeout_s=timeout_s, env=r.env(), secrets=[r.password], check=False
        )
    except CommandFailed as exc:  # timed out: no exit code
        if isinstance(exc.__cause__, FileNotFoundError):
            raise
        return restic.Result(None, "", str(exc))
    return restic.Result(proc.returncode, proc.stdout, proc.stderr)


def is_repo(r: restic.Repo) -> bool | str:
    """True: a repository; False: none there yet. A target that cannot be asked (host down, no
    network) is the reason, as text: the plan is then made as for a fresh target and says so.
    A wrong password is bad input whatever the target holds."""
    res = probe(r, ["cat", "config"], timeout_s=300)
    if res.outcome == "no-repo":
        return False
    if res.outcome == "failed":
        return f"restic cat config failed (exit {res.code}): {res.tail(2)}"
    access.check_result(r, res, "cat config")
    return True


def snapshots(r: restic.Repo, job: str) -> list[dict[str, Any]]:
    """The job's snapshots on one target, oldest first."""
    res = probe(r, ["--no-lock", "snapshots", "--json", "--tag", jobs.job_tag(job)])
    access.check_result(r, res, "snapshots")
    snaps = restic.json_value(res.stdout) or []
    return sorted(snaps, key=lambda s: str(s.get("time", "")))


def forget_decision(r: restic.Repo, args: Sequence[str], timeout_s: float) -> str:
    """restic's own `forget --dry-run --json` answer (stdout)."""
    res = probe(r, ["--no-lock", *args], timeout_s=timeout_s)
    access.check_result(r, res, "forget --dry-run")
    return res.stdout


def snapshot_files(r: restic.Repo, snap_id: str, under: str) -> list[tuple[str, str]]:
    """(path relative to `under`, restic node type) of everything a snapshot holds below
    `under`: `restic ls --json` (read-only, no lock), for a restore's preview."""
    res = probe(r, ["--no-lock", "ls", "--json", "--recursive", snap_id, under])
    access.check_result(r, res, "ls")
    base = under.rstrip("/") + "/"
    out: list[tuple[str, str]] = []
    for line in res.stdout.splitlines():
        node = restic.json_value(line)
        if isinstance(node, dict) and node.get("struct_type") == "node":
            path = str(node.get("path", ""))
            if path.startswith(base):
                out.append((path[len(base) :], str(node.get("type", ""))))
    return out
