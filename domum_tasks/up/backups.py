"""Phase backups: backup.init, the timers (backup.install-timer), and a first `config` and
`etcd-snapshot` run (skipped for a job whose every target holds a complete snapshot)."""

from __future__ import annotations

from dataclasses import replace

from ..plan import Plan, Write
from . import facts
from .model import Builder, Ctx, Part, task_planner

FIRST_KINDS = ("config", "etcd-snapshot")


def init(ctx: Ctx) -> Part:
    from invoke import Context

    from ..backup.tasks import init as backup_init

    part = Part("restic repositories (backup.init)")
    made = task_planner(backup_init)(Context())
    part.probe["targets"] = "; ".join(made.plan.notes) or "none initialised"
    if not made.plan.steps:
        part.skip = "every restic target is a repository"
        return part
    part.planned.append(made)
    return part


def timers(ctx: Ctx) -> Part:
    """The units install-timer plans, less those already on disk as planned."""
    from invoke import Context

    from ..backup.tasks import install_timer

    part = Part("backup timers (backup.install-timer)")
    made = task_planner(install_timer)(Context(), cron=False, unit_dir=ctx.options.unit_dir)
    same = [
        s for s in made.plan.steps if isinstance(s, Write) and facts.same_file(s.path, s.data())
    ]
    todo = [s for s in made.plan.steps if s not in same]
    part.probe["units"] = f"{len(same)} of {len(made.plan.steps)} already installed as planned"
    if not todo:
        part.skip = "every unit is installed"
        return part
    plan = Plan(made.plan.title, steps=todo, notes=list(made.plan.notes))
    part.planned.append(replace(made, plan=plan))
    return part


def first_runs(ctx: Ctx) -> Part:
    from invoke import Context

    from ..backup import jobs
    from ..backup.tasks import snapshot

    part = Part("first config and etcd-snapshot runs (backup.snapshot)")
    part.depends = "the repositories backup.init creates above"
    chosen = [j for j in jobs.select(ctx.inv, "") if j.kind in FIRST_KINDS]
    if not chosen:
        part.skip = "no enabled config or etcd-snapshot job"
        return part
    for job in chosen:
        done, why = facts.complete_snapshot(ctx.inv, job)
        part.probe[job.name] = why
        if not done:
            part.planned.append(task_planner(snapshot)(Context(), job=job.name))
    if not part.planned:
        part.skip = "every job has a complete snapshot on every target"
    return part


PARTS: list[Builder] = [init, timers, first_runs]
