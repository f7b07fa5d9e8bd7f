"""backup.* tasks: declarations. Each planner probes (read-only), plans, and hands the plan to
the executor; `--dry-run` prints that same plan.

Exit codes: 0 every job ok; 1 some job failed (the others still ran); 2 configuration;
4 refused (not initialised, not empty, not confirmed); 5 another run holds the lock.
"""

from __future__ import annotations

import json as jsonlib
from typing import Any

from invoke import Collection, Context

from ..taskutil import Planned, domum_task, load_inventory, plan_task

JOB = "a job name under backup.jobs (default: every enabled job)"


@plan_task()
def init(c: Context) -> Planned:
    """Initialise every restic target that is not yet a repository (idempotent)."""
    from . import plan
    from .bookkeeping.session import say
    from .repository import access, facts

    inv = load_inventory()
    names = sorted(n for n, t in inv.backup.targets.items() if t.type == "restic")
    repos = {n: access.repo_for(inv, n) for n in names}
    known = {n: facts.is_repo(r) for n, r in repos.items()}

    def report(results: list[Any], json_out: bool) -> None:
        for n, r in repos.items():
            done = "already a repository" if known[n] is True else f"initialised {r.repository}"
            say(f"{n}: {done}")

    return Planned(plan.plan_init(repos, known), inv, report=report)


@plan_task(
    help={
        "job": "run only this job (even if disabled)",
        "all": "run every enabled job (the default)",
        "due": "run only the jobs whose schedule came due since their last success",
        "json": "with --dry-run: the plan as JSON; otherwise each job's result as JSON",
    }
)
def snapshot(c: Context, job: str = "", all: bool = False, due: bool = False) -> Planned:
    """Back up each job: stage its data, restic backup to every target, retention."""
    import time

    from ..errors import ConfigError
    from . import jobs
    from .bookkeeping import lock, state
    from .plan import state_dir
    from .repository import access
    from .snapshot.plan import plan_snapshot
    from .snapshot.runner import SnapshotRun

    if sum(map(bool, (job, all, due))) > 1:
        raise ConfigError("use one of --job J, --all, --due")
    inv = load_inventory()
    sd = state_dir(inv)
    lock.check_writable(sd)
    selected = jobs.select(inv, job)
    for j in selected:
        if j.uses_restic or j.kind == "vzdump":
            jobs.retention_flags(inv, j)  # an empty policy is a config error before anything runs
    if due:  # the state as it is now: the real run plans (and runs) the same jobs
        selected = jobs.due(selected, state.load(sd), time.time())
    repos = {j.name: access.job_repos(inv, j) for j in selected if j.uses_restic}
    run = SnapshotRun(inv, sd, repos=repos, deadline_s=sum(j.spec.timeout for j in selected))
    pve = None
    if any(j.kind == "vzdump" for j in selected):  # one PVE session: probes, then the calls
        from ..pve import Session

        timeouts = [j.spec.timeout for j in selected if j.kind == "vzdump"]
        pve = Session(inv, task_deadline_s=max(timeouts))
    p = plan_snapshot(inv, selected, repos, sd, due=due, pve=pve)
    handlers = {**run.handlers(), **(pve.handlers() if pve is not None else {})}
    return Planned(p, inv, handlers, report=run.report, pve=pve)


@domum_task(name="list", help={"job": JOB, "json": "machine-readable output"})
def list_(c: Context, job: str = "", json: bool = False) -> None:
    """Snapshots per job and target, the newest and its age, and the last run."""
    from . import jobs
    from .repository import listing

    inv = load_inventory()
    rows = listing.rows(inv, jobs.select(inv, job, include_disabled=not job))
    if json:  # the nested rows (every snapshot), not the table's cells
        print(jsonlib.dumps(rows, indent=2))
        return
    from ..console import print_table

    print_table("backups", listing.COLUMNS, listing.table_rows(rows))


@plan_task(yes=True, help={"job": JOB})
def prune(c: Context, job: str = "") -> Planned:
    """Apply each job's retention to its complete snapshots (never the newest one), and remove
    partial ones (the newest partial newer than every complete one stays for inspection).

    The plan's notes show the decision row by row (restic's own `forget --dry-run` for the
    complete ones). Another client's lock: wait, then exit 5 naming it (never unlocked)."""
    from . import jobs, plan
    from .bookkeeping import lock
    from .bookkeeping.session import Session, say
    from .repository import access
    from .repository import prune as pr

    inv = load_inventory()
    selected = [j for j in jobs.select(inv, job) if j.uses_restic]
    for j in selected:
        jobs.retention_flags(inv, j)
    sd = plan.state_dir(inv)
    lock.check_writable(sd)
    repos = {t: access.repo_for(inv, t) for j in selected for t in jobs.restic_targets(inv, j)}
    decided = {
        (j.name, t): pr.dry_run_rows(inv, j, t, repos[t])
        for j in selected
        for t in jobs.restic_targets(inv, j)
    }
    p = plan.plan_prune(inv, decided, repos)
    run = Session(inv, sd)

    def report(results: list[Any], json_out: bool) -> None:
        for line in p.notes:
            say(line)
        pr.raise_failures(results, p.secrets)

    return Planned(p, inv, run.handlers(), report=report)


@plan_task(
    help={"job": JOB, "subset": "read 1/N of the packs per run, rotating (full read every N runs)"}
)
def verify(c: Context, job: str = "", subset: int = 4) -> Planned:
    """restic check --read-data-subset=n/N (n rotates) and the newest manifest."""
    from ..errors import ConfigError
    from . import jobs, plan
    from .bookkeeping import lock, state
    from .recovery import verify as vf
    from .repository import access

    if subset < 1:
        raise ConfigError(f"--subset {subset}: must be 1 or more")
    inv = load_inventory()
    sd = plan.state_dir(inv)
    lock.check_writable(sd)
    selected = jobs.select(inv, job)
    repos = {t: access.repo_for(inv, t) for t in vf.targets_of(inv, selected)}
    p = vf.plan_verify(inv, selected, state.load(sd), subset, repos)
    run = vf.VerifyRun(inv, sd, repos=repos)
    return Planned(p, inv, run.handlers(), report=run.report)


@plan_task(
    help={
        "job": "the job to restore (required)",
        "to": "directory to restore into (must be empty unless --force)",
        "at": "snapshot id, or a time: the newest complete snapshot not after it",
        "target": "restic target to restore from (default: the job's first)",
        "force": "restore into a non-empty directory, replacing what the backup holds",
    }
)
def restore(
    c: Context, job: str = "", to: str = "", at: str = "", target: str = "", force: bool = False
) -> Planned:
    """Restore a job's snapshot into DIR and re-check every file's sha256."""
    from pathlib import Path

    from ..errors import ConfigError
    from . import jobs
    from .recovery import restore as rs
    from .repository import access, facts

    if not job or not to:
        raise ConfigError("--job J and --to DIR are required")
    inv = load_inventory()
    j = jobs.select(inv, job)[0]
    if not j.uses_restic:
        raise ConfigError(
            f"job {job} is a {j.kind} job: its archives are on PVE storage; restore a guest "
            "with inv proxmox.restore --node N --from VOLID (each run logs the volids)"
        )
    name = target or next(iter(jobs.restic_targets(inv, j)))
    if name not in j.spec.targets:
        raise ConfigError(f"--target {name}: job {job} backs up to {', '.join(j.spec.targets)}")
    dest = Path(to).expanduser().resolve()
    rs.check_destination(dest, force)
    r = access.repo_for(inv, name)
    snap = rs.choose(facts.snapshots(r, job), at, job, name)

    def report(results: list[Any], json_out: bool) -> None:
        files, size = next(
            x.value for x in results if getattr(x.step, "action", "") == "backup.place"
        )
        print(
            f"restored {job} snapshot {snap.get('short_id')} ({snap.get('time', '')[:19]}) "
            f"from {name} into {dest}: {files} files, {size} bytes, every one matches "
            "MANIFEST.sha256"
        )
        if j.kind == "etcd-snapshot":
            print("\n".join(rs.recovery_steps(inv, dest)))

    return Planned(
        rs.plan_restore(j, r, snap, dest, force), inv, rs.restore_handlers(), report=report
    )


@plan_task(help={"job": JOB})
def drill(c: Context, job: str = "") -> Planned:
    """Restore drill: restore each newest snapshot to a temp dir and verify it."""
    from ..errors import DomumError
    from . import jobs, plan
    from .bookkeeping import lock, state
    from .recovery import restore as rs
    from .repository import access, facts

    inv = load_inventory()
    sd = plan.state_dir(inv)
    lock.check_writable(sd)
    data = state.load(sd)
    picked: dict[str, Any] = {}
    skipped: list[str] = []
    for j in jobs.select(inv, job):
        if not j.uses_restic:
            continue
        if not job and not data["jobs"].get(j.name, {}).get("last_success"):
            skipped.append(j.name)
            continue
        try:  # a target that cannot answer is this job's drill failing, not the plan's
            tname = next(iter(jobs.restic_targets(inv, j)), None)
            if tname is None:
                raise DomumError(f"job {j.name} has no restic target to drill")
            r = access.repo_for(inv, tname)
            picked[j.name] = (r, rs.choose(facts.snapshots(r, j.name), "", j.name, tname))
        except DomumError as exc:
            picked[j.name] = str(exc).splitlines()[0]
    run = rs.DrillRun(inv, sd)
    return Planned(rs.plan_drill(inv, picked, skipped), inv, run.handlers(), report=run.report)


@plan_task(
    name="install-timer",
    help={
        "cron": "print crontab lines instead of writing systemd units",
        "unit_dir": "where to write the units (default /etc/systemd/system)",
    },
)
def install_timer(c: Context, cron: bool = False, unit_dir: str = "") -> Planned:
    """Write systemd timers: snapshot --due every 15 min, weekly verify and drill."""
    from .snapshot import timer

    if cron:
        return Planned(timer.plan_crontab(), handlers=timer.handlers())
    p = timer.plan_units(unit_dir or timer.UNIT_DIR)

    def report(results: list[Any], json_out: bool) -> None:
        for note in p.notes:
            print(note)

    return Planned(p, report=report)


ns = Collection("backup")
for _t in (init, snapshot, list_, prune, verify, restore, drill, install_timer):
    ns.add_task(_t)
