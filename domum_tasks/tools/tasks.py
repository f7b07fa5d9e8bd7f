"""Tasks of the tools namespace: check and install the external CLIs Domum drives."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context

from ..taskutil import DRY_RUN, JSON, domum_task


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
            hint="`inv tools.install` for talosctl/flux; apt/pip for the rest (see README)",
        )


@domum_task(
    help={
        "dry_run": DRY_RUN,
        "json": JSON,
        "force": "download again even if the pinned version is already in .bin/",
        "tool": "install only this: talosctl, flux or schemas; default: all three",
    }
)
def install(
    c: Context, dry_run: bool = False, json: bool = False, force: bool = False, tool: str = ""
) -> None:
    """Download pinned talosctl, flux and the Talos/CRD schemas, checking sha256.

    The CLIs go into .bin/, the schemas into the user cache (see README "tools")."""
    import sys

    from .. import taskutil
    from ..inventory.loader import repo_root
    from . import bin_dir
    from .install import handler, host_platform, plan_install, releases_for, talos_pin
    from .schemas import install_schema, plan_schemas, wanted
    from .versions import probe_version

    os_name, arch = host_platform()
    names = [tool] if tool else ["talosctl", "flux", "schemas"]
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
        files, unpinned = wanted(talos_pin()[0], repo_root() / "cluster")
        plan_schemas(plan, files, unpinned, force=force)
    show = sys.stderr.isatty() and not json
    ex = taskutil.executor(
        dry_run=dry_run,
        json_out=json,
        handlers={
            "tools.download": handler(releases, show_progress=show, quiet=json),
            "tools.schema": install_schema,
        },
    )
    if not dry_run and not plan.steps:
        for note in plan.notes:
            print(note, file=sys.stderr)
    results = ex.execute(plan)
    if json and not dry_run:
        import json as _json

        print(_json.dumps([r.value for r in results], indent=2))


TASKS = [check, install]
ns = Collection("tools")
for _task in TASKS:
    ns.add_task(_task)
