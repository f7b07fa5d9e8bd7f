"""Tasks of the tools namespace: check and install the external CLIs Domum drives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from invoke.collection import Collection
from invoke.context import Context

from ..taskutil import Planned, domum_task, plan_task

if TYPE_CHECKING:
    from ..run import StepResult


@domum_task(help={"json": "print the table as JSON"})
def check(c: Context, json: bool = False) -> None:
    """Show every external CLI: found or missing, path, version and pinned version."""
    from ..console import print_table
    from ..errors import ToolMissing
    from .install import pinned_versions
    from .versions import statuses

    found = statuses(pinned_versions())
    print_table(
        "external tools",
        ("tool", "found", "path", "version", "pinned", "status"),
        [s.row() for s in found],
        json_out=json,
    )
    missing = [s.tool for s in found if s.status == "missing"]
    if missing:
        raise ToolMissing(
            f"missing: {', '.join(missing)}",
            hint="`inv tools.install` for talosctl/flux/restic; apt/pip for the rest (see README)",
        )


@plan_task(
    help={
        "force": "download again even if the pinned version is already in .bin/",
        "tool": "install only this: talosctl, flux, restic or schemas; default: all four",
    }
)
def install(c: Context, force: bool = False, tool: str = "") -> Planned:
    """Download pinned talosctl, flux, restic and the Talos/CRD schemas, checking sha256.

    The CLIs go into .bin/, the schemas into the user cache (see README "tools")."""
    import sys

    from .. import settings
    from . import bin_dir
    from .install import handler, host_platform, plan_install, releases_for, talos_pin
    from .schemas import install_schema, plan_schemas, wanted
    from .versions import probe_version

    os_name, arch = host_platform()
    names = [tool] if tool else ["talosctl", "flux", "restic", "schemas"]
    with_schemas = "schemas" in names
    names = [n for n in names if n != "schemas"]
    releases = releases_for(names, os_name, arch)
    dest = bin_dir()
    installed: dict[str, str | None] = {}
    for name in names:
        path = dest / name
        installed[name] = probe_version(name, path)[0] if path.is_file() else None
    plan = plan_install(releases, installed, dest, force=force)
    if with_schemas:
        files, unpinned = wanted(talos_pin()[0], settings.repo_root() / "cluster")
        plan_schemas(plan, files, unpinned, force=force)
    show = sys.stderr.isatty()

    def report(results: Sequence[StepResult], json_out: bool) -> None:
        if json_out:
            import json

            print(json.dumps([r.value for r in results], indent=2))
        elif not plan.steps:  # nothing done: say why (the notes: already installed, unpinned)
            for note in plan.notes:
                print(note, file=sys.stderr)

    handlers = {
        "tools.download": handler(releases, show_progress=show),
        "tools.schema": install_schema,
    }
    return Planned(plan, handlers=handlers, report=report)


TASKS = [check, install]
ns = Collection("tools")
for _task in TASKS:
    ns.add_task(_task)
