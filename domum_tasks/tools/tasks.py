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
            hint="`inv tools.install` for talosctl/flux/restic; apt/pip for the rest (scripts/setup.sh)",
        )


@plan_task(
    help={
        "force": "download again even if already installed (charts: checked against the lock)",
        "tool": "install only this: talosctl, flux, restic, schemas or charts; default: all five",
    }
)
def install(c: Context, force: bool = False, tool: str = "") -> Planned:
    """Download the pinned CLIs, schemas and the tree's charts, checking sha256.

    The CLIs go into .bin/, the schemas and charts into the user cache (see README "tools")."""
    import sys

    from .. import settings
    from . import bin_dir
    from .chartlock import LOCK_STEP, write_lock
    from .charts import install_chart, plan_charts
    from .charts import wanted as wanted_charts
    from .install import handler, host_platform, plan_install, releases_for, talos_pin
    from .schemas import install_schema, plan_schemas, wanted
    from .versions import probe_version

    os_name, arch = host_platform()
    names = [tool] if tool else ["talosctl", "flux", "restic", "schemas", "charts"]
    with_schemas, with_charts = "schemas" in names, "charts" in names
    names = [n for n in names if n not in ("schemas", "charts")]
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
    if with_charts:
        charts, chart_notes = wanted_charts(settings.repo_root() / "cluster")
        plan_charts(plan, charts, chart_notes, force=force)
    show = sys.stderr.isatty()

    def report(results: Sequence[StepResult], json_out: bool) -> None:
        if json_out:
            import json

            print(json.dumps([r.value for r in results], indent=2))

    handlers = {
        "tools.download": handler(releases, show_progress=show),
        "tools.schema": install_schema,
        "tools.chart": install_chart,
        LOCK_STEP: write_lock,
    }
    # show_notes: the real run says what it skips and which charts it trusts on first use.
    return Planned(plan, handlers=handlers, report=report, show_notes=True)


TASKS = [check, install]
ns = Collection("tools")
for _task in TASKS:
    ns.add_task(_task)
