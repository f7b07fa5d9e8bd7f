"""Pure planners for the backup tasks: inventory (+ state) in, Plans and argv lists out.

The worker runs exactly these argv lists, so `--dry-run` shows what a run does.
"""

from __future__ import annotations

from pathlib import Path

from ..inventory.model import Inventory
from ..plan import Cmd, Local, Plan
from ..ssh import repo_path, resolve
from . import jobs
from .jobs import Job
from .producers import stage
from .producers.sources import rsync_argv
from .repository.restic import sftp_command


def state_dir(inv: Inventory) -> Path:
    return repo_path(inv.backup.state_dir)


def snapshot_host(inv: Inventory) -> str:
    """restic's --host: fixed, so the job's group (host, paths) never splits by machine name."""
    return inv.cluster.name


def backup_args(inv: Inventory, job: Job, path: Path) -> list[str]:
    return [
        "backup",
        "--json",
        "--quiet",
        "--tag",
        jobs.TAG,
        "--tag",
        jobs.job_tag(job.name),
        "--host",
        snapshot_host(inv),
        str(path),
    ]


def forget_args(inv: Inventory, job: Job, *, dry_run: bool, prune: bool = True) -> list[str]:
    args = ["forget", "--json", "--tag", jobs.job_tag(job.name), "--group-by", "host,paths"]
    args += jobs.retention_flags(inv, job)
    if dry_run:
        args.append("--dry-run")
    elif prune:
        args.append("--prune")
    return args


def _restic_cmd(inv: Inventory, target: str, args: list[str], desc: str) -> Cmd:
    repo = inv.backup.targets[target].repository
    sftp = sftp_command(inv, repo)
    options = ["-o", f"sftp.command={sftp}"] if sftp else []
    return Cmd(
        ("restic", "-r", repo, *options, *args),
        desc=f"{desc} ({target}; password from ${_password_env(target)})",
    )


def _password_env(target: str) -> str:
    from ..secrets.store import env_name

    return env_name(jobs.password_key(target))


def plan_job(inv: Inventory, job: Job) -> Plan:
    """What one run of `job` does, step by step (for --dry-run)."""
    sd = state_dir(inv)
    part, final = stage.partial_dir(sd, job.name), stage.final_dir(sd, job.name)
    plan = Plan(f"backup job {job.name} ({job.kind})")
    spec = job.spec
    if job.kind == "files":
        for host in spec.hosts:
            t = resolve(inv, host)
            plan.add(
                Cmd(
                    tuple(rsync_argv(inv, t, spec.paths, part / t.label, sudo=spec.sudo)),
                    desc=f"mirror {t.label}",
                )
            )
    elif job.kind == "nas" and inv.nas is not None:
        t = resolve(inv, "nas")
        for share in spec.shares:
            src = inv.nas.shares[share].rstrip("/") + "/./"
            plan.add(
                Cmd(
                    tuple(rsync_argv(inv, t, [src], part / share, sudo=spec.sudo)),
                    desc=f"mirror share {share}",
                )
            )
    elif job.kind == "config":
        plan.add(
            Local("backup.copy-config", {"into": str(part)}, desc="encrypted, never decrypted")
        )
    elif job.kind == "etcd-snapshot":
        from ..talos.ops.plan import plan_etcd_snapshot

        plan.add(*plan_etcd_snapshot(inv, str(part / "etcd.snapshot")).steps)
    elif job.kind == "vzdump":
        from ..proxmox.vzdump import plan_vzdump
        from .producers.vzdump_job import prune_policy, storage

        sub = plan_vzdump(inv, spec.vmids, storage=storage(inv, job), prune=prune_policy(inv, job))
        plan.add(*sub.steps)
        plan.note("vzdump: Proxmox writes and prunes the archives; WARNINGS fail the job")
        return plan
    plan.add(
        Local(
            "backup.stage",
            {"partial": str(part), "final": str(final)},
            desc=f"write {stage.MANIFEST} + {stage.SUMMARY}, sync, rename",
        )
    )
    for target in jobs.restic_targets(inv, job):
        plan.add(_restic_cmd(inv, target, backup_args(inv, job, final), "snapshot"))
    for target in jobs.restic_targets(inv, job):
        plan.add(_restic_cmd(inv, target, forget_args(inv, job, dry_run=False), "apply retention"))
    return plan


def plan_init(inv: Inventory, targets: list[str], initialised: dict[str, bool]) -> Plan:
    plan = Plan("initialise restic targets")
    for t in targets:
        if initialised.get(t):
            plan.note(f"{t}: already a restic repository")
            continue
        plan.add(_restic_cmd(inv, t, ["init"], "create the repository"))
    return plan
