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
    from .repository import access, copying
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
    from ..secrets.store import load as load_secrets

    secrets = load_secrets()  # one instance: sops decrypts the file at most once per run
    repos = {j.name: access.job_repos(inv, j, secrets) for j in selected if j.uses_restic}
    run = SnapshotRun(
        inv,
        sd,
        repos=repos,
        copies=copying.dest_repos(inv, selected, secrets),
        deadline_s=sum(j.spec.timeout for j in selected),
    )
    pve = None
    if any(j.kind == "vzdump" for j in selected):  # one PVE session: probes, then the calls
        from ..pve import Session

        timeouts = [j.spec.timeout for j in selected if j.kind == "vzdump"]
        pve = Session(inv, task_deadline_s=max(timeouts))
    from .snapshot.pings import urls

    monitors = urls(inv, selected, secrets)  # secrets: masked in the plan and the logs
    p = plan_snapshot(inv, selected, repos, sd, due=due, pve=pve, monitors=monitors)
    handlers = {**run.handlers(), **(pve.handlers() if pve is not None else {})}
    return Planned(p, inv, handlers, report=run.report, pve=pve)


@domum_task(name="list", help={"job": JOB, "json": "machine-readable output"})
def list_(c: Context, job: str = "", json: bool = False) -> None:
    """Snapshots per job and target, the newest and its age, and the last run.

    Exit 1 when a target could not be listed (4 when it is not initialised yet)."""
    from . import jobs
    from .repository import listing

    inv = load_inventory()
    rows = listing.rows(inv, jobs.select(inv, job, include_disabled=not job))
    if json:  # the nested rows (every snapshot), not the table's cells
        print(jsonlib.dumps(rows, indent=2))
    else:
        from ..console import print_table

        print_table("backups", listing.COLUMNS, listing.table_rows(rows))
    listing.raise_failures(rows)  # exit 1 (4: not initialised) when a target failed


@plan_task(
    yes=True,
    help={
        "job": JOB,
        "reclaim": "then `restic prune --max-unused` every target: reclaim unreferenced data "
        "(a failed or killed backup's) even when nothing was forgotten (the weekly timer)",
    },
)
def prune(c: Context, job: str = "", reclaim: bool = False) -> Planned:
    """Apply retention to complete snapshots (never the newest); remove partial ones.

    The newest partial snapshot newer than every complete one stays for inspection.

    The plan's notes show the decision row by row (restic's own `forget --dry-run` for the
    complete ones). Another client's lock: wait, then exit 5 naming it (never unlocked). Each
    job's retention status is recorded apart from its backups (state, domum_backup_retention_*
    metrics): a retention failure never makes `snapshot --due` re-run a backup."""
    from ..errors import CommandFailed
    from . import jobs, plan
    from .bookkeeping import lock
    from .bookkeeping.retention import RetentionRun
    from .repository import access, copying, on_nas
    from .repository import prune as pr

    inv = load_inventory()
    selected = [j for j in jobs.select(inv, job) if j.uses_restic]
    for j in selected:
        jobs.retention_flags(inv, j)
    sd = plan.state_dir(inv)
    lock.check_writable(sd)
    repos = {t: access.repo_for(inv, t) for j in selected for t in copying.holders(inv, j)}
    decided: dict[tuple[str, str], list[dict[str, Any]] | str] = {}
    for j in selected:
        for t in copying.holders(inv, j):  # the job's targets and their restic copies
            try:  # restic failing to decide is this job's retention failing, recorded as such
                decided[(j.name, t)] = pr.dry_run_rows(inv, j, t, repos[t])
            except CommandFailed as exc:
                decided[(j.name, t)] = str(exc).splitlines()[0]
    p = plan.plan_prune(inv, decided, repos, reclaim=reclaim)
    run = RetentionRun(inv, sd, secrets=list(p.secrets), task="backup.prune")
    run.pending = [("retention", j) for j, _ in decided]
    run.pending += [("reclaim", t) for t in sorted(repos) if reclaim]
    handlers = {**run.handlers(), **on_nas.handlers(repos, p)}  # restic on the NAS
    return Planned(p, inv, handlers, report=run.report_with(p.notes))


@plan_task(
    help={"job": JOB, "subset": "read 1/N of the packs per run, rotating (full read every N runs)"}
)
def verify(c: Context, job: str = "", subset: int = 4) -> Planned:
    """restic check --read-data-subset=n/N (n rotates) and the newest manifest."""
    from ..errors import ConfigError
    from . import jobs, plan
    from .bookkeeping import lock, state
    from .recovery import verify as vf
    from .repository import access, on_nas

    if subset < 1:
        raise ConfigError(f"--subset {subset}: must be 1 or more")
    inv = load_inventory()
    sd = plan.state_dir(inv)
    lock.check_writable(sd)
    selected = jobs.select(inv, job)
    repos = {t: access.repo_for(inv, t) for t in vf.targets_of(inv, selected)}
    p = vf.plan_verify(inv, selected, state.load(sd), subset, repos)
    run = vf.VerifyRun(inv, sd, repos=repos, task="backup.verify")
    run.pending = [("verify", t) for t in repos]  # the plan's order (targets_of: sorted)
    handlers = {**run.handlers(), **on_nas.handlers(repos, p)}  # restic on the NAS
    return Planned(p, inv, handlers, report=run.report)


@plan_task(
    help={
        "job": "the job to restore (required)",
        "to": "directory to restore into (must be empty unless --force)",
        "at": "snapshot id, or a time: the newest complete snapshot not after it",
        "target": "restic target to restore from (default: the job's first)",
        "force": "restore into a non-empty directory: merge, replacing only the backup's own "
        "paths, never deleting other files",
        "on_nas": "a nas job: restic restores ON the NAS, --to is a path there",
    }
)
def restore(
    c: Context,
    job: str = "",
    to: str = "",
    at: str = "",
    target: str = "",
    force: bool = False,
    on_nas: bool = False,
) -> Planned:
    """Restore a job's snapshot into DIR and re-check every file's sha256."""
    from pathlib import Path

    from ..errors import ConfigError
    from . import jobs
    from .recovery import restore as rs
    from .repository import access, copying, facts

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
    held = copying.holders(inv, j)  # its targets and their copy_to copies
    if name not in held:
        raise ConfigError(f"--target {name}: job {job} is stored in {', '.join(held)}")
    if on_nas:  # restic restores on the NAS into a path there (recovery/nas_restore_on_nas.py)
        from .recovery import nas_restore_on_nas as on

        r = access.repo_for(inv, name)
        on.where(inv, j, r)
        snap = rs.choose(facts.snapshots(r, job), at, job, name)
        return Planned(
            on.plan_restore(inv, j, r, snap, to, force),
            inv,
            on.handlers(r),
            report=on.report(job, name, to, snap),
        )
    dest = Path(to).expanduser().resolve()
    rs.check_destination(dest, force)
    r = access.repo_for(inv, name)
    snap = rs.choose(facts.snapshots(r, job), at, job, name)
    if j.kind == "postgres":  # one pg_dumpall script: written out, the operator loads it
        from .recovery import pg_dumpfile

        return pg_dumpfile.planned(inv, job, r, snap, dest)
    planned = rs.plan_restore(j, r, snap, dest, force)
    if dest.is_dir() and any(dest.iterdir()):  # what a merge writes and replaces
        from .recovery.merge import note_preview

        note_preview(
            planned, facts.snapshot_files(r, str(snap["id"]), rs.tree_path(snap, job)), dest
        )

    def report(results: list[Any], json_out: bool) -> None:
        files, size = next(
            x.value for x in results if getattr(x.step, "action", "") == "backup.place"
        )
        print(
            f"restored {job} snapshot {snap.get('short_id')} ({snap.get('time', '')[:19]}) "
            f"from {name} into {dest}: {files} files, {size} bytes, every one matches "
            + ("the repository (restic restore --verify)" if j.kind == "nas" else "MANIFEST.sha256")
        )
        if j.kind == "etcd-snapshot":
            print("\n".join(rs.recovery_steps(inv, dest)))

    return Planned(planned, inv, rs.restore_handlers(), report=report)


@plan_task(help={"job": JOB})
def drill(c: Context, job: str = "") -> Planned:
    """Restore drill: restore each newest snapshot to a temp dir and verify it."""
    from ..errors import DomumError
    from . import jobs, plan
    from .bookkeeping import lock, state
    from .recovery import nas_drill, rotation
    from .recovery import restore as rs
    from .repository import access, copying, facts

    inv = load_inventory()
    sd = plan.state_dir(inv)
    lock.check_writable(sd)
    data = state.load(sd)
    picked: dict[str, Any] = {}
    chosen: dict[str, str] = {}
    skipped: list[str] = []
    for j in jobs.select(inv, job):
        if not j.uses_restic:
            continue
        if not job and not data["jobs"].get(j.name, {}).get("last_success"):
            skipped.append(j.name)
            continue
        names = copying.holders(inv, j)  # its copy_to copies are drilled in turn too
        try:  # a target that cannot answer is this job's drill failing, not the plan's
            if not names:
                raise DomumError(f"job {j.name} has no restic target to drill")
            tname = rotation.pick(names, data["drill"].get(j.name, {}))  # every target in turn
            r = access.repo_for(inv, tname)
            picked[j.name] = (r, rs.choose(facts.snapshots(r, j.name), "", j.name, tname))
        except DomumError as exc:
            picked[j.name] = str(exc).splitlines()[0]
            if names:  # a target that cannot answer still takes its turn: the next one follows
                chosen[j.name] = tname
    run = rs.DrillRun(inv, sd, task="backup.drill", pending=[("drill", n) for n in picked])
    p = rs.plan_drill(inv, picked, skipped, chosen)
    repos = {c[0].name: c[0] for c in picked.values() if not isinstance(c, str)}
    handlers = {**run.handlers(), **nas_drill.handlers(repos)}  # drills done on the NAS
    return Planned(p, inv, handlers, report=run.report)


@plan_task(
    name="install-timer",
    help={
        "cron": "print crontab lines instead of writing systemd units",
        "unit_dir": "where to write the units (default /etc/systemd/system)",
    },
)
def install_timer(c: Context, cron: bool = False, unit_dir: str = "") -> Planned:
    """Write systemd timers for snapshot --due, prune, reclaim, verify and drill.

    Snapshot every 15 minutes (`--due`), prune daily, reclaim, verify and drill weekly."""
    from .snapshot import timer

    if cron:
        return Planned(timer.plan_crontab(), handlers=timer.handlers())
    p = timer.plan_units(unit_dir or timer.UNIT_DIR)

    def report(results: list[Any], json_out: bool) -> None:
        for note in p.notes:
            print(note)

    return Planned(p, report=report)


@plan_task(name="key-rotate", yes=True, help={"target": "the restic target (required)"})
def key_rotate(c: Context, target: str = "") -> Planned:
    """Replace a target's restic key with a new one, checked before the old one goes.

    The new password is the secret backup.targets.NAME.new_password: the key is added, checked
    to open the repository, then the old key is removed."""
    from ..errors import ConfigError
    from ..secrets.store import load as load_secrets
    from .repository import access, facts, keys

    if not target:
        raise ConfigError("--target NAME is required (a restic target under backup.targets)")
    inv = load_inventory()
    secrets = load_secrets()
    new_password = secrets.get(keys.new_password_key(target)) or ""
    r = access.repo_for(inv, target, secrets)
    res = facts.probe(r, ["--no-lock", "key", "list", "--json"], timeout_s=300)
    access.check_result(r, res, "key list")
    p = keys.plan_rotate(r, new_password, keys.current_key(res.stdout))

    def report(results: list[Any], json_out: bool) -> None:
        print(p.notes[-1])

    return Planned(p, inv, keys.handlers(r, new_password), report=report)


ns = Collection("backup")
for _t in (init, snapshot, list_, prune, verify, restore, drill, install_timer, key_rotate):
    ns.add_task(_t)
