"""The plan of `backup.snapshot`: pure, inventory + state + passwords in, Plan out.

    lock -> per job: start, Job(pull -> stage -> per target: restic backup (tagged partial),
         then only after exit 0 restic tag partial->complete), record -> metrics;
         always unlock (Domum's own flock; restic's locks are never removed)

Each job is a `Job` step: the executor forks it into a process group of its own and kills the
whole group (rsync, ssh, restic) at the job's deadline. Inside, the lane stops at its first
failed step. The parent records each job's outcome (state, log line, metrics) from the Job's
result. Retention is not here (issue 16 #10): `backup.prune` applies it on its own daily timer
and records its own status, so a retention failure never fails, or re-runs, a backup.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...inventory.model import Inventory
from ...plan import Cmd, Fanout, Job, Local, Plan, ResultOf, Step
from ...ssh import resolve
from .. import jobs
from ..bookkeeping import session
from ..jobs import Job as BackupJob
from ..plan import backup_args, confirm_args
from ..producers import postgres, stage
from ..producers.sources import RSYNC_OK, rsync_argv
from ..repository import restic
from . import hooks, pings

# The job's deadline is enforced by the executor, which kills the whole process group. A
# tool's own timeout is only a backstop for a parent that died, so it sits past the deadline.
BACKSTOP_S = 60.0
PULL, BACKUP = "pull", "restic backup"
SNAPSHOT = "<snapshot id of the backup step>"  # filled in by backup.confirm at run time


def tool_timeout(job: BackupJob) -> float:
    return job.spec.timeout + BACKSTOP_S


def _pulls(
    inv: Inventory, job: BackupJob, part: Path
) -> tuple[list[str], list[Cmd], dict[str, Any]]:
    """(mirror names, rsync steps, sources for summary.json) of a files job (a nas job's
    restic runs on the NAS: producers/nas_remote.py)."""
    spec, items = job.spec, []
    for host in spec.hosts:
        t = resolve(inv, host)
        items.append((t.label, t, list(spec.paths)))
    cmds = [
        Cmd(
            tuple(rsync_argv(inv, t, src, part / label, sudo=spec.sudo)),
            desc=f"mirror {label} ({t.host})",
            timeout_s=tool_timeout(job),
            ok_codes=RSYNC_OK,
            check=False,
            inherit_fds=True,
        )
        for label, t, src in items
    ]
    sources = {label: [f"{t.host}:{s}" for s in src] for label, t, src in items}
    return [label for label, *_ in items], cmds, sources


def guard_step(job: BackupJob, sd: Path) -> Local:
    s = job.spec
    return Local(
        "backup.guard",
        {"state_dir": str(sd), "job": job.name},
        desc=f"guards: >= {s.min_files} file(s), <= {s.max_shrink_percent:g}% fewer than the "
        "last complete run, required files of the kind; else fail, back up nothing",
    )


def job_steps(
    inv: Inventory,
    job: BackupJob,
    repos: dict[str, restic.Repo],
    sd: Path,
    monitors: Mapping[str, str] | None = None,
) -> tuple[Step, ...]:
    """What runs inside one restic job's process group, in order."""
    part, final = stage.partial_dir(sd, job.name), stage.final_dir(sd, job.name)
    mirror = job.kind in jobs.MIRROR_KINDS
    steps: list[Step] = hooks.before(job, tool_timeout(job))
    steps += [s for s in [pings.start_step(job.name, monitors or {})] if s is not None]
    first_staging = len(steps)
    notes: dict[str, Any] = {}
    labels: list[str] = []
    producer: list[Step] = []
    if job.kind == "files":
        labels, cmds, notes["sources"] = _pulls(inv, job, part)
        producer = [Fanout(tuple((c,) for c in cmds), parallel=inv.ssh.parallel, desc=PULL)]
    elif job.kind == "config":
        producer = [
            Local(
                "backup.copy-config",
                {"job": job.name, "into": str(part)},
                desc="encrypted, never decrypted",
            )
        ]
    elif job.kind == "etcd-snapshot":
        from ...talos.ops.plan import plan_etcd_snapshot

        producer = list(plan_etcd_snapshot(inv, str(part / "etcd.snapshot")).steps)
    steps.append(
        Local(
            "backup.begin",
            {"state_dir": str(sd), "job": job.name, "mirror": mirror, "mirrors": labels},
            desc=f"fill {part.name}/ (a mirror starts from the last complete copy)",
        )
    )
    steps += producer
    steps.append(
        Local(
            "backup.stage",
            {"state_dir": str(sd), "job": job.name, "kind": job.kind, "notes": notes},
            desc=f"write {stage.MANIFEST} + {stage.SUMMARY}, sync, rename to {final.name}/",
        )
    )
    steps.append(guard_step(job, sd))  # issue 16 #4 #5: before restic writes anything
    timeout = tool_timeout(job)
    # Each lane: the backup saves a snapshot tagged `partial`; the lane stops at a failed step,
    # so the confirm (partial -> complete) runs only after restic exited 0. A kill, a lock
    # held by another client or a failing tag leaves the snapshot `partial`: never counted.
    if job.kind == "postgres":  # no staging: restic reads pg_dumpall's output itself
        del steps[first_staging:]
    backups = tuple(
        (
            postgres.step(inv, job, r, timeout)
            if job.kind == "postgres"
            else restic.cmd(
                r,
                backup_args(inv, job, final),
                desc=f"snapshot ({name}; tagged {jobs.PARTIAL_TAG!r}; exit 3 = incomplete)",
                timeout_s=timeout,
                inherit_fds=True,
                lock="backup",
            ),
            Local(
                "backup.confirm",
                {
                    "job": job.name,
                    "target": name,
                    "argv": r.argv(*confirm_args(SNAPSHOT), lock="tag"),
                    "backup": ResultOf(0),
                },
                desc=f"only after exit 0: mark the snapshot {jobs.COMPLETE_TAG!r} ({name})",
            ),
        )
        for name, r in repos.items()
    )
    # targets are independent repositories: restic runs for them side by side
    if job.kind == "nas":  # restic runs on the NAS itself: no mirror, no staging here
        from ..producers import nas_steps

        del steps[first_staging:]
        steps += nas_steps.steps(inv, job, repos, timeout, BACKUP)
    else:
        steps.append(Fanout(backups, parallel=max(1, len(backups)), desc=BACKUP))
    from ..repository import copying

    steps += copying.steps(inv, job, repos)  # targets' copy_to: restic copy (3-2-1)
    steps += hooks.after(job, timeout)
    return tuple(steps)


def plan_snapshot(
    inv: Inventory,
    selected: list[BackupJob],
    repos: dict[str, dict[str, restic.Repo]],
    sd: Path,
    *,
    due: bool = False,
    pve: Any = None,
    monitors: Mapping[str, Mapping[str, str]] | None = None,
) -> Plan:
    """`pve`: the run's pve.Session, for vzdump jobs (their guests are located and the
    token's privileges checked while planning)."""
    plan = Plan(f"back up {', '.join(j.name for j in selected) or 'nothing'}")
    if not selected:
        plan.note("no job is due" if due else "no enabled job")
    plan.add(session.lock_step(sd))
    for job in selected:
        plan.add(
            Local(
                "backup.start",
                {"job": job.name, "kind": job.kind, "deadline_s": job.spec.timeout},
                desc="say so on a terminal",
            )
        )
        if job.kind == "vzdump":
            from ..producers import vzdump_job

            start = pings.start_step(job.name, (monitors or {}).get(job.name) or {})
            plan.add(*([start] if start else []), vzdump_job.steps(inv, job, pve))
            plan.note("vzdump: Proxmox writes and prunes the archives; WARNINGS fail the job")
            plan.notes += vzdump_job.retention_notes(inv, job)
        else:
            steps = job_steps(inv, job, repos[job.name], sd, (monitors or {}).get(job.name))
            plan.add(Job(job.name, steps, job.spec.timeout))
        record = {"job": job.name, "outcome": ResultOf(len(plan.steps) - 1)}
        if job.uses_restic:  # restic exit 3: the snapshot keeps its mark (restic #5288)
            record["incomplete"] = f"the snapshot stays tagged {jobs.PARTIAL_TAG!r}"
        plan.add(Local("backup.record", record, desc="state, log line"))
        _after_record(plan, job, (monitors or {}).get(job.name) or {})
    plan.add(session.metrics_step(inv))
    plan.finally_steps.append(session.unlock_step(sd))
    plan.secrets.extend(r.password for rs in repos.values() for r in rs.values())
    plan.secrets.extend(u for m in (monitors or {}).values() for u in m.values())
    return plan


def _after_record(plan: Plan, job: BackupJob, services: Mapping[str, str]) -> None:
    """The job's on_error hook (its own process group) and finish pings, after its record."""
    record, hook = len(plan.steps) - 1, None
    if (step := hooks.on_error(job)) is not None:
        plan.add(step)
        hook = len(plan.steps) - 1
    if services or hook is not None:
        plan.add(pings.finish_step(job.name, services, record, hook))
