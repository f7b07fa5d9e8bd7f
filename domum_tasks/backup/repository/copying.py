"""3-2-1 done properly: `restic copy` of a job's complete snapshots from the repository it
backs up to (say the NAS's) into that target's `copy_to` targets (say the off-site one),
instead of a second, independent backup that reads every source again.

- Only complete snapshots travel: `--tag job=<job>,complete` (both tags); a partial one never
  reaches the off-site copy. restic copy skips snapshots the destination already holds
  (restic cmd/restic/cmd_copy.go: similarSnapshots on time, tree and paths), so each run
  sends only what is new, and a copy killed half-way is redone whole by the next run.
- Locks: `--retry-lock`, never `restic unlock` (restic takes a shared lock on each side).
- Passwords: the destination's in RESTIC_PASSWORD, the source's in RESTIC_FROM_PASSWORD, in
  restic's environment, never argv (as every restic Domum runs here).
- The copies are the job's snapshots too: `backup.drill` rotates over them, `backup.prune`
  applies the job's retention there (`holders`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import CommandFailed, ConfigError
from ...inventory.model import Inventory
from ...plan import Local, Step
from .. import jobs
from ..jobs import Job
from . import restic


def copies(inv: Inventory, job: Job) -> list[tuple[str, str]]:
    """(source, destination) pairs of a job: its restic targets' copy_to, checked."""
    targets = inv.backup.targets
    valid = ", ".join(t for t, s in sorted(targets.items()) if s.type == "restic")
    out: list[tuple[str, str]] = []
    for src in jobs.restic_targets(inv, job):
        for dest in targets[src].copy_to:
            where = f"backup.targets.{src}.copy_to"
            if dest not in targets or targets[dest].type != "restic" or dest == src:
                raise ConfigError(
                    f"{where}: {dest!r} is not another restic target under backup.targets; "
                    f"valid: {valid}"
                )
            if dest in job.spec.targets:
                raise ConfigError(
                    f"backup.jobs.{job.name}.targets: lists {dest}, which {where} already "
                    f"fills with restic copy: list only {src} (or drop the copy_to)"
                )
            out.append((src, dest))
    return out


def holders(inv: Inventory, job: Job) -> list[str]:
    """Every restic target holding the job's snapshots: its own, then their copies."""
    own = list(jobs.restic_targets(inv, job))
    return own + [d for _, d in copies(inv, job) if d not in own]


def copy_argv(inv: Inventory, job: Job, src: restic.Repo, dest: restic.Repo) -> list[str]:
    complete = f"{jobs.job_tag(job.name)},{jobs.COMPLETE_TAG}"
    # src.options: the strict ssh command of an sftp source (restic's -o is global)
    argv = dest.argv(*src.options, "copy", "--from-repo", src.repository, lock="backup")
    return [*argv, "--tag", complete]


def steps(inv: Inventory, job: Job, repos: Mapping[str, restic.Repo]) -> list[Step]:
    """One step per (source, destination), after the backups: the lane stops at a failure."""
    out: list[Step] = []
    for src, dest in copies(inv, job):
        shown = restic.repo(inv, dest, inv.backup.targets[dest], "")  # argv needs no password
        out.append(
            Local(
                "backup.copy",
                {
                    "job": job.name,
                    "from": src,
                    "to": dest,
                    "argv": copy_argv(inv, job, repos[src], shown),
                },
                desc=f"restic copy of the complete snapshots {src} -> {dest} (3-2-1)",
            )
        )
    return out


def dest_repos(inv: Inventory, selected: list[Job], secrets: Any = None) -> dict[str, restic.Repo]:
    """The destinations' repositories with their passwords (read while planning, so a missing
    secret fails the dry-run as it would the run)."""
    from .access import repo_for

    return {
        d: repo_for(inv, d, secrets) for j in selected if j.uses_restic for _, d in copies(inv, j)
    }


def run(
    src: restic.Repo, dest: restic.Repo, args: Mapping[str, Any], timeout_s: float
) -> dict[str, str]:
    from ...run import run_cmd

    env = {**dest.env(), "RESTIC_FROM_PASSWORD": src.password}
    proc = run_cmd(
        [str(a) for a in args["argv"]],
        timeout_s=timeout_s,
        env=env,
        secrets=[src.password, dest.password],
        check=False,
        inherit_fds=True,
    )
    res = restic.Result(proc.returncode, proc.stdout, proc.stderr)
    if res.outcome != "ok":
        raise CommandFailed(
            f"restic copy {src.name} -> {dest.name} {res.outcome} (exit {res.code}): {res.tail(2)}",
            returncode=res.code,
        )
    return {"from": src.name, "to": dest.name}
