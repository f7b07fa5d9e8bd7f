"""pi.enroll's step handlers and report. `enroll.read-host-key` reads the host's key (the same
read-only probe the planner tries) and shows its fingerprint; `enroll.add-host-key` adds the key
step 1 read, with the same rules as the planner (a CHANGED key needs --replace). Both run only
in plans made for a host that could not be asked while planning."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import Refused
from . import facts
from .plan import known_hosts_update

if TYPE_CHECKING:
    from ...inventory.model import Inventory
    from ...run import LocalHandler, StepResult
    from ...ssh import Target


def changed_key(
    target: Target, path: Path, key_type: str, replaced: Sequence[str], new_fp: str
) -> Refused:
    old = ", ".join(facts.fingerprint(k) for k in replaced)
    return Refused(
        f"{target.label} ({target.known_hosts_name}): host key CHANGED: {path} has "
        f"{key_type} {old}, the host now presents {key_type} {new_fp}",
        hint="if the host was reinstalled, compare the new fingerprint with its console "
        "and run again with --replace; otherwise someone may be in between",
    )


def handlers(inv: Inventory, target: Target, path: Path) -> dict[str, LocalHandler]:
    def read_host_key(args: Mapping[str, Any]) -> tuple[str, str]:
        key_type, key_b64 = facts.read_host_key(target, inv.ssh.connect_timeout_s)
        print(
            f"domum: {target.label} presents {key_type} {facts.fingerprint(key_b64)}",
            file=sys.stderr,
        )
        return key_type, key_b64

    def add_host_key(args: Mapping[str, Any]) -> str:
        from ...run import write_atomic

        key_type, key_b64 = args["key"].value
        current = path.read_text() if path.exists() else ""
        text, state, replaced = known_hosts_update(current, args["host"], key_type, key_b64)
        if state == "changed" and not args.get("replace"):
            raise changed_key(target, path, key_type, replaced, facts.fingerprint(key_b64))
        if state != "same":
            write_atomic(path, text.encode(), 0o644)
        return state

    return {"enroll.read-host-key": read_host_key, "enroll.add-host-key": add_host_key}


def report(target: Target, known_hosts: str, results: Sequence[StepResult]) -> None:
    """One line on stderr saying what changed (nothing when the key was already there)."""
    if not results:
        return
    last = results[-1].value
    state = last if isinstance(last, str) else ("changed" if "replace" in results[-1].step.desc
                                                else "new")  # fmt: skip
    if state == "same":
        return
    verb = "replaced in" if state == "changed" else "added to"
    print(f"{target.label}: host key {verb} {known_hosts}", file=sys.stderr)
