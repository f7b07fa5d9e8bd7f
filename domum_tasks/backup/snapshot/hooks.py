"""A job's `before`, `after` and `on_error` commands (inventory), as plan steps.

`before` and `after` are steps of the job's own lane, so they run in its process group: the
job's deadline and the signals that end a run end them too, and the run's flock stays held
while they live. `before` runs first; `after` only once every target holds a complete
snapshot (the lane stops at the first failure). `on_error` runs after the job failed, in a
process group of its own with its own deadline: the job's group may be gone (killed at its
deadline), and the failure's reason is only known once the job's record is written.

Exit codes, as borgmatic's command hooks (docs/reference/configuration/command-hooks.md,
"soft failure"): `before` exiting 75 (EX_TEMPFAIL) skips this run of the job without error
(status "skipped": the source is not there today, e.g. an unplugged disk); any other non-zero
exit of `before` or `after` fails the job, which then runs `on_error`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import CommandFailed
from ...plan import Cmd, Job, Local, Step
from ...run import StepResult, run_cmd
from ..jobs import Job as BackupJob

SOFT_FAIL = 75  # borgmatic's soft failure (sysexits.h EX_TEMPFAIL)
BEFORE = f"before hook (exit {SOFT_FAIL}: skip this run, not a failure)"
AFTER = "after hook (every target holds a complete snapshot)"
ON_ERROR = "backup.on-error"
ON_ERROR_S = 300.0  # an on_error command's own deadline


def _env(job: BackupJob) -> dict[str, str]:
    return {"DOMUM_JOB": job.name, "DOMUM_KIND": job.kind}


def _cmd(job: BackupJob, argv: Sequence[str], desc: str, timeout_s: float) -> Cmd:
    # check=False: a failing hook is the lane's outcome (its exit code read by `judge`)
    return Cmd(
        tuple(argv), desc=desc, timeout_s=timeout_s, env=_env(job), check=False, inherit_fds=True
    )


def before(job: BackupJob, timeout_s: float) -> list[Step]:
    return [_cmd(job, job.spec.before, BEFORE, timeout_s)] if job.spec.before else []


def after(job: BackupJob, timeout_s: float) -> list[Step]:
    return [_cmd(job, job.spec.after, AFTER, timeout_s)] if job.spec.after else []


def on_error(job: BackupJob) -> Job | None:
    if not job.spec.on_error:
        return None
    deadline = min(ON_ERROR_S, job.spec.timeout)
    step = Local(
        ON_ERROR,
        {"job": job.name, "argv": list(job.spec.on_error), "timeout_s": deadline},
        desc="only if the job failed; env DOMUM_JOB, DOMUM_STATUS, DOMUM_ERROR",
    )
    return Job(f"{job.name}.on_error", (step,), deadline + 5.0)


def _tail(r: StepResult) -> str:
    lines = (r.stderr or r.stdout or "").strip().splitlines()
    return " | ".join(lines[-3:])


def skipped(steps: Sequence[Step], results: Sequence[StepResult]) -> str:
    """The message of a run `before` skipped softly, else ""."""
    if not results or not isinstance(steps[0], Cmd) or steps[0].desc != BEFORE:
        return ""
    r = results[0]
    if r.ok or r.value != SOFT_FAIL:
        return ""
    why = _tail(r)
    return f"skipped: before hook exit {SOFT_FAIL}" + (f": {why}" if why else "")


def failure(step: Step, r: StepResult) -> str:
    """A failed hook step's message, "" when `step` is not a hook or it went well."""
    if r.ok or not isinstance(step, Cmd) or step.desc not in (BEFORE, AFTER):
        return ""
    which = "before" if step.desc == BEFORE else "after"
    code = f"exit {r.value}" if isinstance(r.value, int) else "did not finish"
    why = _tail(r)
    return f"{which} hook {code}" + (f": {why}" if why else "")


def run_on_error(args: Mapping[str, Any], result: Mapping[str, Any] | None) -> dict[str, Any]:
    """Run the `on_error` command when the job's record says it failed (not ok, not
    skipped); raise when the command itself fails (a warning for the caller)."""
    status = str((result or {}).get("status") or "failed")
    if status in ("ok", "skipped"):
        return {"ran": False}
    env = {
        "DOMUM_JOB": str(args["job"]),
        "DOMUM_STATUS": status,
        "DOMUM_ERROR": str((result or {}).get("message") or "no record: the job did not finish"),
    }
    argv = [str(a) for a in args["argv"]]
    proc = run_cmd(argv, timeout_s=float(args["timeout_s"]), env=env, check=False)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise CommandFailed(
            f"on_error hook exit {proc.returncode}" + (f": {tail}" if tail else ""),
            returncode=proc.returncode,
        )
    return {"ran": True}
