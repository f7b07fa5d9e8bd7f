"""`backup.snapshot` at run time: the handlers its plan's Local steps name, and the reading of
each Job's outcome into the run record (state, log line, metrics) that `backup.list` and the
alerts use. A killed job leaves no record but "failed": never a success it did not finish.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any

from ...errors import DomumError
from ...plan import Fanout, Job, Local
from ...run import StepResult
from .. import jobs
from ..bookkeeping import state
from ..jobs import Job as BackupJob
from ..producers import postgres, sources, stage
from ..repository import restic
from . import guards, hooks, marking, pings
from .lifecycle import RunLifecycle
from .plan import BACKSTOP_S, BACKUP, PULL
from .record import failed_result, log_line, phase_file

Handler = Callable[[Mapping[str, Any]], Any]


def _mark(state_dir: Path, job: str, name: str) -> float:
    p = phase_file(state_dir, job)
    try:  # informational (what a killed job was doing): a full disk must not hide the real error
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(name + "\n")
    except OSError:
        pass
    return time.time()


def _clean_os_errors(fn: Handler) -> Handler:
    """Disk full, permissions: a one-line failure of the step, not a crashed job."""

    @wraps(fn)
    def wrapped(args: Mapping[str, Any]) -> Any:
        try:
            return fn(args)
        except OSError as exc:
            raise DomumError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None

    return wrapped


def _first_line(r: StepResult | dict[str, Any]) -> str:
    text = r.stderr if isinstance(r, StepResult) else str(r.get("stderr") or "")
    out = r.stdout if isinstance(r, StepResult) else str(r.get("stdout") or "")
    lines = (text or out).strip().splitlines()
    return lines[0] if lines else "failed"


def _result(one: dict[str, Any]) -> restic.Result:
    code = one.get("value")
    return restic.Result(code if isinstance(code, int) else None, one["stdout"], one["stderr"])


def nas_run_handlers(run: SnapshotRun) -> dict[str, Handler]:
    """restic on the NAS (the `nas` kind): snapshot/nas_run.py."""
    from . import nas_run

    def repo(args: Mapping[str, Any]) -> restic.Repo:
        return run.repos[str(args["job"])][str(args["target"])]

    def confirm(args: Mapping[str, Any]) -> dict[str, str]:
        job = jobs.select(run.inv, str(args["job"]))[0]
        last = guards.last_complete(state.job(run.data, job.name))
        return nas_run.confirm(repo(args), args, job, last)

    return {
        "backup.nas-install": _clean_os_errors(nas_run.install),
        "backup.nas-restic": lambda a: nas_run.run_restic(repo(a), a),
        "backup.nas-confirm": confirm,
    }


def _rsync_error(cmd_desc: str, one: dict[str, Any]) -> str:
    code = one.get("value")
    tail = " | ".join(str(one.get("stderr") or "").strip().splitlines()[-3:])
    what = f"rsync exit code {code}" if isinstance(code, int) else "rsync"
    return f"{cmd_desc.removeprefix('mirror ')}: {what}: {tail}".rstrip(": ")


@dataclass
class SnapshotRun(RunLifecycle):
    repos: dict[str, dict[str, restic.Repo]] = field(default_factory=dict)
    locked: list[str] = field(default_factory=list)  # jobs stopped only by another's lock
    copies: dict[str, restic.Repo] = field(default_factory=dict)  # copy_to destinations
    refused_jobs: list[str] = field(default_factory=list)  # only by uninitialised targets

    # --- inside a job's process group ------------------------------------------------------

    def begin(self, args: Mapping[str, Any]) -> dict[str, float]:
        sd, name = Path(str(args["state_dir"])), str(args["job"])
        t = _mark(sd, name, "pull")
        part = stage.begin(sd, name, mirror=bool(args["mirror"]))
        if args["mirror"]:
            keep = set(args["mirrors"])
            sources.prune_extra(part, keep)  # hosts or shares no longer in the job
            for label in keep:
                (part / label).mkdir(parents=True, exist_ok=True)
        return {"t": t}

    def copy_config(self, args: Mapping[str, Any]) -> dict[str, Any]:
        job = jobs.select(self.inv, str(args["job"]))[0]
        return sources.copy_config(self.inv, job.spec, Path(str(args["into"])))

    def stage(self, args: Mapping[str, Any]) -> dict[str, Any]:
        sd, name, kind = Path(str(args["state_dir"])), str(args["job"]), str(args["kind"])
        t0 = _mark(sd, name, "stage")
        part = stage.partial_dir(sd, name)
        files, total, changed = stage.write_manifest(part, sd / "cache" / f"{name}.hashes.json")
        summary = {
            "job": name,
            "kind": kind,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
            "bytes": total,
            "made_by": socket.gethostname(),
            **dict(args["notes"]),
            **self._notes(name, kind, part),
        }
        stage.finish(sd, name, summary, changed)
        return {"files": files, "bytes": total, "t0": t0, "t1": _mark(sd, name, "backup")}

    def guard(self, args: Mapping[str, Any]) -> dict[str, Any]:
        job = jobs.select(self.inv, str(args["job"]))[0]
        last = guards.last_complete(state.job(self.data, job.name))
        return guards.check(job, stage.final_dir(Path(str(args["state_dir"])), job.name), last)

    def confirm(self, args: Mapping[str, Any]) -> dict[str, str]:
        return marking.confirm(self.repos[str(args["job"])][str(args["target"])], args)

    def copy(self, args: Mapping[str, Any]) -> dict[str, Any]:
        from ..repository import copying

        job = jobs.select(self.inv, str(args["job"]))[0]
        src, dest = self.repos[job.name][str(args["from"])], self.copies[str(args["to"])]
        return copying.run(src, dest, args, job.spec.timeout + 60.0)

    def pg_dump(self, args: Mapping[str, Any]) -> StepResult:
        job = jobs.select(self.inv, str(args["job"]))[0]
        repo = self.repos[job.name][str(args["target"])]
        return postgres.dump(job, repo, args, job.spec.timeout + BACKSTOP_S)

    def _notes(self, name: str, kind: str, part: Path) -> dict[str, Any]:
        """What summary.json says about the producer, read back from what it made."""
        if kind == "config":
            spec = jobs.select(self.inv, name)[0].spec
            items = sources.config_files(self.inv, spec)
            return {
                "copied": [n for n, _, _ in items if (part / n).exists()],
                "absent": [str(src) for n, src, _ in items if not (part / n).exists()],
            }
        if kind == "etcd-snapshot":
            snap = part / "etcd.snapshot"
            digest = stage.read_manifest(part).get(snap.name)
            return {"etcd": {"file": snap.name, "size": snap.stat().st_size, "sha256": digest}}
        return {}

    # --- in the parent, holding the lock ---------------------------------------------------

    def start(self, args: Mapping[str, Any]) -> None:
        self.started[str(args["job"])] = _mark(self.state_dir, str(args["job"]), "start")
        self.say(f"{args['job']}: running ({args['kind']}, deadline {args['deadline_s']:g}s)")

    def refused(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """A job planned as not runnable (the PVE token lacks a privilege): a failed run."""
        job = jobs.select(self.inv, str(args["job"]))[0]
        return failed_result(job, self.started.get(job.name, time.time()), str(args["message"]))

    def record(self, args: Mapping[str, Any]) -> dict[str, Any]:
        name, outcome = str(args["job"]), args["outcome"]
        job = jobs.select(self.inv, name)[0]
        if isinstance(outcome.step, Job):
            res = self.judge(job, outcome)
        elif isinstance(outcome.step, Fanout):  # a vzdump job's guests
            from ..producers.vzdump_job import verdict

            res = verdict(job, outcome, self.started.get(name, time.time()))
        else:
            res = dict(outcome.value)
        self.results.append(res)
        if res["status"] == "skipped":  # a soft skip leaves last_run (and its alerts) alone;
            state.job(self.data, name)["last_skipped"] = res  # staleness still fires
        else:
            state.record_run(self.data, name, res)
        self.save()
        self.log(res)
        self.progress()  # the metrics after every job, not only at the end
        self.say(log_line(res))
        if res["status"] == "locked":
            self.locked.append(name)
        if res["status"] not in ("ok", "skipped"):  # skipped: the before hook's exit 75
            what = "LOCKED" if res["status"] == "locked" else "FAILED"
            self.failures.append(f"backup job {name} {what}: {res.get('message', '')}")
        return res

    def judge(self, job: BackupJob, outcome: StepResult) -> dict[str, Any]:
        """The run record of one Job: its steps' results as the run's status and message."""
        v = outcome.value
        res: dict[str, Any] = {
            "job": job.name,
            "kind": job.kind,
            "started": v["started"],
            "finished": v["finished"],
            "duration_s": round(v["finished"] - v["started"], 3),
            "status": "failed",
            "snapshots": {},
            "kept": {},
            "targets": {},
        }
        assert isinstance(outcome.step, Job)
        steps, results = outcome.step.steps, v["results"]
        if not results:  # killed at the deadline, or the job process died
            return {**res, "message": v["message"], "phase": "?"}
        if why := hooks.skipped(steps, results):
            return {**res, "status": "skipped", "message": why, "phase": "before"}
        failures: list[str] = []
        phase, marks = "pull", {}
        repos = self.repos.get(job.name, {})
        for step, r in zip(steps, results, strict=False):
            if isinstance(step, Fanout) and step.desc == PULL:
                if not r.ok:
                    bad = [
                        _rsync_error(lane[0].desc, one[-1])
                        for lane, one in zip(step.lanes, r.value or [], strict=False)
                        if one and not one[-1]["ok"]
                    ]
                    failures.append(
                        f"pull: rsync failed for {len(bad)} source(s): {'; '.join(bad)}"
                    )
            elif isinstance(step, Fanout) and step.desc == BACKUP:
                phase = "backup"
                for (tname, r_), lane in zip(repos.items(), r.value or [], strict=False):
                    msg = self._target(job, tname, r_, lane, res)
                    if msg:
                        failures.append(f"{tname}: {msg}")
            elif isinstance(step, Local) and step.action == "backup.stage":
                phase = "stage"
                if r.ok:
                    res.update(files=r.value["files"], bytes=r.value["bytes"])
                    marks.update(r.value)
                else:
                    failures.append(f"stage: {_first_line(r)}")
            elif isinstance(step, Local) and step.action == "backup.guard":
                phase = "guard"
                if not r.ok:
                    failures.append(_first_line(r))
            elif isinstance(step, Local) and step.action == "backup.begin" and r.ok:
                marks["t"] = r.value["t"]
            elif isinstance(step, Local) and step.action == pings.START and r.ok:
                res.setdefault("warnings", []).extend(w for w in [r.value["warning"]] if w)
            elif msg := hooks.failure(step, r):
                failures.append(msg)
            elif not r.ok:
                failures.append(f"{phase}: {_first_line(r)}")
        if {"t", "t0", "t1"} <= set(marks):
            res["timings"] = {
                "pull": round(marks["t0"] - marks["t"], 3),
                "stage": round(marks["t1"] - marks["t0"], 3),
                "backup": round(v["finished"] - marks["t1"], 3),
            }
        res["phase"] = phase
        if failures:
            res["message"] = "; ".join(failures)
            if len(failures) == len(res.get("locked", [])):  # only another client's lock
                res["status"] = "locked"
            elif len(failures) == len(res.get("uninitialised", [])):
                self.refused_jobs.append(job.name)
        elif len(results) == len(steps):
            res["status"] = "ok"
        else:
            res["message"] = v["message"]
        return res

    def _target(
        self,
        job: BackupJob,
        name: str,
        r: restic.Repo,
        lane: list[dict[str, Any]],
        res: dict[str, Any],
    ) -> str:
        """Read one target's backup lane: "" when it went well."""
        last = _result(lane[-1])
        if last.outcome == "locked":  # waited --retry-lock; the holder is named, never unlocked
            res.setdefault("locked", []).append(name)
        res["targets"][name] = "failed"
        backup = _result(lane[0])
        if backup.outcome == "no-repo":  # refused, as README's exit codes say (4), unless
            res.setdefault("uninitialised", []).append(name)  # something else failed too
            return f"{r.repository} is not a restic repository yet: run `inv backup.init`"
        summary = restic.backup_summary(backup.stdout)
        snap = str(summary.get("snapshot_id") or "")[:8]  # restic's short id, as it shows them
        res["snapshots"][name] = snap
        res.setdefault("added", {})[name] = int(summary.get("data_added") or 0)
        if job.kind == "nas" and summary:  # no staging here: restic counted the shares
            res["files"] = int(summary.get("total_files_processed") or 0)
            res["bytes"] = int(summary.get("total_bytes_processed") or 0)
        if backup.outcome == "incomplete":  # saved tagged `partial` by the backup call itself
            return (
                f"restic exit 3: snapshot {snap or '?'} is INCOMPLETE (some files unreadable), "
                f"saved tagged {jobs.PARTIAL_TAG!r}, not counted: {backup.tail(2)}"
            )
        if backup.outcome != "ok":
            res["targets"][name] = backup.outcome
            return f"restic backup {backup.outcome} (exit {backup.code}): {backup.tail()}"
        confirmed = lane[1] if len(lane) > 1 else None
        if confirmed is None or not confirmed["ok"]:
            code = confirmed.get("value") if confirmed else None
            res["targets"][name] = "locked" if code == restic.LOCKED else "failed"
            return _first_line(confirmed) if confirmed else "killed before marking it complete"
        res["snapshots"][name] = str(confirmed["value"]["snapshot"])[:8]
        res["targets"][name] = "ok"
        return ""

    def handlers(self) -> dict[str, Handler]:
        talos: dict[str, Handler] = {}
        # the Talos modules cost start-up: imported only when an etcd snapshot is in this run
        if any(self.inv.backup.jobs[j].kind == "etcd-snapshot" for j in self.repos):
            from ...talos.ops.glue import handlers as talos_handlers

            talos = talos_handlers()
        return {
            **super().handlers(),
            **talos,
            "backup.begin": _clean_os_errors(self.begin),
            "backup.copy-config": _clean_os_errors(self.copy_config),
            "backup.stage": _clean_os_errors(self.stage),
            "backup.guard": self.guard,
            "backup.confirm": self.confirm,
            **nas_run_handlers(self),
            "backup.copy": self.copy,
            postgres.ACTION: self.pg_dump,
            "backup.start": self.start,
            "backup.refused": self.refused,
            "backup.record": self.record,
            pings.START: pings.start,
            pings.FINISH: self.finish_job,
            hooks.ON_ERROR: self.on_error,
        }

    def on_error(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """In the on_error Job's own process group (forked after the record was written)."""
        mine = [r for r in self.results if r["job"] == args["job"]]
        return hooks.run_on_error(args, mine[-1] if mine else None)

    def finish_job(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Pings and warnings after a job's record: never a failure of the backup."""
        res = args["result"].value or {}
        warnings = [*res.get("warnings", []), *pings.finish(args, log_line(res) if res else "")]
        for w in warnings:
            print(f"domum: warning: backup job {args['job']}: {w}", file=sys.stderr)
        return {"warnings": warnings}

    def report(self, results: list[StepResult], json_out: bool) -> None:
        if json_out:
            print(json.dumps(self.results, indent=2))
        if not self.results:
            self.say("no job ran")
        # exit 5 when the only failures are repository locks another client holds
        self.finish(
            "backup.snapshot",
            locked=len(self.locked) == len(self.failures),
            refused=len(self.refused_jobs) == len(self.failures),  # exit 4: run backup.init
        )
