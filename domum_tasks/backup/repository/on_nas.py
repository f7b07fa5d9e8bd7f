"""restic runs ON the NAS for the NAS's own repository: `backup.verify`, `backup.prune` and
`backup.drill` read its packs where they are instead of over sftp (issue 16: "backups run where
the data is").

A target is run on the NAS when its repository is the NAS's own disk (`sftp:<user>@<nas>:<path>`,
nas_remote.repository_on_nas gives <path>) and a `nas` job backs up into it: that job's
`restic_path` is where Domum keeps the pinned binary there (installed, checksum-verified, by
`backup.nas-install` first, exactly as `backup.snapshot` does). Every other target keeps its
restic here. The remote restic: password on stdin only, `--retry-lock` as here (never an
unlock), tied to the SSH session (producers/nas_session.py); its exit code, stdout and stderr
come back as a restic Cmd's would, so every reader of the result (retention's record,
verify's verdict, the lock holder for exit 5) reads it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError
from ...inventory.model import Inventory
from ...plan import Local, Plan, Step
from .. import jobs
from ..jobs import Job
from . import restic

RUN = "backup.nas-run"
INSTALL = "backup.nas-install"


@dataclass(frozen=True)
class OnNas:
    target: str
    path: str  # the repository as restic on the NAS names it (a local path there)
    job: Job  # the nas job whose pinned restic is used
    restic: str  # its restic_path on the NAS


def on_nas(inv: Inventory, target: str) -> OnNas | None:
    """Where restic on the NAS finds `target`, or None when it runs here."""
    from ..producers import nas_remote

    spec = inv.backup.targets.get(target)
    if spec is None or spec.type != "restic" or inv.nas is None:
        return None
    for name, job_spec in inv.backup.jobs.items():
        job = Job(name, job_spec)
        if job.kind != "nas" or target not in jobs.restic_targets(inv, job):
            continue
        try:
            path = nas_remote.repository_on_nas(inv, name, target, spec)
        except ConfigError:
            return None
        if path.startswith("rest:"):
            return None  # a server elsewhere: no nearer from the NAS than from here
        return OnNas(target, path, job, nas_remote.restic_path(job))
    return None


def install_steps(inv: Inventory, targets: Iterable[str]) -> list[Step]:
    """The pinned restic in place on the NAS, once per binary path the targets need."""
    from ..producers import nas_remote

    seen: dict[str, Step] = {}
    for t in targets:
        where = on_nas(inv, t)
        if where is not None and where.restic not in seen:
            seen[where.restic] = Local(
                INSTALL,
                nas_remote.install_args(inv, where.job),
                desc=f"pinned restic at {where.restic} on the NAS",
            )
    return list(seen.values())


def restic_step(
    inv: Inventory,
    r: restic.Repo,
    args: Sequence[str],
    *,
    desc: str,
    timeout_s: float,
    destructive: bool = False,
    lock: str = "",
) -> Step:
    """restic `args` on target `r`: on the NAS when it is the NAS's own repository, else the
    same Cmd as always (restic.cmd)."""
    where = on_nas(inv, r.name)
    if where is None:
        return restic.cmd(
            r, args, desc=desc, timeout_s=timeout_s, destructive=destructive, lock=lock
        )
    return Local(
        RUN,
        remote_args(inv, where, [*r.retry_lock(lock), *args], timeout_s),
        desc=desc + " (restic on the NAS)",
        destructive=destructive,
    )


def remote_args(
    inv: Inventory, where: OnNas, args: Sequence[str], timeout_s: float
) -> dict[str, Any]:
    from ..producers import nas_remote

    remote = nas_remote.restic_remote(where.restic, where.path, list(args))
    return {
        "target": where.target,
        "timeout_s": timeout_s,
        "argv": nas_remote.ssh_argv(inv, remote),
    }


def run(r: restic.Repo, args: Mapping[str, Any], step: Step | None = None) -> Any:
    """One restic on the NAS: a StepResult as a restic Cmd step's (exit code as value),
    recorded under `step` (the planned one, when there is one)."""
    from ...run import StepResult, run_cmd

    proc = run_cmd(
        [str(a) for a in args["argv"]],
        timeout_s=float(args["timeout_s"]),
        secrets=[r.password],
        check=False,
        input_text=r.password + "\n",
        inherit_fds=True,
    )
    step = step or Local(RUN, dict(args))
    return StepResult(step, proc.returncode == 0, proc.stdout, proc.stderr, proc.returncode)


def handlers(
    repos: Mapping[str, restic.Repo], plan: Plan | None = None
) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
    """`plan`: its restic-on-the-NAS steps, so each result is recorded under its planned step
    (the executor records a handler's own StepResult as it is)."""
    from ..snapshot import nas_run

    planned = (
        {
            id(s.args): s
            for s in [*plan.steps, *plan.finally_steps]
            if isinstance(s, Local) and s.action == RUN
        }
        if plan is not None
        else {}
    )

    def one(args: Mapping[str, Any]) -> Any:
        return run(repos[str(args["target"])], args, planned.get(id(args)))

    return {INSTALL: nas_run.install, RUN: one}
