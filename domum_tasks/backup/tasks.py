"""backup.* tasks. Thin: parse arguments, load the inventory, call the backup modules.

Exit codes: 0 every job ok; 1 some job failed (the others still ran); 2 configuration;
4 refused (not initialised, not empty, not confirmed); 5 another run holds the lock.
"""

from __future__ import annotations

import json as jsonlib
import sys
from typing import Any

from invoke import Collection, Context

from ..taskutil import DRY_RUN, JSON, YES, domum_task, load_inventory

JOB = "a job name under backup.jobs (default: every enabled job)"


def _say(text: str) -> None:
    if sys.stdout.isatty():  # quiet on success off a terminal (cron, systemd)
        print(text, flush=True)


def _fail(failures: list[str], what: str) -> None:
    from ..errors import DomumError

    for line in failures:
        print(f"domum: {line}", file=sys.stderr)
    if failures:
        raise DomumError(f"{what}: {len(failures)} failure(s)")


@domum_task(help={"dry_run": DRY_RUN, "json": JSON})
def init(c: Context, dry_run: bool = False, json: bool = False) -> None:
    """Initialise every restic target that is not yet a repository (idempotent)."""
    from ..taskutil import executor
    from . import plan
    from .repository import access

    inv = load_inventory()
    names = sorted(n for n, t in inv.backup.targets.items() if t.type == "restic")
    repos = {n: access.repo_for(inv, n) for n in names}
    known = {n: access.is_repo(r) for n, r in repos.items()}
    p = plan.plan_init(inv, names, known)
    p.secrets.extend(r.password for r in repos.values())
    if dry_run:
        executor(dry_run=True, json_out=json).execute(p)
        return
    from .repository import restic

    for n in names:
        if not known[n]:
            res = restic.run(repos[n], ["init"], timeout_s=600)
            access.check_result(repos[n], res, "init")
            _say(f"{n}: initialised {repos[n].repository}")
        else:
            _say(f"{n}: already a repository")


@domum_task(
    help={
        "job": "run only this job (even if disabled)",
        "all": "run every enabled job (the default)",
        "due": "run only the jobs whose schedule came due since their last success",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def snapshot(
    c: Context,
    job: str = "",
    all: bool = False,
    due: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Back up each job: stage its data, restic backup to every target, retention."""
    from ..errors import ConfigError
    from . import jobs
    from .snapshot import runner

    if sum(map(bool, (job, all, due))) > 1:
        raise ConfigError("use one of --job J, --all, --due")
    inv = load_inventory()
    selected = jobs.select(inv, job)
    for j in selected:
        if j.uses_restic or j.kind == "vzdump":
            jobs.retention_flags(inv, j)  # an empty policy is a config error before anything runs
    if dry_run:
        from ..plan import step_dict
        from . import plan

        plans = [plan.plan_job(inv, j) for j in selected]
        if json:
            print(jsonlib.dumps([step_dict(s) for p in plans for s in p.steps], indent=2))
        else:
            print("\n".join(p.render_text() for p in plans))
        return
    results, problems = runner.snapshot(inv, job=job, due=due, say=_say)
    failures = [
        f"backup job {r['job']} FAILED: {r.get('message', '')}"
        for r in results
        if r["status"] != "ok"
    ]
    _fail(failures + [f"backup: {p}" for p in problems], "backup.snapshot")


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


@domum_task(
    help={
        "job": JOB,
        "dry_run": "show restic's own decision, remove nothing",
        "json": JSON,
        "yes": YES,
    }
)
def prune(
    c: Context, job: str = "", dry_run: bool = False, json: bool = False, yes: bool = False
) -> None:
    """Apply each job's retention with restic forget (never the newest snapshot)."""
    from ..errors import Refused
    from . import jobs, plan
    from .bookkeeping import lock
    from .repository import prune as pr

    inv = load_inventory()
    selected = [j for j in jobs.select(inv, job) if j.uses_restic]
    for j in selected:
        jobs.retention_flags(inv, j)
    with lock.held(plan.state_dir(inv)):
        decided = {
            (j.name, t): pr.dry_run_rows(inv, j, t)
            for j in selected
            for t in jobs.restic_targets(inv, j)
        }
        rows = [row for rs in decided.values() for row in rs]
        if dry_run or json:
            out: Any = [
                {k: row[k] for k in ("job", "target", "snapshot", "time", "action", "reasons")}
                for row in rows
            ]
            if json:
                print(jsonlib.dumps(out, indent=2))
            else:
                for row in out:
                    print(
                        f"{row['action']:6} {row['job']}/{row['target']} {row['snapshot']} {row['time'][:19]}  {', '.join(row['reasons'])}"
                    )
            if dry_run:
                return
        doomed = [row for row in rows if row["action"] == "remove"]
        if not doomed:
            _say("nothing to remove")
            return
        if not yes:
            print(
                "This will forget and prune:",
                *(f"  {r['job']}/{r['target']} {r['snapshot']} {r['time'][:19]}" for r in doomed),
                sep="\n",
                file=sys.stderr,
            )
            if not sys.stdin.isatty() or input("Type 'yes' to continue: ").strip().lower() != "yes":
                raise Refused("backup.prune: not confirmed", hint="pass --yes")
        for (name, target), rs in decided.items():
            removed = pr.apply(inv, jobs.select(inv, name)[0], target, rs)
            if removed:
                _say(f"{name}/{target}: removed {', '.join(removed)}")


@domum_task(
    help={"job": JOB, "subset": "read 1/N of the packs per run, rotating (full read every N runs)"}
)
def verify(c: Context, job: str = "", subset: int = 4) -> None:
    """restic check --read-data-subset=n/N (n rotates) and the newest manifest."""
    from ..errors import ConfigError
    from ..ssh import repo_path
    from . import jobs, plan
    from .bookkeeping import lock, metrics, state
    from .recovery import verify as vf

    if subset < 1:
        raise ConfigError(f"--subset {subset}: must be 1 or more")
    inv = load_inventory()
    sd = plan.state_dir(inv)
    with lock.held(sd):
        data = state.load(sd)
        failures = vf.verify(inv, jobs.select(inv, job), data, subset)
        state.save(sd, data)
        metrics.write(inv, data, repo_path(inv.backup.metrics_dir))
    _fail(failures, "backup.verify")
    _say("verify: ok")


@domum_task(
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
) -> None:
    """Restore a job's snapshot into DIR and re-check every file's sha256."""
    from pathlib import Path

    from ..errors import ConfigError
    from . import jobs
    from .recovery import restore as rs
    from .repository import access

    if not job or not to:
        raise ConfigError("--job J and --to DIR are required")
    inv = load_inventory()
    j = jobs.select(inv, job)[0]
    if not j.uses_restic:
        raise ConfigError(
            f"job {job} is a {j.kind} job: restore it in Proxmox (its archives are on PVE storage)"
        )
    name = target or next(iter(jobs.restic_targets(inv, j)))
    if name not in j.spec.targets:
        raise ConfigError(f"--target {name}: job {job} backs up to {', '.join(j.spec.targets)}")
    dest = Path(to).expanduser().resolve()
    rs.check_destination(dest, force)
    r = access.repo_for(inv, name)
    snap = rs.choose(access.snapshots(r, job), at, job, name)
    files, size = rs.restore_into(r, j, snap, dest, timeout_s=j.spec.timeout, force=force)
    print(
        f"restored {job} snapshot {snap.get('short_id')} ({snap.get('time', '')[:19]}) from {name} into {dest}: {files} files, {size} bytes, every one matches MANIFEST.sha256"
    )
    if j.kind == "etcd-snapshot":
        print("\n".join(rs.recovery_steps(inv, dest)))


@domum_task(help={"job": JOB})
def drill(c: Context, job: str = "") -> None:
    """Restore drill: restore each newest snapshot to a temp dir and verify it."""
    from ..errors import DomumError
    from ..ssh import repo_path
    from . import jobs, plan
    from .bookkeeping import lock, metrics, state
    from .recovery import restore as rs

    inv = load_inventory()
    sd = plan.state_dir(inv)
    failures = []
    with lock.held(sd):
        data = state.load(sd)
        for j in jobs.select(inv, job):
            if not j.uses_restic:
                continue
            if not job and not data["jobs"].get(j.name, {}).get("last_success"):
                _say(f"{j.name}: no successful run yet, nothing to drill")
                continue
            try:
                _say(rs.drill(inv, j, data, sd / "drill"))
            except DomumError as exc:
                failures.append(f"drill {j.name} FAILED: {str(exc).splitlines()[0]}")
        state.save(sd, data)
        metrics.write(inv, data, repo_path(inv.backup.metrics_dir))
    _fail(failures, "backup.drill")


@domum_task(
    name="install-timer",
    help={
        "cron": "print crontab lines instead of writing systemd units",
        "unit_dir": "where to write the units (default /etc/systemd/system)",
        "dry_run": DRY_RUN,
        "json": JSON,
    },
)
def install_timer(
    c: Context, cron: bool = False, unit_dir: str = "", dry_run: bool = False, json: bool = False
) -> None:
    """Write systemd timers: snapshot --due every 15 min, weekly verify and drill."""
    from ..plan import Write
    from ..taskutil import executor
    from .snapshot import timer

    if cron:
        print(timer.crontab(), end="")
        return
    p = timer.plan_units(unit_dir or timer.UNIT_DIR)
    if dry_run and not json:
        for step in p.steps:
            assert isinstance(step, Write)
            print(f"# {step.path}\n{step.data().decode()}")
        return
    executor(dry_run=dry_run, json_out=json).execute(p)
    if not dry_run:
        for note in p.notes:
            print(note)


ns = Collection("backup")
for _t in (init, snapshot, list_, prune, verify, restore, drill, install_timer):
    ns.add_task(_t)
