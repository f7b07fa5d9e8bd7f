"""Pure planners shared by the backup tasks: restic's arguments, `backup.init` and
`backup.prune`. Inventory + probed facts in, Plans out; the executor runs exactly these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..inventory.model import Inventory
from ..plan import Local, Plan, ResultOf
from ..ssh import repo_path
from . import jobs
from .bookkeeping import interrupt, session
from .jobs import Job
from .repository import restic


def state_dir(inv: Inventory) -> Path:
    return repo_path(inv.backup.state_dir)


def snapshot_host(inv: Inventory) -> str:
    """restic's --host: fixed, so the job's group (host, paths) never splits by machine name."""
    return inv.cluster.name


def backup_args(inv: Inventory, job: Job, path: Path) -> list[str]:
    return [*backup_flags(inv, job), str(path)]


def backup_flags(inv: Inventory, job: Job) -> list[str]:
    """`restic backup` and its tags, without what it reads (a path, or a command's stdout)."""
    return [
        "backup",
        "--json",
        "--quiet",
        "--tag",
        jobs.TAG,
        "--tag",
        jobs.job_tag(job.name),
        "--tag",
        jobs.PARTIAL_TAG,  # until `confirm_args` marks it complete after exit 0
        "--host",
        snapshot_host(inv),
    ]


def confirm_args(snapshot: str) -> list[str]:
    """After `restic backup` exited 0: swap `partial` for `complete` (restic writes the tagged
    copy, then deletes the old one; `--json` reports the new id)."""
    return ["tag", "--json", "--add", jobs.COMPLETE_TAG, "--remove", jobs.PARTIAL_TAG, snapshot]


def forget_args(inv: Inventory, job: Job, *, dry_run: bool, prune: bool = True) -> list[str]:
    """Retention over the job's COMPLETE snapshots only (`--tag a,b`: both tags); partial ones
    are removed by `backup.prune` on their own rule (repository/prune.py)."""
    complete = f"{jobs.job_tag(job.name)},{jobs.COMPLETE_TAG}"
    args = ["forget", "--json", "--tag", complete, "--group-by", "host,paths"]
    args += jobs.retention_flags(inv, job)
    if dry_run:
        args.append("--dry-run")
    elif prune:
        args.append("--prune")
    return args


def _password_env(target: str) -> str:
    from ..secrets.store import env_name

    return env_name(jobs.password_key(target))


def plan_init(repos: dict[str, restic.Repo], initialised: dict[str, bool | str]) -> Plan:
    """`initialised`: True, False, or why the target could not be asked (then planned as
    fresh, and the note says so: a real run's `restic init` fails if it is still unreachable)."""
    plan = Plan("initialise restic targets")
    for name, r in repos.items():
        state = initialised.get(name)
        if state is True:
            plan.note(f"{name}: already a restic repository")
            continue
        if isinstance(state, str):
            plan.note(f"{name}: could not ask ({state}); planned as a new repository")
        plan.add(
            restic.cmd(
                r,
                ["init"],
                desc=f"create the repository ({name}; password from ${_password_env(name)})",
                timeout_s=600,
                check=True,
            )
        )
    plan.secrets.extend(r.password for r in repos.values())
    return plan


def decision_line(row: dict[str, Any]) -> str:
    return (
        f"{row['action']:6} {row['job']}/{row['target']} {row['snapshot']} "
        f"{str(row['time'])[:19]}  {', '.join(row['reasons'])}"
    ).rstrip()


def plan_prune(
    inv: Inventory,
    decided: dict[tuple[str, str], list[dict[str, Any]] | str],
    repos: dict[str, restic.Repo],
    *,
    reclaim: bool = False,
) -> Plan:
    """Forget (and prune) exactly the snapshots restic's own dry run listed, by id: what was
    shown is what is deleted. The decision itself is in the notes, row by row. A decision that
    could not be made (str: restic's error) is recorded as that job's retention failure.

    Each job/target's outcome is recorded (bookkeeping/retention.py), then the metrics. With
    `reclaim` (the weekly timer), `restic prune --max-unused` runs on every target after the
    forgets: since restic 0.16 it also removes packs no snapshot references (a killed or failed
    backup's) when nothing was forgotten, which `forget --prune` alone never reaches."""
    sd = state_dir(inv)
    plan = Plan("apply retention (restic forget --prune)" + (", reclaim space" if reclaim else ""))
    for rows in decided.values():
        if isinstance(rows, str):
            continue
        plan.notes += [decision_line(row) for row in rows]
    from .repository import on_nas  # the NAS's own repository: restic runs on the NAS

    plan.add(session.lock_step(sd), *on_nas.install_steps(inv, sorted(repos)))
    doomed = 0
    for (job, target), rows in decided.items():
        record: dict[str, Any] = {"job": job, "target": target}
        if isinstance(rows, str):
            plan.note(f"{job}/{target}: retention not decided: {rows}")
            record["error"] = rows
            plan.add(Local("backup.retention-record", record, desc="retention FAILED: state"))
            continue
        ids = [str(row["id"]) for row in rows if row["action"] == "remove"]
        record["kept"] = sum(1 for row in rows if row["action"] == "keep")
        if ids:
            doomed += len(ids)
            r = repos[target]
            timeout = inv.backup.jobs[job].timeout
            forget = on_nas.restic_step(
                inv,
                r,
                ["forget", "--prune", *ids],
                desc=f"remove {len(ids)} snapshot(s) of {job} from {target}: "
                + ", ".join(i[:8] for i in ids),
                timeout_s=timeout,
                destructive=True,
                lock="prune",
            )
            plan.add(interrupt.grouped(forget, f"forget-{job}-{target}"))
            record["outcome"] = ResultOf(len(plan.steps) - 1)
        plan.add(Local("backup.retention-record", record, desc="retention status: state"))
    if not doomed:
        plan.note("nothing to remove")
    if reclaim:
        for name, r in sorted(repos.items()):
            prune = on_nas.restic_step(
                inv,
                r,
                ["prune", "--max-unused", inv.backup.prune_max_unused],
                desc=f"reclaim unreferenced data on {name} (repack above "
                f"{inv.backup.prune_max_unused} unused)",
                timeout_s=max((j.timeout for j in inv.backup.jobs.values()), default=7200.0),
                destructive=True,
                lock="prune",
            )
            plan.add(
                interrupt.grouped(prune, f"reclaim-{name}"),
                Local(
                    "backup.reclaim-record",
                    {"target": name, "outcome": ResultOf(len(plan.steps))},
                    desc="reclaim status: state",
                ),
            )
    plan.add(session.metrics_step(inv))
    plan.finally_steps.append(session.unlock_step(sd))
    plan.secrets.extend(r.password for r in repos.values())
    return plan
