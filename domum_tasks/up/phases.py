"""The phases of `up`, in order, and which of them a run executes (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigError

PHASES: tuple[str, ...] = (
    "preflight",
    "schematics",
    "machines",
    "talos",
    "flux",
    "backups",
    "summary",
)

# The inventory's top-level sections each phase reads: a change to one of them re-runs that
# phase (and every later one). preflight and summary read the whole file.
SECTIONS: Mapping[str, tuple[str, ...] | None] = {
    "preflight": None,
    "schematics": ("cluster", "nodes"),
    "machines": ("cluster", "nodes", "proxmox", "raspios", "ssh"),
    "talos": ("cluster", "nodes"),
    "flux": ("cluster", "flux", "site"),
    "backups": ("backup", "nas", "proxmox"),
    "summary": None,
}

# Read-only phases run every time (they cost a probe and guard the rest).
ALWAYS = ("preflight", "summary")


def check_name(name: str, option: str) -> str:
    if name not in PHASES:
        raise ConfigError(f"{option} {name!r}: not a phase; valid phases: {', '.join(PHASES)}")
    return name


def select(
    finished: Mapping[str, str],
    hashes: Mapping[str, str],
    *,
    start: str = "",
    only: str = "",
) -> tuple[list[str], str]:
    """(phases to run, why). `finished`: phase -> inventory hash recorded when it finished;
    `hashes`: phase -> the hash now. Without --from/--only: from the first phase not finished
    or finished with another inventory, to the end (later phases probe anyway)."""
    if start and only:
        raise ConfigError("give --from PHASE or --only PHASE, not both")
    if only:
        return [check_name(only, "--only")], f"--only {only}"
    if start:
        i = PHASES.index(check_name(start, "--from"))
        return list(PHASES[i:]), f"--from {start}"
    for i, name in enumerate(PHASES):
        if name in ALWAYS:
            continue
        if name not in finished:
            return _with_always(PHASES[i:]), f"resuming at {name} (not finished)"
        if finished[name] != hashes.get(name):
            return _with_always(PHASES[i:]), f"resuming at {name} (its inventory changed)"
    # Nothing to resume: every phase runs again, probes, and (on a finished homelab) plans
    # nothing, so a second `up` checks the whole homelab rather than trusting this file.
    return list(PHASES), "every phase finished with this inventory: probing each again"


def _with_always(tail: tuple[str, ...]) -> list[str]:
    """preflight guards every run; summary ends every run."""
    return [p for p in PHASES if p in ALWAYS or p in tail]
