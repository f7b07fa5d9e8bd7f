"""The `postgres` kind: `pg_dumpall` from the CloudNativePG primary, streamed into restic.

    restic backup ... --stdin-from-command --stdin-filename <job>.sql --
        kubectl --kubeconfig K -n NS exec <primary> -c postgres -- pg_dumpall

Why `--stdin-from-command` (restic >= 0.17, doc/040_backup.rst "Reading data from a command";
restic PR #4410): restic starts the command itself and, when it exits non-zero, fails without
saving a snapshot. With a shell pipe into `--stdin` a dump that died half way would be saved
as a truncated, valid-looking snapshot.

The primary moves on failover, so it is found when the job runs, not when it is planned:
CloudNativePG labels its instance pods `cnpg.io/cluster=<name>` and `cnpg.io/instanceRole=
primary|replica` (docs "Labels and annotations"; `role` was deprecated in 1.24, release notes
#4897). Exactly one Running pod must match. Inside the instance's `postgres` container the
OS user is postgres and local connections are peer-authenticated, so pg_dumpall needs no
password (CNPG troubleshooting: `kubectl exec -ti <pod> -c postgres -- psql`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...errors import CommandFailed, DomumError
from ...inventory.model import Inventory
from ...plan import Local
from ...run import StepResult, run_cmd
from ...run.local import resolve_program
from ...ssh import repo_path
from ..jobs import Job
from ..repository import restic

ACTION = "backup.pg-dump"
PRIMARY = "<primary pod, found when the job runs>"
CONTAINER = "postgres"
# pg_dumpall (src/bin/pg_dump/pg_dumpall.c, main) ends its output with this comment: a dump
# without it was cut short.
DUMP_TRAILER = "-- PostgreSQL database cluster dump complete"


def stdin_filename(job: Job) -> str:
    return f"{job.name}.sql"


def kubectl(inv: Inventory, namespace: str) -> list[str]:
    return ["kubectl", "--kubeconfig", str(repo_path(inv.cluster.kubeconfig)), "-n", namespace]


def selector(job: Job) -> str:
    return f"cnpg.io/cluster={job.spec.cnpg_cluster},cnpg.io/instanceRole=primary"


def find_argv(inv: Inventory, job: Job) -> list[str]:
    """The read-only lookup of the primary (run when the job runs)."""
    return [*kubectl(inv, job.spec.namespace), "get", "pods", "-l", selector(job), "-o", "json"]


def dump_argv(inv: Inventory, job: Job) -> list[str]:
    """What restic runs; PRIMARY is replaced by the pod found at run time."""
    return [
        *kubectl(inv, job.spec.namespace),
        "exec",
        PRIMARY,
        "-c",
        CONTAINER,
        "--",
        "pg_dumpall",
    ]


def primary_pod(pods_json: str, job: Job) -> str:
    """The one Running pod of `kubectl get pods -l <selector> -o json` (a List)."""
    try:
        items = json.loads(pods_json).get("items") or []
    except (ValueError, AttributeError):
        raise DomumError("kubectl get pods: output is not a JSON List") from None
    running = [
        str(p["metadata"]["name"])
        for p in items
        if (p.get("status") or {}).get("phase") == "Running"
        and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    where = f"{job.spec.namespace}/{job.spec.cnpg_cluster}"
    if len(running) != 1:
        found = ", ".join(running) or "none"
        raise DomumError(
            f"CNPG cluster {where}: expected one running primary ({selector(job)}), found {found}"
        )
    return running[0]


def dump(job: Job, r: restic.Repo, args: Mapping[str, Any], timeout_s: float) -> StepResult:
    """Find the primary, then run the planned restic argv with it filled in. The result has
    the shape of a Cmd step's (exit code as value), so the lane reads it as any backup's."""
    # the kubectl Domum uses everywhere (.bin/, the wheel, PATH), for restic's child too
    kube = str(resolve_program("kubectl"))
    find = [str(a) for a in args["find"]]
    proc = run_cmd([kube, *find[1:]], timeout_s=120, check=False)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        raise CommandFailed(f"kubectl get pods exit {proc.returncode}: {tail}")
    pod = primary_pod(proc.stdout, job)
    argv = [pod if a == PRIMARY else str(a) for a in args["argv"]]
    argv[argv.index("--") + 1] = kube  # restic's `--`: what follows is the command it runs
    proc = run_cmd(
        argv, timeout_s=timeout_s, env=r.env(), secrets=[r.password], check=False, inherit_fds=True
    )
    done = Local(ACTION, {**args, "primary": pod})
    return StepResult(done, proc.returncode == 0, proc.stdout, proc.stderr, proc.returncode)


def step(inv: Inventory, job: Job, r: restic.Repo, timeout_s: float) -> Local:
    """The lane's backup step: the restic argv shown whole, the pod filled in at run time."""
    from ..plan import backup_flags

    argv = r.argv(
        *backup_flags(inv, job),
        "--stdin-from-command",
        "--stdin-filename",
        stdin_filename(job),
        "--",
        *dump_argv(inv, job),
        lock="backup",
    )
    return Local(
        ACTION,
        {"job": job.name, "target": r.name, "find": find_argv(inv, job), "argv": argv},
        desc=f"pg_dumpall from the primary of {job.spec.namespace}/{job.spec.cnpg_cluster} "
        f"into restic ({r.name}; no snapshot if the dump fails)",
    )
