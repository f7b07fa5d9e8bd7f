"""Guards (issue 16 #4, #5): a staged copy that looks like lost data is not backed up.

The step runs inside the job's process group after `backup.stage` and before `restic backup`,
and decides from the staged MANIFEST.sha256. Why there and not just before `backup.confirm`:
a failed guard then writes NOTHING to the repository. No near-empty snapshot exists that a
retention rule could count (Domum's own counts only `complete` ones, but a person's hand-run
`restic forget --keep-last N` counts every snapshot), no lock is taken, no space is used. The
lane stops at the failed step, so the job's retention does not run either.

- min_files: fewer regular files than this (Domum's own MANIFEST.sha256 and summary.json are
  not counted) fails;
- max_shrink_percent: more than this share of the last complete run's files gone fails;
  the count is recorded in the state file after each complete run (state.record_run);
- required files per kind: `config` must hold the Talos secrets bundle beside Domum's secrets
  (README: half of the disaster-recovery pair); `etcd-snapshot` its snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import DomumError
from ..bookkeeping.state import BASELINE
from ..jobs import Job
from ..producers import stage

# name in the staged copy -> where it comes from, for the message
REQUIRED: dict[str, dict[str, str]] = {
    "config": {
        "secrets.sops.yaml": "Domum's secrets (DOMUM_SECRETS_FILE or config/secrets.sops.yaml)",
        "talos-secrets.sops.yaml": (
            "the Talos secrets bundle (cluster/core/01-talos/secrets.sops.yaml; "
            "`inv talos.genconfig` creates it)"
        ),
        "domum.yaml": "the inventory",
    },
    "etcd-snapshot": {"etcd.snapshot": "the etcd snapshot"},
}
LAST_COMPLETE = BASELINE  # state.json jobs.<job>.<this>: files of the last ok run


class GuardFailed(DomumError):
    """A guard refused the staged copy: the job fails, nothing is backed up."""


def problems(job: Job, files: int, present: set[str], last_complete: int | None) -> list[str]:
    """Every guard the staged copy fails, as a sentence naming expected and got."""
    out: list[str] = []
    spec = job.spec
    if files < spec.min_files:
        out.append(
            f"min_files: expected at least {spec.min_files} file(s), got {files} "
            "(source mount point empty or unmounted?)"
        )
    if last_complete and spec.max_shrink_percent < 100:
        shrink = 100.0 * (last_complete - files) / last_complete
        if shrink > spec.max_shrink_percent:
            out.append(
                f"max_shrink_percent: expected at most {spec.max_shrink_percent:g}% fewer files "
                f"than the last complete run ({last_complete}), got {files} "
                f"({shrink:.0f}% fewer; mount point empty? if intended, raise "
                f"backup.jobs.{job.name}.max_shrink_percent for one run)"
            )
    for name, what in REQUIRED.get(job.kind, {}).items():
        if name not in present:
            out.append(f"required file {name} missing: {what}")
    return out


def check(job: Job, final: Path, last_complete: int | None) -> dict[str, Any]:
    """Raise GuardFailed with every failed guard; else what was checked."""
    manifest = stage.read_manifest(final)
    found = problems(job, len(manifest), set(manifest), last_complete)
    if found:
        raise GuardFailed(f"guard failed, nothing backed up, retention skipped: {'; '.join(found)}")
    return {"files": len(manifest), "last_complete": last_complete}


def last_complete(entry: Mapping[str, Any]) -> int | None:
    value = entry.get(LAST_COMPLETE)
    return int(value) if isinstance(value, int) else None
