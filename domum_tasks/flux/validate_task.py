"""`inv flux.validate`: the thin task over flux/validate/ (and the checker `inv check` runs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from invoke import Context

from ..taskutil import domum_task

if TYPE_CHECKING:
    from ..findings import CheckFinding
    from ..inventory.loader import Loaded
    from .validate.model import Finding


def _findings(loaded: Loaded) -> list[Finding]:
    from ..inventory.loader import repo_root
    from .validate.api import settings_for
    from .validate.api import validate as run

    root = repo_root()
    tree = root / "cluster"
    if not tree.is_dir():
        return []
    return run(settings_for(loaded.inventory, root, loaded.path.name, tree))


@domum_task(help={"json": "print the findings as JSON"})
def validate(c: Context, json: bool = False) -> None:
    """Validate the GitOps tree offline: render, schemas, references, Flux rules."""
    from ..console import print_table
    from ..errors import ConfigError
    from ..inventory.loader import load_with_findings
    from .validate.api import summary

    found = _findings(load_with_findings())
    cols = ("file", "object", "check", "severity", "message")
    if json:
        print_table(
            "",
            cols,
            [(f.file, f.obj, f.check, f.severity, f.message) for f in found],
            json_out=True,
        )
    elif found:
        print_table(
            "flux.validate", cols, [(f.file, f.obj, f.check, f.severity, f.message) for f in found]
        )
    errors = sum(f.severity == "error" for f in found)
    if errors:
        raise ConfigError(f"flux.validate: {summary(found)}")


def check_flux(loaded: Loaded) -> Iterable[CheckFinding]:
    """`inv check`'s view: one row per finding, or one ok row."""
    from ..errors import ToolMissing
    from ..findings import CheckFinding
    from .validate.api import summary

    try:
        found = _findings(loaded)
    except ToolMissing as exc:
        yield CheckFinding("flux", "error", "kubectl", str(exc).replace("\n", " "))
        return
    for f in found:
        subject = f.file if f.obj == "-" else f"{f.file} {f.obj}"
        yield CheckFinding("flux", f.severity, subject, f"[{f.check}] {f.message}")
    if not any(f.severity == "error" for f in found):
        yield CheckFinding("flux", "ok", "cluster/", f"GitOps tree valid ({summary(found)})")
