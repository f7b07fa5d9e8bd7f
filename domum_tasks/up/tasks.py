"""The `up` task: options in, driver.up does the rest."""

from __future__ import annotations

from invoke import Context

from ..taskutil import DRY_RUN, YES, domum_task


@domum_task(
    help={
        "dry_run": DRY_RUN + ": every phase's probes and plans",
        "json": "with --dry-run: the phases, their probes and plans as one JSON document",
        "yes": YES,
        "from_": "start at this phase (preflight schematics machines talos flux backups summary)",
        "only": "run only this phase",
        "wait": "wait for absent Pis and mini PCs to appear instead of stopping",
        "wait_timeout": "how long --wait, a new VM's boot or a node's reboot after apply may take (e.g. 30m)",
        "flux_timeout": "how long Flux may take to get every Kustomization/HelmRelease Ready",
        "talos_timeout": "talosctl health / bootstrap retries (Go duration, e.g. 10m)",
        "poll": "how often up's own waits probe again (nodes appearing, Flux Ready; e.g. 10s)",
        "unit_dir": "where the backup timers go (default /etc/systemd/system)",
    }
)
def up(
    c: Context,
    dry_run: bool = False,
    json: bool = False,
    yes: bool = False,
    from_: str = "",
    only: str = "",
    wait: bool = False,
    wait_timeout: str = "30m",
    flux_timeout: str = "15m",
    talos_timeout: str = "10m",
    poll: str = "10s",
    unit_dir: str = "",
) -> None:
    """Bring up the whole homelab: machines, Talos, Flux, backups (resumable)."""
    from ..backup.bookkeeping.signals import Catcher
    from ..talos.ops.plan import parse_duration
    from .driver import Run
    from .driver import up as run_up
    from .model import Options

    options = Options(
        wait=wait,
        wait_timeout_s=parse_duration(wait_timeout, "--wait-timeout"),
        flux_timeout_s=parse_duration(flux_timeout, "--flux-timeout"),
        talos_timeout=talos_timeout,
        unit_dir=unit_dir,
        yes=yes,
        poll_s=poll_seconds(poll),
    )
    parse_duration(talos_timeout, "--talos-timeout")
    run = Run(dry_run=dry_run, json_out=json, options=options, start=from_, only=only)
    catcher = Catcher()
    if not dry_run:  # SIGTERM/SIGHUP end the run as Ctrl-C does (exit 143/129)
        catcher.install()
    try:
        run_up(run)
    finally:
        catcher.restore()


def poll_seconds(text: str) -> float:
    """--poll: a Go duration (10s, 1m) or, below a second, 500ms / 0.5s."""
    import re

    from ..talos.ops.plan import parse_duration

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)(ms|s)\s*", text)
    if m and float(m.group(1)) > 0:
        return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    return parse_duration(text, "--poll")
