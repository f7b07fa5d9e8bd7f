"""Opening restic targets: passwords from secrets, and what restic's answers mean for us."""

from __future__ import annotations

from typing import Any

from ...errors import CommandFailed, ConfigError, Refused
from ...inventory.model import Inventory
from .. import jobs
from ..jobs import Job
from . import restic


def repo_for(inv: Inventory, name: str, secrets: Any = None) -> restic.Repo:
    from ...secrets.store import Secrets

    target = inv.backup.targets.get(name)
    if target is None or target.type != "restic":
        valid = ", ".join(t for t, s in sorted(inv.backup.targets.items()) if s.type == "restic")
        raise ConfigError(
            f"--target {name}: not a restic target under backup.targets; valid: {valid}"
        )
    from ...ssh import repo_path
    from .version import require_restic

    # exit 3 before any secret is read or anything planned
    require_restic(repo_path(inv.backup.state_dir) / "cache")
    secrets = secrets if secrets is not None else Secrets()
    return restic.repo(inv, name, target, secrets[jobs.password_key(name)])


def job_repos(inv: Inventory, job: Job, secrets: Any = None) -> dict[str, restic.Repo]:
    return {name: repo_for(inv, name, secrets) for name in jobs.restic_targets(inv, job)}


def not_initialised(r: restic.Repo) -> Refused:
    return Refused(
        f"target {r.name} ({r.repository}) is not a restic repository yet",
        hint="run `inv backup.init`",
    )


def check_result(r: restic.Repo, res: restic.Result, what: str) -> None:
    if res.outcome == "no-repo":
        raise not_initialised(r)
    if res.outcome == "bad-password":
        raise ConfigError(
            f"target {r.name}: wrong restic password (secret {jobs.password_key(r.name)})"
        )
    if res.outcome != "ok":
        raise CommandFailed(f"restic {what} on {r.name} failed (exit {res.code}): {res.tail()}")


def state_of(snap: dict[str, Any]) -> str:
    """complete (tagged so after restic exit 0), partial, or unmarked (made before Domum marked
    completeness; never counted as complete, never forgotten by Domum)."""
    tags = snap.get("tags") or []
    if jobs.COMPLETE_TAG in tags:
        return "complete"
    return "partial" if jobs.PARTIAL_TAG in tags else "unmarked"


def is_partial(snap: dict[str, Any]) -> bool:
    return state_of(snap) == "partial"


def complete(snaps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only snapshots positively marked complete count (restore, drill, verify, list)."""
    return [s for s in snaps if state_of(s) == "complete"]
