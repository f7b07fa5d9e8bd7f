"""Pi fleet tasks: status, run, update, reboot, enroll. Thin: parse, plan, hand to ssh/run.

SSH is strict everywhere (domum_tasks.ssh); only `pi.enroll` adds a host key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoke.context import Context

from ...taskutil import ALL, DRY_RUN, JSON, YES, domum_task, load_inventory

if TYPE_CHECKING:
    from ...ssh import HostResult
    from .facts import PiFacts

NODE_OR_NAS = "node id (last octet of the IP, e.g. 93), or 'nas' for the NAS"
PARALLEL = "hosts at once (default: ssh.parallel from the inventory)"


def _dump(obj: Any) -> None:
    import json

    print(json.dumps(obj, indent=2, default=str))


@domum_task(help={"node": "only this Pi (node id, e.g. 92)", "json": "print the rows as JSON"})
def status(c: Context, node: str | None = None, json: bool = False) -> None:
    """Show every Pi's health: reachability, OS, load, temperature, throttling, disk.

    Exit 1 when a Pi is down (each row says why); `unknown` rows (talosctl or the talosconfig
    missing, so nobody could ask) do not count as down."""
    from ...console import print_table
    from ...errors import ConfigError
    from . import facts

    inv = load_inventory()
    if node:
        if not inv.node(node).is_pi:
            raise ConfigError(
                f"--node {node}: node {node} is not a Raspberry Pi; pi.status shows Pis"
            )
        ids = [int(node)]
    else:
        ids = list(inv.pis)
    rows = facts.probe_fleet(inv, ids)
    if json:
        _dump([r.to_dict() for r in rows])
    else:
        print_table(
            "Raspberry Pis",
            ("node", "host", "reachable", "os", "kernel", "uptime", "load", "temp", "throttling",
             "root disk", "reboot", "note"),
            [_status_row(r) for r in rows],
        )  # fmt: skip
    # The status rule (README): the rows first, then exit 1 if any host is down.
    down = [r for r in rows if r.reachable is False]
    if down:
        from ...errors import RemoteError

        raise RemoteError(
            f"{len(down)} of {len(rows)} Pi(s) down: "
            + "; ".join(f"{r.hostname}: {r.error}" for r in down)
        )


def _status_row(r: PiFacts) -> tuple[str, ...]:
    from .facts import human_uptime

    def maybe(value: Any, fmt: str = "{}") -> str:
        return "-" if value is None else fmt.format(value)

    reach = {True: "yes", False: "down", None: "unknown"}[r.reachable]  # as in --json
    reboot = {True: "yes", False: "no", None: "-"}[r.reboot_required]
    throttle = "-" if r.throttled is None else (", ".join(r.throttling) or "ok")
    return (
        str(r.node), r.hostname, reach, maybe(r.os), maybe(r.kernel),
        human_uptime(r.uptime_s) if r.uptime_s is not None else "-",
        " ".join(f"{x:.2f}" for x in r.load) if r.load else "-",
        maybe(r.temp_c, "{:.1f}°C"), throttle, maybe(r.disk_used_pct, "{}%"), reboot, r.error,
    )  # fmt: skip


@domum_task(
    help={
        "cmd": "shell command to run on each host",
        "node": NODE_OR_NAS,
        "all_": "every Raspberry Pi OS Pi (Talos has no SSH)",
        "parallel": PARALLEL,
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def run(
    c: Context,
    cmd: str = "",
    node: str | None = None,
    all_: bool = False,
    parallel: int | None = None,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Run a shell command on one Pi, the NAS or every Pi; exit 1 if any host failed."""
    from ... import ssh, taskutil
    from ...errors import ConfigError
    from ...plan import Ssh
    from . import plan as fleet_plan

    if parallel is not None and parallel < 1:
        raise ConfigError(f"--parallel {parallel}: must be 1 or more (hosts at once)")
    inv = load_inventory()
    hosts = fleet_plan.select(inv, node, all_, task="pi.run", allow_nas=True)
    plan = fleet_plan.run_plan(inv, hosts, cmd)
    if dry_run:
        taskutil.executor(dry_run=True, json_out=json, inventory=inv).execute(plan)
        return
    steps = [s for s in plan.steps if isinstance(s, Ssh)]
    results = [r[0] for r in ssh.run_steps(inv, steps, parallel or inv.ssh.parallel)]
    if json:
        _dump([_result_dict(r) for r in results])
    else:
        _print_outputs(results)
    ssh.raise_for(results, "pi.run")


def _result_dict(r: HostResult) -> dict[str, Any]:
    return {
        "host": r.target.label, "address": r.target.host, "status": r.status,
        "exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr, "error": r.error,
        "elapsed_s": round(r.elapsed_s, 3),
    }  # fmt: skip


def _print_outputs(results: list[HostResult]) -> None:
    from ...console import print_table

    for r in results:
        print(f"── {r.target.label} ({r.target.host}): {r.status}")
        for text in (r.stdout, r.stderr):
            if text.strip():
                print(text.rstrip("\n"))
    rows = [(r.target.label, r.status, "-" if r.exit_code is None else r.exit_code,
             f"{r.elapsed_s:.2f}s", r.reason()) for r in results]  # fmt: skip
    print_table("pi.run", ("host", "status", "exit", "time", "reason"), rows)


@domum_task(
    help={
        "node": NODE_OR_NAS,
        "all_": ALL + " (every Raspberry Pi OS Pi)",
        "parallel": "hosts upgraded at once (default 1: one at a time)",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def update(
    c: Context,
    node: str | None = None,
    all_: bool = False,
    parallel: int = 1,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Upgrade Pis non-interactively (apt full-upgrade); report packages and reboots."""
    from ... import ssh, taskutil
    from ...console import print_table
    from ...errors import ConfigError
    from ...plan import Ssh
    from . import facts
    from . import plan as fleet_plan

    if parallel < 1:
        raise ConfigError(f"--parallel {parallel}: must be 1 or more (hosts at once)")
    inv = load_inventory()
    hosts = fleet_plan.select(inv, node, all_, task="pi.update", allow_nas=False)
    plan = fleet_plan.update_plan(inv, hosts)
    if dry_run:
        taskutil.executor(dry_run=True, json_out=json, inventory=inv).execute(plan)
        return
    steps = [s for s in plan.steps if isinstance(s, Ssh)]
    per_host = ssh.run_steps(inv, steps, parallel)
    report = []
    for results in per_host:
        last = results[-1]
        row: dict[str, Any] = {"host": last.target.label, "ok": last.ok and len(results) == 3,
                               "upgraded": None, "packages": [], "reboot_required": None,
                               "reason": last.reason()}  # fmt: skip
        if len(results) >= 2 and results[1].ok:
            row["upgraded"], row["packages"] = facts.parse_upgrade(results[1].stdout)
        if len(results) == 3 and results[2].ok:
            row["reboot_required"], _ = facts.parse_reboot_check(results[2].stdout)
        report.append(row)
    if json:
        _dump(report)
    else:
        print_table(
            "pi.update",
            ("host", "result", "upgraded", "packages", "reboot required", "reason"),
            [(r["host"], "ok" if r["ok"] else "error", r["upgraded"], " ".join(r["packages"]),
              {True: "yes", False: "no", None: "-"}[r["reboot_required"]], r["reason"])
             for r in report],
        )  # fmt: skip
    ssh.raise_for([res[-1] for res in per_host], "pi.update")


@domum_task(
    help={
        "node": "the Pi to reboot (node id, e.g. 93)",
        "wait": "wait until SSH answers again with a new boot id",
        "timeout": "with --wait: give up after this many seconds (default 300)",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def reboot(
    c: Context,
    node: str = "",
    wait: bool = False,
    timeout: int = 300,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Reboot one Raspberry Pi OS Pi; with --wait, until it answers on SSH again."""
    import time

    from ... import ssh, taskutil
    from ...errors import ConfigError
    from . import facts
    from . import plan as fleet_plan

    if not node:
        raise ConfigError("pi.reboot: give --node N (one Pi at a time)")
    if timeout <= 0:
        raise ConfigError(f"--timeout {timeout}: must be a positive number of seconds")
    inv = load_inventory()
    (host,) = fleet_plan.select(inv, node, False, task="pi.reboot")
    node_id = int(host)
    host_label = ssh.resolve(inv, node_id).label
    boot = facts.boot_id(inv, ssh.resolve(inv, node_id)) if wait else None
    plan = fleet_plan.reboot_plan(inv, node_id, boot, wait=wait, deadline_s=float(timeout))
    start = time.monotonic()
    taskutil.executor(dry_run=dry_run, json_out=json, inventory=inv).execute(plan)
    if dry_run:
        return
    took = time.monotonic() - start
    if json:
        _dump({"host": host_label, "rebooted": True, "waited": wait, "seconds": round(took, 1)})
    elif wait:
        print(f"{host_label} is back after {took:.0f}s")


@domum_task(
    help={
        "node": NODE_OR_NAS,
        "yes": YES,
        "replace": "the host was reinstalled: replace the CHANGED key known_hosts has for it",
        "dry_run": DRY_RUN,
        "json": JSON,
    },
)
def enroll(
    c: Context,
    node: str = "",
    yes: bool = False,
    replace: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """First contact: show a host's key fingerprint, then add it to known_hosts."""
    import sys

    from ... import ssh, taskutil
    from ...errors import ConfigError, Refused, RemoteError
    from . import facts
    from . import plan as fleet_plan

    if not node:
        raise ConfigError("pi.enroll: give --node N (or --node nas)")
    inv = load_inventory()
    (host,) = fleet_plan.select(inv, node, False, task="pi.enroll", allow_nas=True)
    target = ssh.resolve(inv, host)
    path = facts.known_hosts_file(inv)
    try:
        key_type, key_b64 = facts.fetch_host_key(
            target.host, target.port, inv.ssh.connect_timeout_s
        )
    except Exception as exc:  # socket and paramiko errors alike: one line, no traceback
        why = f"{target.label} ({target.host}:{target.port}): cannot read its host key: " + (
            str(exc) or type(exc).__name__
        )
        if not dry_run:
            raise RemoteError(why) from None
        # Plan as for a fresh host, like the other dry runs, and say so.
        plan = fleet_plan.enroll_fresh_plan(str(path), target.label, target.known_hosts_name)
        plan.note(f"{why}: planned as for a fresh host (its key is read and shown on the real run)")
        taskutil.executor(dry_run=True, json_out=json, inventory=inv).execute(plan)
        return
    current = path.read_text() if path.exists() else ""
    _, state, replaced = fleet_plan.known_hosts_update(
        current, target.known_hosts_name, key_type, key_b64
    )
    new_fp = facts.fingerprint(key_b64)
    if state == "changed" and not replace:  # the dry run refuses as the real run does
        old = ", ".join(facts.fingerprint(k) for k in replaced)
        raise Refused(
            f"{target.label} ({target.known_hosts_name}): host key CHANGED: {path} has "
            f"{key_type} {old}, the host now presents {key_type} {new_fp}",
            hint="if the host was reinstalled, compare the new fingerprint with its console "
            "and run again with --replace; otherwise someone may be in between",
        )
    plan = fleet_plan.enroll_plan(
        str(path), current, target.label, target.known_hosts_name, key_type, key_b64,
        new_fp, [facts.fingerprint(k) for k in replaced],
    )  # fmt: skip
    if not dry_run:
        for note in plan.notes:
            print(note, file=sys.stderr)
    taskutil.executor(dry_run=dry_run, json_out=json, inventory=inv).execute(plan, yes=yes)
    if not dry_run and plan.steps:
        verb = "replaced in" if state == "changed" else "added to"
        print(f"{target.label}: host key {verb} {inv.ssh.known_hosts}", file=sys.stderr)


TASKS = [status, run, update, reboot, enroll]
