"""`backup.restore` and `backup.drill`: restic restores a snapshot, Domum re-checks every file
against MANIFEST.sha256 (and an etcd snapshot's own sha256 trailer) before saying it is good.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ...errors import ConfigError, DomumError, Refused, VerifyError
from ...inventory.model import Inventory
from ...plan import Cmd, Local, Plan, ResultOf
from ..bookkeeping import interrupt, session
from ..jobs import Job
from ..producers import stage
from ..repository import access, restic
from ..repository.listing import parse_time
from . import rotation

_HEX = re.compile(r"^[0-9a-f]{4,64}$")


def choose(snaps: list[dict[str, Any]], at: str, job: str, target: str) -> dict[str, Any]:
    """--at: a snapshot id (prefix), or a time (the newest complete one not after it);
    default the newest complete snapshot. Partial snapshots only by explicit id."""
    if at and _HEX.match(at):
        found = [s for s in snaps if str(s.get("id", "")).startswith(at)]
        if len(found) != 1:
            raise ConfigError(
                f"--at {at}: {'no' if not found else 'more than one'} snapshot of job {job} on {target} matches"
            )
        return found[0]
    good = access.complete(snaps)
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise ConfigError(
                f"--at {at!r}: not a snapshot id or a time like 2026-11-20T03:00"
            ) from None
        limit = (when if when.tzinfo else when.astimezone()).timestamp()
        good = [s for s in good if parse_time(str(s["time"])) <= limit]
    if not good:
        raise DomumError(
            f"job {job} on {target}: no complete snapshot" + (f" at or before {at}" if at else "")
        )
    return good[-1]


def tree_path(snap: dict[str, Any], job: str) -> str:
    """Where the job's staging dir sits inside the snapshot: restic keeps an absolute
    backup path whole (/var/lib/domum/staging/<job>)."""
    paths = snap.get("paths") or []
    return "/" + (str(paths[0]).lstrip("/") if paths else job)


def snapshot_root(restored: Path, snap: dict[str, Any], job: str) -> Path:
    return restored / tree_path(snap, job).lstrip("/")


RESTORE_TMP = ".domum-restore"


def restore_step(
    r: restic.Repo, snap: dict[str, Any], into: Path, timeout_s: float, kind: str = ""
) -> Cmd:
    sid = str(snap.get("short_id") or snap["id"])
    verify = ["--verify"] if kind == "nas" else []  # no manifest: restic checks (nas_restore)
    return restic.cmd(
        r,
        ["restore", sid, "--target", str(into), *verify],
        desc=f"snapshot {sid} ({str(snap.get('time', ''))[:19]}) from {r.name}",
        timeout_s=timeout_s,
        check=True,
        lock="restore",
    )


def fetch(job: Job, r: restic.Repo, snap: dict[str, Any], into: Path) -> Cmd:
    """The drill's restic step: a postgres job's one dump file, else the snapshot's tree."""
    if job.kind == "postgres":
        from .pg_dumpfile import dump_step

        return dump_step(r, snap, job.name, into, job.spec.timeout)
    return restore_step(r, snap, into, job.spec.timeout, job.kind)


def place(tmp: Path, to: Path, tree: str, job: str, kind: str, force: bool) -> tuple[int, int]:
    """Move the job's tree of a restored snapshot into `to` (its contents, not the staging
    path), then re-check every file against its manifest (and an etcd snapshot's trailer)."""
    if kind == "nas":
        from .nas_restore import place as place_shares

        return place_shares(tmp, to)
    root = tmp / tree.lstrip("/")
    if not root.is_dir():
        raise VerifyError(f"the snapshot holds no {job}/ tree: not a Domum backup of this job")
    from .merge import merge

    merge(root, to)  # file by file: never deletes what the snapshot does not hold
    shutil.rmtree(tmp, ignore_errors=True)
    files, size = stage.verify_tree(to, allow_extra=force)
    if kind == "etcd-snapshot":
        from ...talos.ops import etcd

        etcd.verify_snapshot_file(to / "etcd.snapshot")
    return files, size


def plan_restore(job: Job, r: restic.Repo, snap: dict[str, Any], dest: Path, force: bool) -> Plan:
    tmp = dest / RESTORE_TMP
    plan = Plan(f"restore job {job.name} from {r.name} into {dest}")
    trap, untrap = interrupt.trap_steps()
    plan.add(
        trap,
        Local("backup.remove", {"path": str(tmp)}, desc="what a killed restore left"),
        interrupt.grouped(restore_step(r, snap, tmp, job.spec.timeout, job.kind), "restore"),
        Local(
            "backup.place",
            {
                "restored": ResultOf(2),
                "job": job.name,
                "kind": job.kind,
                "from": str(tmp),
                "tree": tree_path(snap, job.name),
                "to": str(dest),
                "force": force,
            },
            desc="move into place; every file against MANIFEST.sha256",
        ),
    )
    plan.finally_steps += [Local("backup.remove", {"path": str(tmp)}), untrap]
    plan.secrets.append(r.password)
    return plan


def check_destination(to: Path, force: bool) -> None:
    if to.exists() and not to.is_dir():
        raise ConfigError(f"--to {to}: exists and is not a directory")
    if to.is_dir() and any(to.iterdir()) and not force:
        raise Refused(
            f"--to {to} is not empty",
            hint="choose an empty directory, or pass --force to merge: the backup's files "
            "replace the same paths, nothing else is touched",
        )


def recovery_steps(inv: Inventory, to: Path) -> list[str]:
    """What to do with a restored etcd snapshot: talosctl's documented disaster recovery."""
    from ...talos.argv import talosctl

    cps = list(inv.controlplanes.items())
    first_id, first = cps[0]
    snap = to / "etcd.snapshot"
    lines = [
        "etcd disaster recovery (Talos): the snapshot alone is not enough, restore the config job too",
        "  1. restore the secrets and inventory: inv backup.restore --job <config job> --to <dir>;",
        "     regenerate machine configs from the same secrets bundle: inv talos.genconfig",
        "  2. wipe every control plane's EPHEMERAL partition (etcd data), e.g. for each one:",
    ]
    for _, node in cps:
        argv = talosctl(
            inv,
            "reset",
            "--graceful=false",
            "--reboot",
            "--system-labels-to-wipe=EPHEMERAL",
            nodes=[str(node.ip)],
        )
        lines.append("       " + " ".join(argv))
    lines += [
        f"  3. wait until `talosctl service etcd` on {first.hostname} shows STATE Preparing, then on exactly ONE node:",
        "       "
        + " ".join(talosctl(inv, "bootstrap", f"--recover-from={snap}", nodes=[str(first.ip)])),
        f"     (node {first_id}); the other control planes rejoin by themselves",
    ]
    return lines


def plan_drill(
    inv: Inventory,
    picked: dict[str, tuple[restic.Repo, dict[str, Any]] | str],
    skipped: list[str],
    failed_targets: Mapping[str, str] | None = None,
) -> Plan:
    """Per job: restore its newest complete snapshot into <state_dir>/drill/<job>, verify it,
    delete it, record the result. `picked`: job -> (repo, snapshot), or why there is none;
    `failed_targets`: job -> the target that could not answer (it still takes its turn)."""
    from ...ssh import repo_path
    from . import nas_drill

    sd = repo_path(inv.backup.state_dir)
    plan = Plan(f"restore drill of {', '.join(picked) or 'no job'}")
    plan.notes += [f"{name}: no successful run yet, nothing to drill" for name in skipped]
    plan.add(session.lock_step(sd))
    for name, choice in picked.items():
        job = Job(name, inv.backup.jobs[name])
        if isinstance(choice, str):
            target = (failed_targets or {}).get(name)
            failed = {"target": target} if target else {}
            plan.add(Local("backup.drill-record", {"job": name, "error": choice, **failed}))
            continue
        r, snap = choice
        on_nas = nas_drill.steps(inv, job, r, snap)  # the NAS's own repository: drilled there
        if on_nas is not None:
            drill, remove = on_nas
            plan.add(*drill)
            nas = {"nas": ResultOf(len(plan.steps) - 1), "target": r.name}
            snap_id = {"snapshot": str(snap.get("short_id") or snap["id"])}
            plan.add(Local("backup.drill-record", {"job": name, **nas, **snap_id}), remove)
            plan.finally_steps.append(remove)
            continue
        work = sd / "drill" / name
        plan.add(
            Local("backup.remove", {"path": str(work)}),
            Local("backup.mkdir", {"path": str(work)}),
            interrupt.grouped(fetch(job, r, snap, work / RESTORE_TMP), f"restore-{name}"),
        )
        plan.add(
            Local(
                "backup.drill-record",
                {
                    "restored": ResultOf(len(plan.steps) - 1),
                    "job": name,
                    "target": r.name,
                    "snapshot": str(snap.get("short_id") or snap["id"]),
                    "from": str(work / RESTORE_TMP),
                    "tree": tree_path(snap, name),
                    "to": str(work),
                },
                desc="verify byte-identical, delete, record",
            )
        )
        plan.finally_steps.append(Local("backup.remove", {"path": str(work)}))
    plan.add(session.save_step(sd), session.metrics_step(inv))
    plan.finally_steps.append(session.unlock_step(sd))
    plan.secrets.extend(c[0].password for c in picked.values() if not isinstance(c, str))
    return plan


def _remove(args: Mapping[str, Any]) -> None:
    shutil.rmtree(str(args["path"]), ignore_errors=True)


def _mkdir(args: Mapping[str, Any]) -> None:
    Path(str(args["path"])).mkdir(parents=True, exist_ok=True)


def _place(args: Mapping[str, Any]) -> tuple[int, int]:
    interrupt.raise_failed(args.get("restored"), "restic restore")
    return place(
        Path(str(args["from"])),
        Path(str(args["to"])),
        str(args["tree"]),
        str(args["job"]),
        str(args["kind"]),
        bool(args["force"]),
    )


def restore_handlers() -> dict[str, Callable[[Mapping[str, Any]], Any]]:
    return {
        "backup.remove": _remove,
        "backup.mkdir": _mkdir,
        "backup.place": _place,
        **interrupt.Trap().handlers(),
    }


@dataclass
class DrillRun(interrupt.Interruptible):
    warnings: list[str] = field(default_factory=list)

    def record(self, args: Mapping[str, Any]) -> None:
        self._record(args)  # a signal inside (a postgres load) leaves the job pending:
        self.done("drill", str(args["job"]))  # recorded "terminated" at unlock

    def _record(self, args: Mapping[str, Any]) -> None:
        name = str(args["job"])
        entry = self.data["drill"].setdefault(name, {})
        entry["last_run"] = time.time()
        target = str(args.get("target") or "")
        try:
            if args.get("error"):
                raise DomumError(str(args["error"]))
            interrupt.raise_failed(args.get("restored"), f"restic restore from {target}")
            job = Job(name, self.inv.backup.jobs[name])
            if job.kind == "postgres":  # the dump loaded into a throw-away server (pg_drill)
                self._pg(entry, target, args)
                return
            if "nas" in args:  # restored and checked on the NAS (nas_drill.py)
                from .nas_drill import outcome

                files, size = outcome(args["nas"])
            else:
                to = Path(str(args["to"]))
                files, size = place(
                    Path(str(args["from"])), to, str(args["tree"]), name, job.kind, False
                )
            msg = (
                f"{name}: snapshot {args['snapshot']} from {args['target']}: {files} files, "
                f"{size} bytes, byte-identical"
            )
            entry.update(last_success=time.time(), ok=True, message=msg)
            if target:
                rotation.record(entry, target, entry["last_run"], True, msg)
            self.say(msg)
        except (DomumError, OSError) as exc:
            text = str(exc).splitlines()[0]
            entry.update(ok=False, message=text)
            if target:
                rotation.record(entry, target, entry["last_run"], False, text)
            self.failures.append(f"drill {name} FAILED: {text}")
        finally:
            if args.get("to"):  # the drill's copy is not kept
                shutil.rmtree(str(args["to"]), ignore_errors=True)

    def _pg(self, entry: dict[str, Any], target: str, args: Mapping[str, Any]) -> None:
        """A partial drill (no local PostgreSQL) passes but is no drill success: the
        staleness alert still asks for a real one."""
        from .pg_drill import drill

        got = drill(Path(str(args["from"])))
        msg = f"{args['job']}: snapshot {args['snapshot']} from {target}: {got.message}"
        entry.update(ok=True, partial=got.partial, message=msg)
        if not got.partial:
            entry["last_success"] = time.time()
        if target:
            rotation.record(entry, target, entry["last_run"], True, msg)
        self.say(msg)
        if got.partial:
            self.warnings.append(msg)

    def handlers(self) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
        return {**super().handlers(), **restore_handlers(), "backup.drill-record": self.record}

    def report(self, results: list[Any], json_out: bool) -> None:
        for line in self.warnings:
            print(f"domum: warning: {line}", file=sys.stderr)
        self.finish("backup.drill")
